/**
 * Exact unlearning. For each shard that holds a record to forget: write the shard file without those
 * records, restore the checkpoint saved before the earliest affected slice, retrain that slice and the
 * later ones, and record the new model version. Held-out records are removed from their split. Every
 * other shard keeps its file, checkpoints and model untouched. The deletion log entry and the manifest
 * are committed only after every retrain succeeded; superseded files (which still contain the deleted
 * records) are removed right after the commit.
 */
import path from 'node:path';
import { placeRecord } from '../data/assign.js';
import { filterRows, readRowsFile, sliceHashes, writeRowsFile, type Rows } from '../data/shardFile.js';
import { shardRole } from '../storage/fileNames.js';
import { choiceFor, usesFusedKernel } from '../models/backendChoice.js';
import { runtimeOf } from '../models/runtime.js';
import { runJobs, checkConcurrency } from '../orchestration/jobs.js';
import { InProcessRunner, type JobRunner } from '../orchestration/inProcess.js';
import type { ShardJob } from '../orchestration/shardJob.js';
import { garbageCollect } from '../state/gc.js';
import { pullReferenced, syncBeforeCommit } from '../state/remote.js';
import { refitLazily } from './refit.js';
import { canFitFairness, lineageOf, loadState, requireTrained, saveState, type FileRef, type State } from '../state/manifest.js';
import { workspace, type Workspace } from '../state/workspace.js';
import { folderStoreUrl } from '../storage/fsBlobStore.js';
import { SisaError, usageError } from '../util/errors.js';
import { deletionReceiptFinder, entrySha256, hashId, idSalt, writeEntry, type DeletionEntry } from '../state/deletionLog.js';
import { runOperation } from '../state/operation.js';
import { DAMAGED_REQUEST_HINT, pendingPath, pendingRequests, readPending, removePendingRequest } from '../state/journal.js';
import { z } from '../state/schema.js';
import { crashPoint, pausePoint } from '../util/faults.js';
import { checkOptions, rule, type OptionSpec } from './options.js';
import { printable } from '../util/format.js';

export interface DeleteOptions {
  /** Workspace folder with trained models. */
  workdir: string;
  /** Record ids to forget (as in the id column at ingest, or row numbers when there was none). */
  ids: string[];
  /** Delete nothing and throw if any id is unknown (default: delete the known ones, list the rest in `notFound`). */
  strict?: boolean;
  /** Compute backend for the retrain; it must match the one the models were trained with (default: that one). */
  backend?: string;
  /** Shards retrained at once (default: the number of cores). */
  concurrency?: number;
  /** Runs shard jobs elsewhere (a `QueueRunner` on BullMQ); default: worker threads in this process. */
  runner?: JobRunner;
  /** Called as slices finish: slices done so far and in all. */
  onProgress?: (done: number, total: number) => void;
  /** Record salted hashes of the ids in the deletion receipt instead of the ids. */
  hashIds?: boolean;
  /**
   * Retrain each affected shard from scratch (all its slices) instead of from the checkpoint before the
   * record's slice: for a model trained on another runtime (tfjs version, wasm build), where a retrain from
   * its checkpoint would not be exact. The shard's model then records this runtime.
   */
  fullRetrain?: boolean;
  /** Wait for another sisa process holding the workspace instead of failing. */
  wait?: boolean;
}

const DELETE_OPTIONS: OptionSpec<DeleteOptions> = {
  workdir: rule.req('string'),
  ids: rule.req('string[]'),
  strict: rule.opt('boolean'),
  backend: rule.opt('string'),
  concurrency: rule.opt('number'),
  runner: rule.opt('object'),
  onProgress: rule.opt('function'),
  hashIds: rule.opt('boolean'),
  fullRetrain: rule.opt('boolean'),
  wait: rule.opt('boolean'),
};

/** What `manifests/pending/` keeps of an accepted request until it is applied. */
const PendingDeletionSchema = z.object({
  ids: z.array(z.string()),
  strict: z.boolean(),
  hashIds: z.boolean(),
  /** Absent in requests written before the option existed. */
  fullRetrain: z.boolean().optional(),
  requestedAt: z.string(),
});
export type PendingDeletion = z.infer<typeof PendingDeletionSchema>;

/**
 * An accepted request as `manifests/pending/` keeps it (null when there is no such file). A damaged one is
 * an error naming the file, raised before any work: applying it half (it failed in the receipt, after the
 * retrain) or dropping it without a word would both lose what the request said.
 */
export async function readDeletionRequest(ws: Workspace, seq: number): Promise<PendingDeletion | null> {
  const json = await readPending(ws, seq);
  if (json === null) return null;
  const parsed = PendingDeletionSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new SisaError('STATE', `${pendingPath(ws, seq)}: accepted deletion request is damaged (invalid request at '${issue.path.join('.')}': ${issue.message}); ${DAMAGED_REQUEST_HINT}`);
}

/** Reads every pending request, so that a damaged one stops a command before it changes anything. */
export async function checkPendingRequests(ws: Workspace): Promise<void> {
  for (const p of await pendingRequests(ws)) await readDeletionRequest(ws, p.seq);
}

export interface DeleteResult {
  requested: number;
  deleted: string[];
  /** Ids in neither the data set nor any receipt: they never existed here. */
  notFound: string[];
  /** Ids a committed receipt already deleted (an earlier request, or a retry): not found now, for that reason. */
  alreadyDeleted: { id: string; receipt: number }[];
  heldout: { split: 'test' | 'calibration'; ids: string[] }[];
  retrained: { shard: number; fromSlice: number; ids: number; seconds: number; modelVersion: number }[];
  logEntry: number | null;
  seconds: number;
  /**
   * Where the time went (seconds): locating the ids, rewriting shard and held-out files, starting the
   * worker and its backend, restoring the checkpoint, retraining, saving checkpoints, committing the
   * manifest and log, refitting the fairness post-processors. Retrain phases are summed over shards (they
   * may overlap in time). `seconds` ends before the refit.
   */
  timings: { locate: number; rewrite: number; startWorkers: number; restore: number; retrain: number; save: number; commit: number; refit: number };
  fairness?: { refitted: boolean; error?: string };
  /**
   * Requests accepted earlier whose run failed cleanly (a full disk, a failed worker), applied first,
   * each with its own receipt. Absent when there were none.
   */
  earlierRequests?: DeleteResult[];
}

/**
 * A failure that refuses the request itself (a bad id list, --strict with unknown ids, a runtime that
 * cannot retrain exactly): the request is dropped. Any other failure after acceptance keeps it pending.
 */
export function refusesRequest(err: unknown): boolean {
  return err instanceof SisaError && (err.code === 'USAGE' || err.code === 'NOT_FOUND' || err.code === 'BACKEND');
}

const KEPT_PENDING_HINT = "the deletion request stays pending: run 'sisa recover' (or the next 'sisa delete') to apply it";

export interface DeletionPlan {
  /** shard → (ids found there, the slices holding them, the earliest of those). */
  shards: Map<number, { ids: Set<string>; slices: Set<number>; fromSlice: number; rows: Rows }>;
  heldout: Map<'test' | 'calibration', { ids: Set<string>; rows: Rows; ref: FileRef }>;
  notFound: string[];
}

/** Locates every id by its seeded placement and confirms it in that one file. Reads nothing else. */
export async function planDeletion(state: State, workdir: string, ids: readonly string[]): Promise<DeletionPlan> {
  const ws = workspace(workdir);
  const cfg = state.config;
  const byFile = new Map<string, string[]>();
  for (const id of ids) {
    const p = placeRecord(id, cfg);
    const key = p.split === 'train' ? `shard:${p.shard}` : p.split;
    (byFile.get(key) ?? byFile.set(key, []).get(key)!).push(id);
  }
  const plan: DeletionPlan = { shards: new Map(), heldout: new Map(), notFound: [] };
  for (const [key, wanted] of byFile) {
    let ref: FileRef | null;
    if (key.startsWith('shard:')) ref = state.shards[Number(key.slice(6))]!;
    else ref = key === 'test' ? state.heldout.test : state.heldout.calibration;
    if (!ref) {
      for (const id of wanted) plan.notFound.push(id);
      continue;
    }
    // Features are not needed to find ids, and the rewrite stores the configuration, not features.
    const rows = await readRowsFile(path.join(ws.shardsDir, ref.file), ref.sha256, { skipFeatures: true });
    const position = new Map(rows.ids.map((id, i) => [id, i]));
    const found = new Set<string>();
    const slices = new Set<number>();
    for (const id of wanted) {
      const i = position.get(id);
      if (i === undefined) plan.notFound.push(id);
      else {
        found.add(id);
        slices.add(rows.slices[i]!);
      }
    }
    if (found.size === 0) continue;
    if (key.startsWith('shard:')) plan.shards.set(Number(key.slice(6)), { ids: found, slices, fromSlice: Math.min(...slices), rows });
    else plan.heldout.set(key as 'test' | 'calibration', { ids: found, rows, ref });
  }
  return plan;
}

export async function deleteRecords(o: DeleteOptions): Promise<DeleteResult> {
  checkOptions('deleteRecords', o, DELETE_OPTIONS);
  const ids = [...new Set(o.ids.map((s) => s.trim()).filter((s) => s.length > 0))];
  if (ids.length === 0) throw usageError('no ids to delete: pass --id ID or --ids-file FILE');
  // Refused before it is accepted: a workspace without models cannot apply it (train first), and a
  // damaged or edited newest receipt would be chained onto (run verify, restore it).
  const ws = workspace(o.workdir);
  const state = await loadState(ws);
  requireTrained(state);
  await entrySha256(ws, state.deletions, state.lastReceiptSha256);
  await checkPendingRequests(ws);
  // The request is written to manifests/pending/ before anything else, so it survives a crash.
  const pending: PendingDeletion = { ids, strict: o.strict ?? false, hashIds: o.hashIds ?? false, ...(o.fullRetrain ? { fullRetrain: true } : {}), requestedAt: new Date().toISOString() };
  return runOperation(o.workdir, 'delete', { wait: o.wait, pending, keepPendingOn: (err) => !refusesRequest(err), keptPendingHint: KEPT_PENDING_HINT }, async () => {
    crashPoint('delete:request-accepted');
    const earlier = await applyKeptRequests(o);
    const result = await applyDeletion({ ...o, ids, strict: pending.strict, hashIds: pending.hashIds, fullRetrain: pending.fullRetrain ?? false }, pending.requestedAt);
    return earlier.length ? { ...result, earlierRequests: earlier } : result;
  });
}

/**
 * Applies, oldest first, the requests that earlier clean failures kept pending (each gets its own
 * receipt). The caller holds the workspace. A kept request that is now refused (--strict and an id
 * that no longer exists) is dropped, as it would have been when it was made.
 */
export async function applyKeptRequests(o: Pick<DeleteOptions, 'workdir' | 'backend' | 'concurrency' | 'runner' | 'onProgress'>): Promise<DeleteResult[]> {
  const ws = workspace(o.workdir);
  const applied: DeleteResult[] = [];
  for (const p of await pendingRequests(ws)) {
    if (p.open) continue;
    const req = await readDeletionRequest(ws, p.seq);
    if (req) {
      try {
        applied.push(await applyDeletion({ ...o, ids: req.ids, strict: req.strict, hashIds: req.hashIds, fullRetrain: req.fullRetrain ?? false }, req.requestedAt));
      } catch (err) {
        if (!refusesRequest(err)) throw err;
      }
    }
    await removePendingRequest(ws, p.seq);
  }
  return applied;
}

/** Applies a deletion request; the caller holds the workspace (used by delete and by recover). */
export async function applyDeletion(o: DeleteOptions, requestedAt: string): Promise<DeleteResult> {
  const t0 = performance.now();
  const ws = workspace(o.workdir);
  const state = await loadState(ws);
  requireTrained(state);
  // The receipt this deletion will chain onto, checked before any work (recover and kept requests come here
  // without deleteRecords' check at the door); the lock is held, so its hash holds until the commit.
  const prevSha256 = await entrySha256(ws, state.deletions, state.lastReceiptSha256);
  // A store workspace's cache may lack blobs (another machine ingested, or the cache was cleared).
  await pullReferenced(ws, state);
  const ids = o.ids;
  const backend = o.backend ?? choiceFor(state.training.backend);
  // Refused before anything is written: a retrain on another backend is not the model a full retrain gives.
  // ('auto' is checked by each job against the backend it actually loaded.)
  if (backend !== 'auto' && backend !== choiceFor(state.training.backend))
    throw new SisaError('BACKEND', `--backend ${backend} differs from the backend the models were trained on ('${state.training.backend}'); a retrain on '${backend}' would not equal a full retrain (run with --backend ${choiceFor(state.training.backend)})`);
  const concurrency = checkConcurrency(o.concurrency);
  // The fused kernel retrains in this thread (no worker, no tfjs). Otherwise start a worker and its
  // backend now; it loads while the ids are located and the shard rewritten.
  const inProcess = !o.runner && usesFusedKernel(backend, state.training.learner.hidden);
  let done = 0;
  let total = 0;
  const onSlice = () => o.onProgress?.(++done, total);
  let pool: JobRunner | null = null;
  if (inProcess) pool = new InProcessRunner(backend, onSlice);
  else if (!o.runner) {
    const { WorkerPool } = await import('../orchestration/pool.js');
    const workers = new WorkerPool(concurrency, backend, onSlice);
    workers.warm(1);
    pool = workers;
  }
  try {
    return await deleteWith({ o, ws, state, ids, runner: pool ?? o.runner!, t0, concurrency, setTotal: (n) => (total = n), requestedAt, prevSha256, inMemory: pool instanceof InProcessRunner ? pool : null });
  } finally {
    await pool?.close();
  }
}

/** One deletion in progress: what applyDeletion prepared for the steps that locate, rewrite, retrain and commit. */
interface DeletionRun {
  o: DeleteOptions;
  ws: ReturnType<typeof workspace>;
  state: State & { training: NonNullable<State['training']> };
  ids: string[];
  runner: JobRunner;
  /** performance.now() when the deletion started, for its timings. */
  t0: number;
  concurrency: number;
  /** Tells the progress reporter how many slices will be retrained. */
  setTotal: (n: number) => void;
  requestedAt: string;
  /** sha256 of the receipt the new one chains onto (null before the first), checked by applyDeletion. */
  prevSha256: string | null;
  /** The in-process runner, which takes the rewritten shards' rows from memory; null when jobs run elsewhere. */
  inMemory: InProcessRunner | null;
}

async function deleteWith({ o, ws, state, ids, runner, t0, concurrency, setTotal, requestedAt, prevSha256, inMemory }: DeletionRun): Promise<DeleteResult> {
  const tLocate = performance.now();
  const plan = await planDeletion(state, ws.root, ids);
  const timings = { locate: (performance.now() - tLocate) / 1000, rewrite: 0, startWorkers: 0, restore: 0, retrain: 0, save: 0, commit: 0, refit: 0 };
  const result: DeleteResult = { requested: ids.length, deleted: [], notFound: plan.notFound, alreadyDeleted: [], heldout: [], retrained: [], logEntry: null, seconds: 0, timings };
  if (plan.notFound.length) {
    // An auditor asks "was it deleted, and when?": an id a receipt names is not reported as unknown.
    const receiptOf = await deletionReceiptFinder(ws, state);
    result.notFound = [];
    for (const id of plan.notFound) {
      const receipt = receiptOf(id);
      if (receipt === null) result.notFound.push(id);
      else result.alreadyDeleted.push({ id, receipt });
    }
  }
  // --strict refuses ids that never existed here. An id a receipt already deleted is not one of them: a
  // retry, or recover completing a --strict delete that died after its commit, finds its ids there.
  if (o.strict && result.notFound.length > 0)
    throw new SisaError('NOT_FOUND', `${result.notFound.length} id(s) not found (${result.notFound.slice(0, 5).map((id) => printable(id)).join(', ')}${result.notFound.length > 5 ? ', …' : ''}); nothing was deleted (--strict)`, {
      journalNote: `${result.notFound.length} id(s) not found; nothing was deleted (--strict)`,
    });
  if (plan.shards.size === 0 && plan.heldout.size === 0) {
    result.seconds = (performance.now() - t0) / 1000;
    return result;
  }

  const next: State = structuredClone(state);
  const jobs: ShardJob[] = [];
  const tRewrite = performance.now();
  const shardNotes = new Map<number, { before: string; ids: string[]; fromSlice: number }>();
  for (const [shard, p] of [...plan.shards].sort((a, b) => a[0] - b[0])) {
    const kept = filterRows(p.rows, (i) => !p.ids.has(p.rows.ids[i]!));
    const written = await writeRowsFile(ws.shardsDir, shardRole(shard), kept, Object.keys(kept.groups), { features: state.config.features });
    // The shard was read once, to locate the ids: an in-process retrain starts from these rows (the
    // file just written holds exactly them); worker threads and queue workers read the file.
    inMemory?.provide(written.sha256, { rows: kept, features: state.config.features });
    const info = next.shards[shard]!;
    if (o.fullRetrain) p.fromSlice = 0;
    shardNotes.set(shard, { before: info.sha256, ids: [...p.ids], fromSlice: p.fromSlice });
    // Only the slices that lost records change; the others keep their recorded hashes.
    const rehashed = sliceHashes(kept, state.config.slices, p.slices);
    Object.assign(info, written, { slices: info.slices.map((old, slice) => ({ slice, ...(rehashed[slice] ?? { rows: old.rows, hash: old.hash }) })) });
    const model = state.models[shard]!;
    jobs.push({
      // Local worker threads read the workspace folder; queue workers read the object store when there is one.
      store: o.runner && state.store ? state.store : folderStoreUrl(ws.root),
      shard,
      shardSha256: written.sha256,
      fromSlice: p.fromSlice,
      startCheckpoint: p.fromSlice > 0 ? model.checkpoints[p.fromSlice - 1]! : null,
      learner: state.training.learner,
      buckets: state.config.features.buckets,
      seed: state.config.seed,
      slices: state.config.slices,
      // Pinned to the model's runtime, unless the shard is retrained from scratch (then any runtime of the same backend).
      ...(o.fullRetrain ? {} : { runtime: model.runtime ?? state.training.runtime ?? runtimeOf(state.training.backend) }),
    });
  }
  const heldoutNotes: DeletionEntry['heldout'] = [];
  for (const [split, h] of plan.heldout) {
    const kept = filterRows(h.rows, (i) => !h.ids.has(h.rows.ids[i]!));
    const written = await writeRowsFile(ws.shardsDir, split, kept, Object.keys(kept.groups), { features: state.config.features });
    next.heldout[split] = written;
    heldoutNotes.push({ split, ids: [...h.ids], sha256Before: h.ref.sha256, sha256After: written.sha256 });
    result.heldout.push({ split, ids: [...h.ids] });
  }
  crashPoint('delete:files-rewritten');

  timings.rewrite = (performance.now() - tRewrite) / 1000;
  setTotal(jobs.reduce((s, j) => s + (j.slices - j.fromSlice), 0));
  const tJobs = performance.now();
  try {
    // Workers elsewhere read the rewritten shard files from the object store.
    await syncBeforeCommit(ws, next);
    const results = await runJobs(runner, jobs);
    const inJobs = results.reduce((s, r) => s + r.seconds, 0);
    for (const r of results) {
      timings.restore += r.timings.restore + r.timings.loadData;
      timings.retrain += r.timings.train;
      timings.save += r.timings.save;
    }
    // Wall time of the job phase not spent inside jobs: worker thread and backend start-up.
    timings.startWorkers = Math.max(0, (performance.now() - tJobs) / 1000 - inJobs / Math.max(1, Math.min(jobs.length, concurrency)));
    const now = new Date().toISOString();
    for (const r of results) {
      const m = next.models[r.shard]!;
      m.checkpoints = [...m.checkpoints.slice(0, r.fromSlice), ...r.checkpoints];
      m.runtime = r.runtime;
      m.version += 1;
      m.modelHash = r.modelHash;
      m.dataSha256 = next.shards[r.shard]!.sha256;
      m.lineage = lineageOf(next.shards[r.shard]!);
      m.trainedAt = now;
      m.seconds = r.seconds;
      // Jobs refuse another runtime themselves; a runner that ignored the pin must not get committed.
      if (r.backend !== state.training.backend)
        throw new SisaError('BACKEND', `shard ${r.shard} was retrained on backend '${r.backend}' but trained on '${state.training.backend}'; nothing was committed`);
      result.retrained.push({ shard: r.shard, fromSlice: r.fromSlice, ids: shardNotes.get(r.shard)!.ids.length, seconds: r.seconds, modelVersion: m.version });
    }
    // Every checkpoint the new state names is in the store with its hash checked, before the commit.
    await syncBeforeCommit(ws, next);
  } catch (err) {
    await garbageCollect(ws, state); // drop the new shard files and checkpoints; the committed state is unchanged
    throw err;
  }

  crashPoint('delete:retrained');
  await pausePoint('delete:retrained');
  const tCommit = performance.now();
  result.deleted = [...[...plan.shards.values()].flatMap((p) => [...p.ids]), ...heldoutNotes.flatMap((h) => h.ids)];
  result.seconds = (performance.now() - t0) / 1000;
  const seq = state.deletions + 1;
  const salt = o.hashIds ? await idSalt(ws, true) : null;
  const receiptIds = (xs: string[]) => (salt ? xs.map((id) => hashId(salt, id)) : xs);
  const entry: DeletionEntry = {
    seq,
    time: new Date().toISOString(),
    prevSha256,
    idsHashed: salt !== null,
    startedAt: requestedAt,
    requested: ids.length,
    deleted: receiptIds(result.deleted),
    notFound: receiptIds(plan.notFound), // the receipt keeps every id it did not find, as before
    shards: result.retrained.map((r) => {
      const note = shardNotes.get(r.shard)!;
      return {
        shard: r.shard,
        fromSlice: r.fromSlice,
        ids: receiptIds(note.ids),
        shardSha256Before: note.before,
        shardSha256After: next.shards[r.shard]!.sha256,
        fromCheckpoint: note.fromSlice > 0 ? state.models[r.shard]!.checkpoints[note.fromSlice - 1]! : null,
        modelVersion: r.modelVersion,
        modelHash: next.models[r.shard]!.modelHash,
        seconds: r.seconds,
      };
    }),
    heldout: heldoutNotes.map((h) => ({ ...h, ids: receiptIds(h.ids) })),
    seconds: result.seconds,
  };
  next.lastReceiptSha256 = await writeEntry(ws, entry);
  crashPoint('delete:receipt-written');
  next.deletions = seq;
  next.revision = state.revision + 1;
  await saveState(ws, next);
  crashPoint('delete:committed');
  await garbageCollect(ws, next);
  crashPoint('delete:collected');
  result.logEntry = seq;
  timings.commit = (performance.now() - tCommit) / 1000;
  result.seconds = (performance.now() - t0) / 1000;
  const tRefit = performance.now();
  // Loaded here, not at start-up, and only for a workspace that has post-processors to refit: the
  // fairness modules (and the LP solver) are not needed before the commit, nor at all without them.
  result.fairness = canFitFairness(next) ? await refitLazily(ws.root) : { refitted: false };
  timings.refit = (performance.now() - tRefit) / 1000;
  return result;
}

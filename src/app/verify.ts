/**
 * `sisa verify`: checks that the workspace is what the manifest says and that every deletion holds.
 * Exits non-zero on any problem. `--deep` also retrains every shard from scratch and compares weights.
 */
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { readRowsFile } from '../data/shardFile.js';
import { checkpointPath, decodeCheckpoint, paramsHash } from '../models/checkpoint.js';
import { choiceFor, usesFusedKernel } from '../models/backendChoice.js';
import { deletedIdMatcher, entryPath, readEntry } from '../state/deletionLog.js';
import { errorMessage } from '../util/errors.js';
import { sha256 } from '../util/fsx.js';
import { pendingDir, pendingOperation, pendingRequests } from '../state/journal.js';
import { readDeletionRequest } from './delete.js';
import { lineageOf, loadState, type State } from '../state/manifest.js';
import { listDir, referencedCheckpoints, referencedShardFiles } from '../state/gc.js';
import { workspace, type Workspace } from '../state/workspace.js';
import { openStore, pullReferenced, referencedBlobs, storeStrays } from '../state/remote.js';
import { checkOptions, rule } from './options.js';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface VerifyResult {
  ok: boolean;
  checks: Check[];
  problems: string[];
}

export interface VerifyOptions {
  /** Workspace folder to check. */
  workdir: string;
  /** Also retrain every shard from scratch and compare weights (minutes on large data). */
  deep?: boolean;
}

/** Checks hashes, receipts, that no deleted id remains anywhere and that every model excludes them. */
export async function verify(o: VerifyOptions): Promise<VerifyResult> {
  checkOptions('verify', o, { workdir: rule.req('string'), deep: rule.opt('boolean') });
  const ws = workspace(o.workdir);
  const checks: Check[] = [];
  const check = (name: string, problems: string[], okDetail: string) => checks.push({ name, ok: problems.length === 0, detail: problems.length ? problems.join('; ') : okDetail });

  const pending = await pendingOperation(ws);
  check('journal', pending ? [`an interrupted '${pending.op}' from ${pending.time} is pending (run 'sisa recover')`] : [], 'no interrupted operation');
  // A request kept after a clean failure is accepted but not applied: the records are still here.
  const kept = [];
  const damagedRequests: string[] = [];
  for (const p of await pendingRequests(ws)) {
    try {
      const req = await readDeletionRequest(ws, p.seq);
      if (!p.open) kept.push(req?.ids.length ?? 0);
    } catch (err) {
      damagedRequests.push(errorMessage(err));
    }
  }
  const keptIds = kept.reduce((a, b) => a + b, 0);
  check('pending', [...damagedRequests, ...(kept.length ? [`${kept.length} accepted deletion request${kept.length === 1 ? '' : 's'} (${keptIds} id${keptIds === 1 ? '' : 's'}) not applied yet; run 'sisa recover'`] : [])], 'no accepted deletion request waiting');

  let state: State;
  try {
    state = await loadState(ws);
    check('manifest', [], 'state.json is valid');
  } catch (err) {
    check('manifest', [errorMessage(err)], '');
    return finish(checks);
  }

  // A store workspace: the bucket holds exactly the blobs the manifest names (superseded ones may hold
  // deleted records), and the local cache is filled from it (each blob hash-checked) for the checks below.
  if (state.store) {
    const storeProblems: string[] = [];
    let detail = '';
    try {
      const s = await storeStrays(ws, state);
      for (const k of s.missing) storeProblems.push(`${k}: missing from the store`);
      for (const k of s.strays) storeProblems.push(`${k}: not referenced by the manifest (may hold deleted records; 'sisa recover' removes it)`);
      const pulled = await pullReferenced(ws, state);
      detail = `${s.blobs} blobs in ${state.store}, nothing else under the prefix${pulled ? `; ${pulled} fetched into the local cache` : ''}`;
      if (o.deep && s.missing.length === 0) {
        const store = await openStore(state.store);
        for (const b of referencedBlobs(ws, state)) await store.get(b.kind, b.sha256); // throws on a hash mismatch
        detail += '; every blob in the store matches its hash';
      }
    } catch (err) {
      storeProblems.push(errorMessage(err));
    }
    check('store', storeProblems, detail);
  }

  // Every file the manifest names exists with the recorded content; nothing else is lying around.
  const fileProblems: string[] = [];
  const refs = [...state.shards, state.heldout.test, ...(state.heldout.calibration ? [state.heldout.calibration] : [])];
  for (const ref of refs) {
    try {
      const actual = sha256(await fsp.readFile(path.join(ws.shardsDir, ref.file)));
      if (actual !== ref.sha256) fileProblems.push(`shards/${ref.file}: content hash differs from the manifest`);
    } catch {
      fileProblems.push(`shards/${ref.file}: missing`);
    }
  }
  for (const sha of referencedCheckpoints(state)) {
    try {
      const actual = sha256(await fsp.readFile(checkpointPath(ws.checkpointsDir, sha)));
      if (actual !== sha) fileProblems.push(`checkpoint ${sha.slice(0, 12)}: content does not match its name`);
    } catch {
      fileProblems.push(`checkpoint ${sha.slice(0, 12)}: missing`);
    }
  }
  const keepShards = referencedShardFiles(state);
  const keepCkpt = referencedCheckpoints(state);
  for (const f of await listDir(ws.shardsDir))
    if ((f.endsWith('.arrow') && !keepShards.has(f)) || f.endsWith('.tmp')) fileProblems.push(`shards/${f}: not referenced by the manifest (may hold deleted records; 'sisa recover' removes it)`);
  for (const f of await listDir(ws.checkpointsDir))
    if (!(f.endsWith('.ckpt') && keepCkpt.has(f.slice(0, -5)))) fileProblems.push(`shards/checkpoints/${f}: not referenced by the manifest`);
  check('files', fileProblems, `${refs.length} data files and ${keepCkpt.size} checkpoints match their hashes; no stray files`);

  // The deletion log is an unbroken hash chain.
  const chainProblems: string[] = [];
  let prev: string | null = null;
  for (let seq = 1; seq <= state.deletions; seq++) {
    try {
      const bytes = await fsp.readFile(entryPath(ws, seq));
      const entry = await readEntry(ws, seq);
      if (entry.seq !== seq) chainProblems.push(`entry ${seq}: claims sequence number ${entry.seq}`);
      if (entry.prevSha256 !== prev) chainProblems.push(`entry ${seq}: does not chain to entry ${seq - 1} (edited or replaced)`);
      prev = sha256(bytes);
    } catch (err) {
      chainProblems.push(`entry ${seq}: ${errorMessage(err)}`);
      prev = null;
    }
  }
  // The newest entry is proven by the hash the manifest committed with it (the chain proves the others).
  if (state.deletions > 0 && prev !== null && state.lastReceiptSha256 !== undefined && prev !== state.lastReceiptSha256)
    chainProblems.push(`entry ${state.deletions}: changed after its commit (its sha256 is not the one the manifest recorded)`);
  check('receipts', chainProblems, `${state.deletions} deletion receipt(s), hash chain intact`);

  // No deleted id anywhere: shard files (referenced or not), held-out files, pending requests.
  const leakProblems: string[] = [];
  if (state.deletions > 0 && chainProblems.length === 0) {
    const isDeleted = await deletedIdMatcher(ws, state);
    for (const f of await listDir(ws.shardsDir)) {
      if (!f.endsWith('.arrow')) continue;
      try {
        // Only the ids: features would be recomputed from the texts of every file for nothing.
        const rows = await readRowsFile(path.join(ws.shardsDir, f), undefined, { skipFeatures: true });
        const leaked = rows.ids.filter(isDeleted);
        if (leaked.length) leakProblems.push(`shards/${f} still holds ${leaked.length} deleted record(s)`);
      } catch (err) {
        leakProblems.push(`shards/${f}: unreadable (${errorMessage(err)})`);
      }
    }
    if (!pending) {
      for (const f of await listDir(pendingDir(ws))) {
        let req: { ids?: unknown } | null;
        try {
          req = JSON.parse(await fsp.readFile(path.join(pendingDir(ws), f), 'utf8')) as { ids?: unknown } | null;
        } catch {
          continue; // a damaged request file is reported under 'pending' above
        }
        if (Array.isArray(req?.ids) && req.ids.some((id) => typeof id === 'string' && isDeleted(id))) leakProblems.push(`manifests/pending/${f}: a finished request still lists deleted ids`);
      }
    }
  }
  check('deleted records', leakProblems, state.deletions ? 'no deleted id in any shard, held-out file or pending request' : 'no deletions yet');

  // Every model was trained on the current data, and each checkpoint's lineage excludes deleted records.
  const modelProblems: string[] = [];
  if (state.training) {
    const log = await Promise.all(Array.from({ length: state.deletions }, (_, i) => readEntry(ws, i + 1).catch(() => null)));
    for (const shard of state.shards) {
      const m = state.models.find((x) => x.shard === shard.shard);
      if (!m) {
        modelProblems.push(`shard ${shard.shard}: no model`);
        continue;
      }
      if (m.dataSha256 !== shard.sha256) modelProblems.push(`shard ${shard.shard}: model v${m.version} was trained on other data than the current shard file`);
      const lineage = lineageOf(shard);
      if (m.lineage.length !== lineage.length || m.lineage.some((h, i) => h !== lineage[i]))
        modelProblems.push(`shard ${shard.shard}: a checkpoint was trained on slices that differ from the current ones`);
      for (const e of log) for (const t of e?.shards ?? []) if (t.shard === shard.shard && m.version < t.modelVersion) modelProblems.push(`shard ${shard.shard}: model v${m.version} is older than deletion ${e!.seq}`);
      try {
        const ckpts = await Promise.all(m.checkpoints.map(async (c) => decodeCheckpoint(await fsp.readFile(checkpointPath(ws.checkpointsDir, c)))));
        ckpts.forEach((c, i) => {
          if (c.meta.shard !== shard.shard || c.meta.slice !== i) modelProblems.push(`shard ${shard.shard}: checkpoint ${i} is for shard ${c.meta.shard} slice ${c.meta.slice}`);
        });
        if (paramsHash(ckpts.at(-1)!.params) !== m.modelHash) modelProblems.push(`shard ${shard.shard}: model hash does not match its last checkpoint`);
      } catch (err) {
        modelProblems.push(`shard ${shard.shard}: checkpoints unreadable (${errorMessage(err)})`);
      }
    }
  }
  check('models', modelProblems, state.training ? `${state.models.length} models trained on the current shards, checkpoint lineage excludes deleted records` : 'not trained yet');

  if (o.deep && state.training) checks.push(await deepCheck(ws, state));
  return finish(checks);
}

/** Retrains each shard from scratch (in memory) and compares the weights with the stored model. */
async function deepCheck(ws: Workspace, state: State & {}): Promise<Check> {
  const choice = choiceFor(state.training!.backend);
  // The engine that trained the models: the fused kernel needs no tfjs.
  const fused = usesFusedKernel(choice, state.training!.learner.hidden);
  const backend = fused ? null : await (await import('../models/backend.js')).loadBackend(choice);
  const { trainShard } = await import('../models/learner.js');
  const { trainShardFused, FUSED_BACKEND_NAME } = await import('../models/fusedLinear.js');
  const problems: string[] = [];
  for (const shard of state.shards) {
    const rows = await readRowsFile(path.join(ws.shardsDir, shard.file), shard.sha256);
    let hash = '';
    const train = backend ? (a: Parameters<typeof trainShardFused>[0]) => trainShard({ tf: backend.tf, ...a }) : trainShardFused;
    await train({
      rows,
      cfg: state.training!.learner,
      buckets: state.config.features.buckets,
      seed: state.config.seed,
      shard: shard.shard,
      slices: state.config.slices,
      fromSlice: 0,
      start: null,
      onSlice: async (c) => {
        hash = paramsHash(c.params);
      },
    });
    const m = state.models.find((x) => x.shard === shard.shard);
    if (m?.modelHash !== hash) problems.push(`shard ${shard.shard}: a retrain from scratch gives different weights`);
  }
  return { name: 'deep retrain', ok: problems.length === 0, detail: problems.length ? problems.join('; ') : `all ${state.shards.length} models equal a retrain from scratch, weight for weight (backend ${backend?.name ?? FUSED_BACKEND_NAME})` };
}

function finish(checks: Check[]): VerifyResult {
  const problems = checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
  return { ok: problems.length === 0, checks, problems };
}

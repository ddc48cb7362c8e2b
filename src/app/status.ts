/**
 * `sisa status`: a summary of the workspace from the manifest (no data file is read), the size of the
 * workspace folder, and, for a workspace with an object store, the size of its blobs there.
 */
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { loadState } from '../state/manifest.js';
import { openStore } from '../state/remote.js';
import { errorMessage } from '../util/errors.js';
import { checkOptions, rule } from './options.js';
import { workspace, type Workspace } from '../state/workspace.js';
import { pendingOperation, pendingRequests, readPending } from '../state/journal.js';
import { readLog } from '../state/deletionLog.js';
import { configuredEndpoint } from '../storage/s3Url.js';

export interface StatusResult {
  workdir: string;
  dataset: { source: string; fingerprint: string; rows: number; accepted: number; skipped: number; ingestedAt: string };
  config: { shards: number; slices: number; seed: number; test: number; calibration: number; buckets: number; groups: string[] };
  heldout: { test: number; calibration: number };
  trained: boolean;
  backend: string | null;
  lastTraining: string | null;
  shards: { shard: number; rows: number; slices: number[]; modelVersion: number | null; modelHash: string | null; trainedAt: string | null }[];
  deletions: { batches: number; records: number; last: string | null };
  /**
   * Accepted deletion requests not applied yet (a legal obligation still open): kept after a clean
   * failure, or of an interrupted delete. `recover` or the next `delete` applies them. Counts only: a
   * request's ids are not repeated here.
   */
  pendingRequests: { seq: number; ids: number; requestedAt: string | null; interrupted: boolean }[];
  revision: number;
  /** The object store holding the blobs, when the workspace has one (no credentials, ever). */
  store: { url: string; endpoint: string | null; size: StoreSize } | null;
  /** Bytes in the workspace folder, by kind (shards/ is a local cache when there is a store). */
  disk: DiskUsage;
}

export interface DiskUsage {
  /** All files under the workspace folder. */
  bytes: number;
  /** Shard and held-out split files (shards/*.arrow). */
  data: number;
  /** Model checkpoints, one per shard and slice (shards/checkpoints). */
  checkpoints: number;
  /** State, deletion receipts, fairness fit (manifests/). */
  manifests: number;
  /** Anything else in the folder (a report, files of your own). */
  other: number;
}

/** Bytes of the blobs under the store's prefix; null with the reason when the store cannot be listed. */
export type StoreSize = { bytes: number; blobs: number } | { bytes: null; error: string };

export interface StatusOptions {
  /** Workspace folder. */
  workdir: string;
}

/** Sum of file sizes under a folder (symbolic links are not followed). */
async function folderBytes(dir: string): Promise<{ file: string; bytes: number }[]> {
  const out: { file: string; bytes: number }[] = [];
  let entries;
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await folderBytes(p)));
    else if (e.isFile()) out.push({ file: p, bytes: (await fsp.stat(p)).size });
  }
  return out;
}

export async function diskUsage(root: string): Promise<DiskUsage> {
  const ws = workspace(root);
  const usage: DiskUsage = { bytes: 0, data: 0, checkpoints: 0, manifests: 0, other: 0 };
  const inside = (dir: string, f: string) => f.startsWith(dir + path.sep);
  for (const { file, bytes } of await folderBytes(ws.root)) {
    usage.bytes += bytes;
    if (inside(ws.checkpointsDir, file)) usage.checkpoints += bytes;
    else if (inside(ws.shardsDir, file)) usage.data += bytes;
    else if (inside(ws.manifestsDir, file)) usage.manifests += bytes;
    else usage.other += bytes;
  }
  return usage;
}

async function storeSize(url: string): Promise<StoreSize> {
  try {
    const blobs = await (await openStore(url)).list();
    return { bytes: blobs.reduce((n, b) => n + b.size, 0), blobs: blobs.length };
  } catch (err) {
    // status stays useful while the store is unreachable: the rest comes from local files.
    return { bytes: null, error: errorMessage(err) };
  }
}

/** A summary of the workspace; `workdir` alone (a string) is accepted too. */
export async function status(o: StatusOptions | string): Promise<StatusResult> {
  const opts = typeof o === 'string' ? { workdir: o } : o;
  checkOptions('status', opts, { workdir: rule.req('string') });
  const ws = workspace(opts.workdir);
  const state = await loadState(ws);
  const log = await readLog(ws, state);
  const lastTrained = state.models.map((m) => m.trainedAt).sort().at(-1) ?? null;
  return {
    workdir: ws.root,
    dataset: {
      source: state.dataset.source,
      fingerprint: state.dataset.fingerprint,
      rows: state.dataset.rows,
      accepted: state.dataset.accepted,
      skipped: state.dataset.skipped,
      ingestedAt: state.dataset.ingestedAt,
    },
    config: {
      shards: state.config.shards,
      slices: state.config.slices,
      seed: state.config.seed,
      test: state.config.test,
      calibration: state.config.calibration,
      buckets: state.config.features.buckets,
      groups: state.config.groups.map((g) => g.name),
    },
    heldout: { test: state.heldout.test.rows, calibration: state.heldout.calibration?.rows ?? 0 },
    trained: state.training !== null,
    backend: state.training?.backend ?? null,
    lastTraining: lastTrained,
    shards: state.shards.map((s) => {
      const m = state.models.find((x) => x.shard === s.shard);
      return {
        shard: s.shard,
        rows: s.rows,
        slices: s.slices.map((x) => x.rows),
        modelVersion: m?.version ?? null,
        modelHash: m?.modelHash ?? null,
        trainedAt: m?.trainedAt ?? null,
      };
    }),
    deletions: { batches: log.length, records: log.reduce((n, e) => n + e.deleted.length, 0), last: log.at(-1)?.time ?? null },
    pendingRequests: await describePendingRequests(ws),
    revision: state.revision,
    store: state.store ? { url: state.store, endpoint: configuredEndpoint() ?? null, size: await storeSize(state.store) } : null,
    disk: await diskUsage(ws.root),
  };
}

/**
 * The rule for read-only use cases while an operation is interrupted (a crash, kill -9): they answer
 * from the last committed state, which is complete and consistent, and say so in this one line. Writers
 * refuse instead until `recover` (see runOperation). Null when nothing is interrupted.
 */
export async function interruptedOperationWarning(workdir: string): Promise<string | null> {
  const p = await pendingOperation(workspace(workdir));
  if (!p) return null;
  const unapplied = p.op === 'delete' ? '; its deletion request is not applied yet' : '';
  return `an interrupted '${p.op}' (started ${p.time} by process ${p.pid}) is not finished${unapplied}: this is the last committed state; run 'sisa recover'`;
}

async function describePendingRequests(ws: Workspace): Promise<StatusResult['pendingRequests']> {
  const out: StatusResult['pendingRequests'] = [];
  for (const p of await pendingRequests(ws)) {
    // status describes what it can: a damaged request is named by verify, and stops delete and recover.
    const req = (await readPending(ws, p.seq).catch(() => null)) as { ids?: unknown; requestedAt?: unknown } | null;
    out.push({ seq: p.seq, ids: Array.isArray(req?.ids) ? req.ids.length : 0, requestedAt: typeof req?.requestedAt === 'string' ? req.requestedAt : null, interrupted: p.open });
  }
  return out;
}

/** `sisa status`: a summary of the workspace from the manifest alone (no data files are read). */
import { loadState } from '../state/manifest.js';
import { workspace } from '../state/workspace.js';
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
  revision: number;
  /** The object store holding the blobs, when the workspace has one (no credentials, ever). */
  store: { url: string; endpoint: string | null } | null;
}

export async function status(workdir: string): Promise<StatusResult> {
  const ws = workspace(workdir);
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
    revision: state.revision,
    store: state.store ? { url: state.store, endpoint: configuredEndpoint() ?? null } : null,
  };
}

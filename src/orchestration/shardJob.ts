/**
 * One unit of training work: (re)train one shard's model from a given slice to the last one. The same
 * function runs inside a worker thread (local mode) and could run in any other process that sees the
 * workspace; it reads its inputs by content hash, refuses inputs that do not match, and writes only
 * content-addressed checkpoint files, so running it twice is harmless and gives the same result.
 */
import { readRowsFile, type Rows } from '../data/shardFile.js';
import { hashTexts, type FeatureConfig } from '../features/hashing.js';
import type { LearnerConfig } from '../state/manifest.js';
import { workspace } from '../state/workspace.js';
import { checkpointPath, encodeCheckpointAsync, loadCheckpoint, type Checkpoint, paramsHash, storeCheckpoint } from '../models/checkpoint.js';
import { trainShard } from '../models/learner.js';
import { FUSED_BACKEND_NAME, trainShardFused } from '../models/fusedLinear.js';
import { usesFusedKernel } from '../models/backendChoice.js';
import type { LoadedBackend } from '../models/backend.js';
import { describeRuntime, runtimeOf, sameRuntime, type Runtime } from '../models/runtime.js';
import { FsBlobStore, folderOfStoreUrl } from '../storage/fsBlobStore.js';
import { BlobMissingError } from '../storage/blobStore.js';
import { SisaError } from '../util/errors.js';
import { outputFault } from '../util/faults.js';
import * as fsp from 'node:fs/promises';

export interface ShardJob {
  /**
   * Where the job's blobs are, as a URL: a workspace (or a worker's cache) folder, `file:///…` (see
   * folderStoreUrl), or an object store, `s3://bucket/prefix`, whose jobs `sisa worker --cache` runs after
   * fetching their inputs. The job names its inputs by content hash only, never by path.
   */
  store: string;
  shard: number;
  /** The shard file's sha256. */
  shardSha256: string;
  fromSlice: number;
  /** Checkpoint hash after slice fromSlice−1; null when fromSlice is 0. */
  startCheckpoint: string | null;
  learner: LearnerConfig;
  buckets: number;
  seed: number;
  slices: number;
  /**
   * The runtime the start checkpoint (and the rest of the model) was produced on, for a retrain; a
   * runner on another runtime refuses the job, since its weights would differ from a full retrain.
   */
  runtime?: Runtime;
  /**
   * Fail when the model's weights are not all finite (training diverged): set by train, so that such a
   * model never replaces a working one. A deletion's retrain leaves it unset: the models are what the
   * last train made them, and forgetting a record is never refused for their quality.
   */
  refuseDiverged?: boolean;
}

/**
 * A job input that is not there for this host, as opposed to one whose bytes are wrong: in a shared
 * folder (NFS) a file the coordinator just wrote may show up on another host only seconds later
 * (attribute caching gives ENOENT, or ESTALE after a rename over it). A queue retries such a job.
 */
export function notVisibleYet(err: unknown): boolean {
  if (err instanceof BlobMissingError || (err as { notVisibleYet?: unknown })?.notVisibleYet === true) return true;
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESTALE') return true;
  }
  return false;
}

/** Whether a job's blobs are in an object store (then only a worker with a cache can run it). */
export function inObjectStore(job: Pick<ShardJob, 'store'>): boolean {
  return !job.store.startsWith('file:');
}

/** The blob store of a job whose store is a local folder. */
export function localBlobs(job: Pick<ShardJob, 'store' | 'shard'>): FsBlobStore {
  if (inObjectStore(job))
    throw new SisaError('STATE', `shard ${job.shard}: this job's blobs are in ${job.store}; only a worker with a cache fetches them: 'sisa worker --queue URL --cache DIR'`);
  const ws = workspace(folderOfStoreUrl(job.store));
  return new FsBlobStore({ shardsDir: ws.shardsDir, checkpointsDir: ws.checkpointsDir });
}

export interface ShardJobResult {
  shard: number;
  fromSlice: number;
  /** Checkpoint hashes for slices fromSlice..slices−1. */
  checkpoints: string[];
  modelHash: string;
  backend: string;
  /** The full runtime the job trained on (backend and versions), recorded with the model. */
  runtime: Runtime;
  seconds: number;
  /** Where the time went inside the job (seconds). */
  timings: { loadData: number; restore: number; train: number; save: number };
}

/** The engine a job runs on: the backend choice, and a loader for tfjs that is called only when the job needs it. */
export interface JobEngine {
  choice: string;
  loadTf: () => Promise<LoadedBackend>;
}

/**
 * A shard's rows that the caller already holds, for a job run in its own process: a deletion has just
 * read the shard and written its new file from these rows, so reading that file back would only decode
 * the same rows again. Features are computed here from the texts, as reading the file does.
 */
export interface InMemoryShard {
  /** The rows of the file named by the job's shardSha256 (features not needed). */
  rows: Rows;
  /** The feature configuration that file records. */
  features: FeatureConfig;
}

export async function runShardJob(job: ShardJob, engine: JobEngine, onSlice?: (slice: number) => void, given?: InMemoryShard): Promise<ShardJobResult> {
  const t0 = performance.now();
  // The fused kernel runs the linear model without tfjs; anything else loads the tfjs backend.
  const fused = usesFusedKernel(engine.choice, job.learner.hidden);
  const backend = fused ? null : await engine.loadTf();
  const here = runtimeOf(backend ?? FUSED_BACKEND_NAME);
  if (job.runtime && !sameRuntime(job.runtime, here))
    throw new SisaError(
      'BACKEND',
      `shard ${job.shard}: this runner has backend ${describeRuntime(here)} but the model was trained on ${describeRuntime(job.runtime)}; a retrain from its checkpoint here would not be exact; run it where the model's runtime is (${job.runtime.backend === here.backend ? 'the same versions' : `--backend ${job.runtime.backend}`}), or pass --full-retrain to retrain the shard from scratch on this runtime`,
    );
  const blobs = localBlobs(job);
  const rows = given ? { ...given.rows, ...hashTexts(given.rows.texts, given.features) } : await readShard(job, blobs);
  const checkpointsDir = blobs.dirs.checkpointsDir;
  const t1 = performance.now();
  const start = job.startCheckpoint ? await loadCheckpoint(checkpointsDir, job.startCheckpoint) : null;
  const t2 = performance.now();
  let saving = 0;
  if (start && (start.meta.shard !== job.shard || start.meta.slice !== job.fromSlice - 1))
    throw new SisaError('STATE', `shard ${job.shard}: start checkpoint ${job.startCheckpoint?.slice(0, 12)} is for shard ${start.meta.shard} slice ${start.meta.slice}, expected slice ${job.fromSlice - 1}`);
  if (!start && job.fromSlice !== 0) throw new SisaError('STATE', `shard ${job.shard}: no checkpoint to restart slice ${job.fromSlice} from`);
  const checkpoints: string[] = [];
  let modelHash = '';
  let diverged = false;
  // Each checkpoint's deflate runs on libuv's thread pool while the next slice trains, so a one-shard
  // retrain uses the core its own thread leaves idle; its write, fsync and rename follow when this thread
  // next yields (the fused kernel trains without yielding, so after its last slice). Stores may finish
  // out of order; the array keeps slice order. The job returns only once every store has finished.
  const stores: Promise<void>[] = [];
  const onCheckpoint = async (ckpt: Checkpoint) => {
    const ts = performance.now();
    const at = checkpoints.length;
    checkpoints.push('');
    const store = (async () => {
      const sha = await storeCheckpoint(checkpointsDir, await encodeCheckpointAsync({ ...ckpt, meta: { ...ckpt.meta, runtime: here } }));
      const fault = outputFault('job:checkpoint-stored');
      if (fault === 'lose') await fsp.rm(checkpointPath(checkpointsDir, sha), { force: true });
      if (fault === 'damage') await fsp.truncate(checkpointPath(checkpointsDir, sha), 10);
      checkpoints[at] = sha;
      onSlice?.(ckpt.meta.slice);
    })();
    store.catch(() => undefined); // awaited below; a failure must not go unhandled while training goes on
    stores.push(store);
    // The model is the last slice's weights; hashing the others' (dense) weights would be wasted work.
    if (ckpt.meta.slice === job.slices - 1) {
      modelHash = paramsHash(ckpt.params);
      if (job.refuseDiverged) diverged = !ckpt.params.every((p) => allFinite(p.data));
    }
    saving += performance.now() - ts;
  };
  const common = { rows, cfg: job.learner, buckets: job.buckets, seed: job.seed, shard: job.shard, slices: job.slices, fromSlice: job.fromSlice, start, onSlice: onCheckpoint };
  let trainingError: { error: unknown } | null = null;
  try {
    if (backend) await trainShard({ tf: backend.tf, ...common });
    else await trainShardFused(common);
  } catch (error) {
    trainingError = { error };
  }
  // No store is left running after the job, even a failed one; a training failure is the one reported.
  const tw = performance.now();
  const settled = await Promise.allSettled(stores);
  saving += performance.now() - tw;
  if (trainingError) throw trainingError.error;
  // A model whose weights overflowed predicts nothing: it must not replace a working one.
  if (diverged)
    throw new SisaError('TRAIN', `shard ${job.shard}: training diverged (the model's weights are not finite numbers); lower --learning-rate (${job.learner.learningRate}); nothing was committed`);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const end = performance.now();
  return {
    shard: job.shard,
    fromSlice: job.fromSlice,
    checkpoints,
    modelHash,
    backend: here.backend,
    runtime: here,
    seconds: (end - t0) / 1000,
    timings: { loadData: (t1 - t0) / 1000, restore: (t2 - t1) / 1000, train: (end - t2 - saving) / 1000, save: saving / 1000 },
  };
}

function allFinite(data: ArrayLike<number>): boolean {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) return false;
  return true;
}

async function readShard(job: ShardJob, blobs: FsBlobStore): Promise<Rows> {
  const shardFile = await blobs.file('shard', job.shardSha256);
  if (!shardFile) throw new BlobMissingError({ kind: 'shard', sha256: job.shardSha256 }, blobs.location);
  return readRowsFile(shardFile, job.shardSha256);
}

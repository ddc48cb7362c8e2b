/** `sisa train`: train every shard's model from scratch, slice by slice, then commit the manifest. */
import { garbageCollect } from '../state/gc.js';
import { pullReferenced, syncBeforeCommit } from '../state/remote.js';
import { refitLazily } from './refit.js';
import { canFitFairness, LearnerConfig, lineageOf, loadState, nextModelVersion, saveState, type ModelInfo, type State } from '../state/manifest.js';
import { workspace } from '../state/workspace.js';
import { folderStoreUrl } from '../storage/fsBlobStore.js';
import { receiptModelVersions } from '../state/deletionLog.js';
import { isBackendChoice, BACKEND_CHOICES } from '../models/backendChoice.js';
import { SisaError, usageError } from '../util/errors.js';
import { WorkerPool, type JobRunner } from '../orchestration/pool.js';
import { runOperation } from '../state/operation.js';
import { crashPoint, pausePoint } from '../util/faults.js';
import { holdsLease } from '../state/lock.js';
import type { ShardJob, ShardJobResult } from '../orchestration/shardJob.js';
import { checkOptions, rule, type OptionSpec } from './options.js';
import { checkConcurrency, resolveLearner, runJobs, scheduledExamples } from '../orchestration/jobs.js';

export interface TrainOptions {
  /** Workspace folder, as created by `ingest`. */
  workdir: string;
  /** Compute backend: 'auto' (default), 'fused', 'tensorflow', 'wasm' or 'cpu'. */
  backend?: string;
  /** Shards trained at once, each in a worker thread (default: the number of cores). */
  concurrency?: number;
  /**
   * Learner settings; each one left out keeps the value the models were last trained with, or the
   * default (hidden 0, optimizer 'adagrad', epochs 6, batchSize 128, learningRate 2, l2 1e-6).
   */
  learner?: Partial<LearnerConfig>;
  /** Runs shard jobs elsewhere (a `QueueRunner` on BullMQ); default: worker threads in this process. */
  runner?: JobRunner;
  /** Called as slices finish: slices done so far and in all. */
  onProgress?: (done: number, total: number) => void;
  /** Wait for another sisa process holding the workspace instead of failing. */
  wait?: boolean;
}

const LEARNER_FIELDS: OptionSpec<LearnerConfig> = {
  hidden: rule.opt('number'),
  optimizer: rule.opt({ oneOf: ['adagrad', 'sgd'] }),
  epochs: rule.opt('number'),
  batchSize: rule.opt('number'),
  learningRate: rule.opt('number'),
  l2: rule.opt('number'),
  blockWidth: rule.opt('number'),
};

const TRAIN_OPTIONS: OptionSpec<TrainOptions> = {
  workdir: rule.req('string'),
  backend: rule.opt('string'),
  concurrency: rule.opt('number'),
  learner: rule.opt({ fields: LEARNER_FIELDS }),
  onProgress: rule.opt('function'),
  runner: rule.opt('object'),
  wait: rule.opt('boolean'),
};

export interface TrainResult {
  backend: string;
  shards: { shard: number; modelVersion: number; modelHash: string; seconds: number }[];
  seconds: number;
  examples: number;
  examplesPerSec: number;
  fairness: { refitted: boolean; error?: string };
}

export async function train(o: TrainOptions): Promise<TrainResult> {
  checkOptions('train', o, TRAIN_OPTIONS);
  return runOperation(o.workdir, 'train', { wait: o.wait }, () => trainLocked(o));
}

/**
 * The hidden layer's embedding holds one weight per bucket and unit, and training keeps two more arrays of
 * that size (gradients, AdaGrad's accumulator): 2^26 weights is 768 MiB per shard job, and --concurrency
 * jobs run at once (a prediction holds S embeddings). Refused before training; beyond it the run failed
 * deep in the engine ('Invalid typed array length', or out of memory).
 */
const MAX_EMBEDDING_WEIGHTS = 2 ** 26;
function checkEmbeddingSize(hidden: number, buckets: number): void {
  if (hidden * buckets > MAX_EMBEDDING_WEIGHTS)
    throw usageError(`--hidden ${hidden} is too large for ${buckets} hashing buckets: at most ${Math.floor(MAX_EMBEDDING_WEIGHTS / buckets)} hidden units (the embedding holds buckets × units weights, at most 2^26); use fewer --buckets at ingest for more units`);
}

async function trainLocked(o: TrainOptions): Promise<TrainResult> {
  const t0 = performance.now();
  const ws = workspace(o.workdir);
  const state = await loadState(ws);
  const backend = o.backend ?? 'auto';
  if (!isBackendChoice(backend)) throw usageError(`--backend must be one of ${BACKEND_CHOICES.join(', ')}, got '${backend}'`);
  const concurrency = checkConcurrency(o.concurrency);
  const learner = resolveLearner(state.training?.learner, o.learner);
  // Checked when asked for: a workspace already trained with a larger layer (before the bound) retrains as it is.
  if (o.learner?.hidden !== undefined) checkEmbeddingSize(learner.hidden, state.config.features.buckets);
  // Local worker threads read the workspace folder; queue workers read the object store when there is one.
  const blobsUrl = o.runner && state.store ? state.store : folderStoreUrl(ws.root);
  const jobs: ShardJob[] = state.shards.map((s) => ({
    store: blobsUrl,
    shard: s.shard,
    shardSha256: s.sha256,
    fromSlice: 0,
    startCheckpoint: null,
    learner,
    buckets: state.config.features.buckets,
    seed: state.config.seed,
    slices: state.config.slices,
    refuseDiverged: true,
  }));
  // Local worker threads read the workspace cache; queue workers fetch from the store themselves.
  if (!o.runner) await pullReferenced(ws, state, ['shard']);
  const total = jobs.length * state.config.slices;
  let done = 0;
  const runner = o.runner ?? new WorkerPool(Math.min(concurrency, jobs.length), backend, () => o.onProgress?.(++done, total));
  let results: ShardJobResult[];
  try {
    results = await runJobs(runner, jobs);
  } catch (err) {
    // Workers still running (after Ctrl-C) are stopped first, so that none writes after the sweep.
    if (!o.runner) await runner.close();
    await garbageCollect(ws, state); // drop the checkpoints of the failed run; the committed ones stay
    throw err;
  }
  if (!o.runner) await runner.close();
  const backends = [...new Set(results.map((r) => r.backend))];
  if (backends.length !== 1) throw new SisaError('TRAIN', `workers used different backends (${backends.join(', ')}); pass --backend explicitly`);
  const receiptVersions = await receiptModelVersions(ws, state);
  const now = new Date().toISOString();
  const models: ModelInfo[] = results.map((r) => ({
    shard: r.shard,
    version: Math.max(nextModelVersion(state, r.shard), (receiptVersions.get(r.shard) ?? 0) + 1),
    checkpoints: r.checkpoints,
    modelHash: r.modelHash,
    dataSha256: state.shards[r.shard]!.sha256,
    lineage: lineageOf(state.shards[r.shard]!),
    trainedAt: now,
    seconds: r.seconds,
    runtime: r.runtime,
  }));
  const next: State = { ...state, training: { backend: backends[0]!, learner, trainedAt: now, runtime: results[0]!.runtime }, models, revision: state.revision + 1 };
  try {
    // Every checkpoint the new state names is in the store with its hash checked, before the commit.
    await syncBeforeCommit(ws, next);
  } catch (err) {
    // The store error is the one to report; a sweep that fails too is redone by the next gc.
    await garbageCollect(ws, state).catch(() => undefined);
    throw err;
  }
  crashPoint('train:jobs-done');
  await pausePoint('train:jobs-done');
  try {
    await saveState(ws, next);
  } catch (err) {
    if (await holdsLease(ws)) await garbageCollect(ws, state); // Ctrl-C or a failed write: nothing committed
    throw err;
  }
  crashPoint('train:committed');
  await garbageCollect(ws, next);
  const seconds = (performance.now() - t0) / 1000;
  const examples = scheduledExamples(state, learner);
  return {
    backend: backends[0]!,
    shards: models.map((m) => ({ shard: m.shard, modelVersion: m.version, modelHash: m.modelHash, seconds: m.seconds })),
    seconds,
    examples,
    examplesPerSec: examples / seconds,
    // The fairness module (LP solver, schemas) loads only when there is something to refit: ~0.15 s.
    fairness: canFitFairness(next) ? await refitLazily(ws.root) : { refitted: false },
  };
}

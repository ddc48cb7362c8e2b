/**
 * Prediction on several cores for an all-linear ensemble: each worker hashes and scores whole batches,
 * so the only data crossing threads are the texts and S floats per row (not each row's features).
 * scoreOnThreads spreads a prediction over the workers and the calling thread.
 */
import os from 'node:os';
import { PooledWorkers, RequestPool } from '../util/workerPool.js';
import { forEachFeatureBatch, type FeatureConfig } from '../features/hashing.js';
import { hashingKernel } from '../features/hashKernel.js';
import { compiledKernels } from '../util/wasm.js';
import { releaseScoringRegions, scoreLinearInto, scoringKernel, type LinearMembers } from './linearScore.js';
import type { ScoreInit, ScoreReply, ScoreRequest } from './scoreWorker.js';

/** Scores batches of texts on worker threads: what scoreOnThreads needs of a ScorePool. */
export interface BatchScorer {
  readonly threads: number;
  /** Member probabilities of a batch, probs[m·n + r], computed on worker `index` (0 ≤ index < threads). */
  scoreOn(index: number, texts: string[]): Promise<Float32Array>;
  /** Whether worker `index` has answered a request before (it has started); absent: taken as not. */
  answered?(index: number): boolean;
}

export class ScorePool extends PooledWorkers<Omit<ScoreRequest, 'id'>, ScoreReply> implements BatchScorer {
  /** Per worker: whether it has answered a request (it has started). */
  private readonly started: boolean[] = [];

  /** `members` from newLinearMembers: its memory is shared with the workers, not copied to each. */
  constructor(
    features: FeatureConfig,
    private readonly members: LinearMembers,
    threads = os.availableParallelism(),
  ) {
    super(new RequestPool(new URL('./scoreWorker.js', import.meta.url), threads, { workerData: { features, members, kernels: kernelsForWorkers() } satisfies ScoreInit }));
  }

  /** The number of worker threads. */
  get threads(): number {
    return this.pool.size;
  }

  /** Member probabilities of a batch, probs[m·n + r], computed on worker `index` (0 ≤ index < threads). */
  async scoreOn(index: number, texts: string[]): Promise<Float32Array> {
    const { probs } = await this.pool.requestOn(index, { texts });
    this.started[index] = true;
    return probs;
  }

  /** Whether worker `index` has answered a request before. */
  answered(index: number): boolean {
    return this.started[index] === true;
  }

  /** Stops the workers, and frees the scoring regions of any that was stopped in the middle of a batch. */
  override async close(): Promise<void> {
    const ids = this.pool.threadIds();
    await super.close();
    releaseScoringRegions(this.members, ids);
  }
}

/** The featurisation and scoring kernels, compiled on this thread, for the workers to share (see compiledKernels). */
function kernelsForWorkers() {
  hashingKernel();
  scoringKernel();
  return compiledKernels();
}

/** The smallest batch: the last batches shrink, so that the threads finish together, down to this. */
const MIN_BATCH = 256;
/** This thread's batch: small, since it hands the workers their next batches in between. */
const OWN_BATCH = 1024;

/** Rows scored where (diagnostics, and the tests). */
export interface ThreadShares {
  /** Rows this thread scored. */
  own: number;
  /** Rows the workers scored. */
  workers: number;
}

/**
 * Member probabilities of every text, flat[m·n + r], scored by the pool's workers and by this thread
 * (at most `batch` rows per worker request). Rows are handed out from a cursor as threads free up, not
 * dealt out up front, so a thread that runs faster takes more; each worker has two requests in flight, so
 * it never waits for this thread between batches; the last batches shrink so that the threads finish
 * close together.
 *
 * A worker's first request is one small batch, and its second goes out only once that one is answered;
 * then its batches double up to `batch` (a worker that answered in an earlier call gets full batches). A
 * worker that is still starting (or whose kernels are still cold) would otherwise hold two full batches
 * that this thread, already running, could have scored: in a one-call prediction of Davidson's 24,783
 * texts the worker took 8,192 rows before it had started, and this thread, done with the rest, waited for
 * them (the call took as long as on one thread).
 *
 * Why this thread scores too, with one worker fewer than the cores: it would otherwise sit idle while
 * the workers work, and a worker costs more than it adds at first: it takes tens of milliseconds to start
 * (a thread, its modules, its kernels), and its first batches run at about half speed (its kernels on
 * baseline code, its character-gram memo empty). This thread pays its own cold start once, not per
 * worker; in `sisa predict` it is as cold as a worker, in a library caller that predicts again it is warm.
 * Every row is scored by the same kernels wherever it runs, so the result does not depend on which
 * thread scored it. `shares`, when given, receives how many rows each side scored.
 */
export async function scoreOnThreads(
  pool: BatchScorer,
  members: LinearMembers,
  features: FeatureConfig,
  texts: readonly string[],
  batch: number,
  shares?: ThreadShares,
): Promise<Float32Array> {
  const n = texts.length;
  const S = members.biases.length;
  const flat = new Float32Array(S * n);
  const threads = pool.threads + 1;
  let cursor = 0;
  let failed = false;
  const take = (size: number) => {
    const at = cursor;
    const share = Math.ceil((n - cursor) / (2 * threads));
    cursor = Math.min(n, cursor + Math.max(Math.min(size, MIN_BATCH), Math.min(size, share)));
    return { at, k: cursor - at };
  };
  // Per worker: its batch size, doubled at each reply, and its first reply (which lets its second lane start).
  // A worker that has answered before (a resident pool's, from an earlier call) is started: full batches.
  const warm = Array.from({ length: pool.threads }, (_, w) => pool.answered?.(w) === true);
  const size = warm.map((started) => (started ? batch : MIN_BATCH));
  const answered = Array.from({ length: pool.threads }, () => {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    return { promise, resolve };
  });
  const lane = async (worker: number, second: boolean) => {
    try {
      if (second && !warm[worker]) await answered[worker]!.promise;
      for (;;) {
        if (failed) return; // another thread failed: the prediction is over
        const { at, k } = take(Math.min(batch, size[worker]!));
        if (k === 0) return;
        const part = await pool.scoreOn(worker, texts.slice(at, at + k));
        if (part.length !== S * k) throw new Error(`a scoring worker returned ${part.length} probabilities for ${k} rows of ${S} models`);
        for (let m = 0; m < S; m++) flat.set(part.subarray(m * k, (m + 1) * k), m * n + at);
        if (shares) shares.workers += k;
        size[worker] = Math.min(batch, 2 * size[worker]!);
        answered[worker]!.resolve();
      }
    } catch (err) {
      failed = true; // this thread stops taking rows; the failure is reported below
      throw err;
    } finally {
      answered[worker]!.resolve(); // the second lane then finds nothing left, or the failure
    }
  };
  const lanes = Promise.all(Array.from({ length: 2 * pool.threads }, (_, i) => lane(i % pool.threads, i >= pool.threads)));
  lanes.catch(() => undefined); // awaited below, unless this thread throws first
  try {
    while (!failed && cursor < n) {
      const { at, k } = take(OWN_BATCH);
      forEachFeatureBatch(texts.slice(at, at + k), features, (b) => scoreLinearInto(members, b, b.rows, flat, n, at + b.first));
      if (shares) shares.own += k;
      await new Promise<void>((resolve) => setImmediate(resolve)); // lets the workers' replies in, and their next batches out
    }
  } catch (err) {
    failed = true; // the lanes stop taking rows too
    throw err;
  }
  await lanes;
  return flat;
}

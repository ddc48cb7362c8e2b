/**
 * The SISA ensemble at prediction time: the S constituent models, loaded once from their latest
 * checkpoints and aggregated by vote or mean. All-linear ensembles are scored together by sisa's own kernel
 * (linearScore.ts, in WebAssembly); others by their learner's predictProba, in plain JavaScript (no tfjs needed).
 */
import os from 'node:os';
import { pullReferenced } from '../state/remote.js';
import { hashTexts, type FeatureConfig } from '../features/hashing.js';
import type { Rows } from '../data/shardFile.js';
import { requireTrained, type State } from '../state/manifest.js';
import type { Workspace } from '../state/workspace.js';
import { loadCheckpoint, type TensorBlob } from './checkpoint.js';
import { predictProba } from './learner.js';
import { majority, vote } from '../util/vote.js';
import { stateError } from '../util/errors.js';
import { newLinearMembers, scoreLinear, type LinearMembers } from './linearScore.js';

export type Aggregate = 'vote' | 'mean';

export interface Ensemble {
  features: FeatureConfig;
  models: { shard: number; version: number; params: TensorBlob[] }[];
  /**
   * For all-linear ensembles: weights interleaved bucket-major (w[bucket·S + model]) and biases, so
   * that scoring reads one cache line per feature for all S models instead of S scattered ones.
   */
  linear: LinearMembers | null;
}

function interleave(models: Ensemble['models'], buckets: number): Ensemble['linear'] {
  const ws = models.map((m) => m.params.find((p) => p.name === 'w')?.data);
  if (ws.some((w) => !w)) return null;
  const S = models.length;
  // Shared memory, so that prediction workers read these weights without a copy each.
  const members = newLinearMembers(buckets, S);
  const { weights, biases } = members;
  ws.forEach((w, m) => {
    for (let b = 0; b < buckets; b++) weights[b * S + m] = w![b]!;
  });
  models.forEach((m, i) => (biases[i] = m.params.find((p) => p.name === 'b')!.data[0]!));
  return members;
}

/**
 * Refuses a model whose size is not the workspace's bucket count. Scoring indexes a model by the buckets
 * the features name: the linear kernels would read past the weights (into the biases, or another thread's
 * rows), and the hidden-layer model would read undefined past its embedding, which makes every probability
 * NaN and every label "not toxic", silently.
 */
function refuseMisfits(models: Ensemble['models'], buckets: number): void {
  const damaged = 'the manifest and its models disagree (a damaged or hand-edited workspace)';
  for (const m of models) {
    const p = new Map(m.params.map((t) => [t.name, t.data]));
    const w = p.get('w');
    if (w) {
      if (w.length !== buckets) throw stateError(`the model of shard ${m.shard} has ${w.length} weights, but the workspace hashes texts into ${buckets} buckets: ${damaged}`);
      continue;
    }
    const emb = p.get('emb');
    const H = p.get('b1')?.length ?? 0;
    if (emb && H > 0 && emb.length !== buckets * H)
      throw stateError(`the model of shard ${m.shard} has an embedding of ${emb.length} values (${H} per bucket), but the workspace hashes texts into ${buckets} buckets: ${damaged}`);
  }
}

export async function loadEnsemble(ws: Workspace, state: State): Promise<Ensemble> {
  requireTrained(state);
  // A store workspace's local cache may lack the models (cleared, or another machine trained them).
  await pullReferenced(ws, state, ['checkpoint']);
  const models = await Promise.all(
    state.models.map(async (m) => ({ shard: m.shard, version: m.version, params: (await loadCheckpoint(ws.checkpointsDir, m.checkpoints.at(-1)!)).params })),
  );
  refuseMisfits(models, state.config.features.buckets);
  return { features: state.config.features, models, linear: interleave(models, state.config.features.buckets) };
}

export type SparseBatch = Pick<Rows, 'offsets' | 'indices' | 'values'> & { n: number };

export function featurize(texts: readonly string[], features: FeatureConfig): SparseBatch {
  return { ...hashTexts(texts, features), n: texts.length };
}

/** Each constituent's probability for each row: result[model][row]. */
export function memberProbabilities(ens: Ensemble, batch: SparseBatch): Float32Array[] {
  if (!ens.linear) return ens.models.map((m) => predictProba(m.params, batch, batch.n));
  const probs = scoreLinear(ens.linear, batch, batch.n);
  return ens.models.map((_, m) => probs.subarray(m * batch.n, (m + 1) * batch.n));
}

/** Number of models voting positive (probability ≥ 0.5) for each row. */
export function voteCounts(probs: readonly Float32Array[]): Int32Array {
  const n = probs[0]?.length ?? 0;
  const votes = new Int32Array(n);
  for (const p of probs) for (let i = 0; i < n; i++) votes[i]! += vote(p[i]!);
  return votes;
}

export interface Scored {
  score: Float64Array;
  label: Uint8Array;
}

/**
 * vote: score = fraction of positive votes, label = majority (ties → positive);
 * mean: score = mean probability, label = score ≥ 0.5.
 */
export function aggregate(probs: readonly Float32Array[], how: Aggregate): Scored {
  const S = probs.length;
  const n = probs[0]?.length ?? 0;
  const score = new Float64Array(n);
  const label = new Uint8Array(n);
  if (how === 'vote') {
    const votes = voteCounts(probs);
    for (let i = 0; i < n; i++) {
      score[i] = votes[i]! / S;
      label[i] = majority(votes[i]!, S);
    }
  } else {
    for (const p of probs) for (let i = 0; i < n; i++) score[i]! += p[i]!;
    for (let i = 0; i < n; i++) {
      score[i]! /= S;
      label[i] = vote(score[i]!);
    }
  }
  return { score, label };
}

/** Library entry point: scores raw texts with the ensemble (hashing on this thread). */
export function predictTexts(ens: Ensemble, texts: readonly string[], how: Aggregate = 'vote'): Scored {
  return aggregate(memberProbabilities(ens, featurize(texts, ens.features)), how);
}

/**
 * The same for many texts, on several threads, for one call: its worker threads start and stop with it
 * (see Predictor, which keeps them).
 */
export async function predictTextsParallel(ens: Ensemble, texts: readonly string[], how: Aggregate = 'vote', batch = 4096): Promise<Scored> {
  const predictor = new Predictor(ens);
  try {
    return await predictor.predict(texts, how, batch);
  } finally {
    await predictor.close();
  }
}

/** A Predictor's workers and the calls running on them: they keep the process alive only while it has some. */
type PoolSlot = ({ kind: 'score'; pool: import('./scorePool.js').ScorePool } | { kind: 'features'; pool: import('../features/pool.js').FeaturePool }) & {
  calls: number;
  /** Replaced (a worker stopped) or closed: it is closed when its last call ends. */
  retired: boolean;
};

/**
 * Prediction on several threads that keeps its worker threads from one call to the next. An all-linear
 * ensemble is hashed and scored on this thread and on `workers` worker threads (one per other core by
 * default; its weights shared, not copied): workers return S floats per row, which this thread gathers
 * between batches of its own (see scoreOnThreads). Otherwise batches are hashed on `workers` + 1 workers
 * while this thread scores the batches already hashed. Calls with fewer than two batches of texts run on
 * this thread alone.
 *
 * Why keep the workers: a worker takes tens of milliseconds to start and runs its first batches on cold
 * kernels, which a process that predicts again (a service, a caller scoring a stream of batches) would
 * otherwise pay on every call. The workers start with the first call that needs them; calls may overlap
 * (they share the workers). While no call runs, the workers do not keep the process alive, so a caller
 * that never closes the predictor still exits. A call that fails because a worker stopped retires the
 * workers (the next call starts fresh ones); one that fails for another reason leaves them to the other
 * calls. close() stops them: calls still running fail, later ones are refused. Scores are the same bits as
 * predictTexts' on one thread, whichever thread scored a row.
 */
export class Predictor {
  private current: Promise<PoolSlot> | null = null;
  private closed = false;

  constructor(
    readonly ens: Ensemble,
    private readonly workers = os.availableParallelism() - 1,
  ) {}

  async predict(texts: readonly string[], how: Aggregate = 'vote', batch = 4096): Promise<Scored> {
    if (this.closed) throw new Error('this predictor is closed');
    const { ens } = this;
    if (texts.length < 2 * batch || (ens.linear && this.workers < 1)) return predictTexts(ens, texts, how);
    // Set before the first await, so that calls made together share one pool.
    const starting = (this.current ??= this.startPool());
    let slot: PoolSlot;
    try {
      slot = await starting;
    } catch (err) {
      if (this.current === starting) this.current = null;
      throw err;
    }
    if (this.closed) throw new Error('this predictor is closed'); // close() stops the pool it started
    if (slot.calls++ === 0) slot.pool.keepAlive(true);
    try {
      return await predictOn(slot, ens, texts, how, batch);
    } catch (err) {
      if (!slot.pool.healthy()) {
        slot.retired = true;
        if (this.current === starting) this.current = null;
      }
      throw err;
    } finally {
      if (--slot.calls === 0) {
        if (slot.retired) await slot.pool.close();
        else slot.pool.keepAlive(false);
      }
    }
  }

  /** The thread ids of the workers it holds now (none before the first call that needs them, or after close). */
  async threadIds(): Promise<number[]> {
    const slot = await this.current?.catch(() => null);
    return slot?.pool.threadIds() ?? [];
  }

  /** Stops the workers: calls still running fail ('the worker pool is closed'), later calls are refused. */
  async close(): Promise<void> {
    this.closed = true;
    const starting = this.current;
    this.current = null;
    const slot = await starting?.catch(() => null);
    if (!slot) return;
    slot.retired = true;
    await slot.pool.close();
  }

  private async startPool(): Promise<PoolSlot> {
    if (this.ens.linear) {
      const { ScorePool } = await import('./scorePool.js');
      return { kind: 'score', pool: new ScorePool(this.ens.features, this.ens.linear, this.workers), calls: 0, retired: false };
    }
    const { FeaturePool } = await import('../features/pool.js');
    return { kind: 'features', pool: new FeaturePool(this.ens.features, this.workers + 1), calls: 0, retired: false };
  }
}

async function predictOn(slot: PoolSlot, ens: Ensemble, texts: readonly string[], how: Aggregate, batch: number): Promise<Scored> {
  if (slot.kind === 'score') {
    const { scoreOnThreads } = await import('./scorePool.js');
    const flat = await scoreOnThreads(slot.pool, ens.linear!, ens.features, texts, batch);
    return aggregate(
      ens.models.map((_, m) => flat.subarray(m * texts.length, (m + 1) * texts.length)),
      how,
    );
  }
  const probs = ens.models.map(() => new Float32Array(texts.length));
  const pending: { at: number; f: ReturnType<typeof slot.pool.featurize> }[] = [];
  for (let at = 0; at < texts.length; at += batch) {
    const f = slot.pool.featurize(texts.slice(at, at + batch));
    f.catch(() => undefined); // awaited below in order; one that fails ends the call there, and the rest may never be awaited
    pending.push({ at, f });
  }
  for (const { at, f } of pending) {
    const csr = await f;
    const part = memberProbabilities(ens, { ...csr, n: csr.offsets.length - 1 });
    part.forEach((p, m) => probs[m]!.set(p, at));
  }
  return aggregate(probs, how);
}

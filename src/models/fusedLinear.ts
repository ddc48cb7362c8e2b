/**
 * The fused kernel for the default learner (hashed logistic regression, `hidden: 0`): one loop per batch
 * over the batch's features on plain arrays, with no tensors, no per-op dispatch and no allocation per
 * batch. This module prepares a job (compact feature space, start state, row orders, checkpoints); the
 * step itself is WebAssembly (fusedStep.as.ts, loaded by fusedStep.ts). It is its own module behind the
 * learner interface rather than a tfjs custom kernel because the whole training step (logits, gradient,
 * L2, AdaGrad/SGD update of the touched coordinates) is one operation here; split into tfjs kernels it
 * would pay the dispatch and packing that made the tfjs path slow, and it needs no tfjs at all, so a
 * one-shard retrain runs in-process without loading a backend.
 *
 * Arithmetic is in float64 with results stored to float32 parameters; JavaScript's and WebAssembly's
 * double arithmetic is IEEE-exact on every platform Node runs on, so the same data and seed give the same
 * bits anywhere (and the same bits as version 1's step in TypeScript, so the kernel id is unchanged).
 * It is not bit-compatible with the tfjs path (which sums in float32 in another order): checkpoints
 * record the kernel (FUSED_KERNEL), and a checkpoint from one engine is never continued by the other.
 */
import type { Rows } from '../data/shardFile.js';
import type { LearnerConfig } from '../state/manifest.js';
import { deriveSeed, mulberry32, shuffleInPlace } from '../util/rng.js';
import { sparseBlob, type Checkpoint, type KernelId, type TensorBlob } from './checkpoint.js';
import { FusedStep } from './fusedStep.js';

export const FUSED_KERNEL: KernelId = { name: 'fused-linear', version: 1 };
/** The name recorded as the training backend in the manifest. */
export const FUSED_BACKEND_NAME = `${FUSED_KERNEL.name}-v${FUSED_KERNEL.version}`;

/** AdaGrad's initial accumulator (the same as the tfjs path's, so the two learn alike). */
export const ADAGRAD_INITIAL = 0.1;

export interface FusedTrainArgs {
  rows: Rows;
  cfg: LearnerConfig;
  buckets: number;
  seed: number;
  shard: number;
  slices: number;
  fromSlice: number;
  start: Checkpoint | null;
  onSlice: (ckpt: Checkpoint) => Promise<void>;
}

function sameKernel(a: KernelId | undefined, b: KernelId): boolean {
  return !!a && a.name === b.name && a.version === b.version;
}

/** Trains slices fromSlice..slices−1 with the SISA union schedule (the same row order as the tfjs path). */
export async function trainShardFused(a: FusedTrainArgs): Promise<void> {
  const { rows, cfg, buckets } = a;
  if (cfg.hidden !== 0) throw new Error('the fused kernel trains only the linear model (hidden 0)');
  if (a.fromSlice > 0 && !a.start) throw new Error('trainShardFused: a start checkpoint is needed when fromSlice > 0');
  if (a.start && !sameKernel(a.start.meta.kernel, FUSED_KERNEL))
    throw new Error(`checkpoint was written by ${a.start.meta.kernel ? `${a.start.meta.kernel.name} v${a.start.meta.kernel.version}` : 'the tfjs engine'}, not ${FUSED_KERNEL.name} v${FUSED_KERNEL.version}; retrain the shard from scratch`);
  const adagrad = cfg.optimizer === 'adagrad';
  // The start checkpoint's full-size tensors (a coordinate of no remaining row keeps its value there; L2
  // is applied lazily, to touched coordinates only), or null: every coordinate then starts at its
  // initial value, and no full-size tensor is needed.
  let base: { w: Float32Array; acc: Float32Array | null } | null = null;
  const bias = new Float32Array(1);
  const accB = adagrad ? new Float32Array(1).fill(ADAGRAD_INITIAL) : null;
  if (a.start) {
    const p = new Map(a.start.params.map((t) => [t.name, t.data]));
    bias.set(p.get('b')!);
    base = { w: p.get('w')!, acc: null };
    if (adagrad) {
      const o = new Map(a.start.optimizer.map((t) => [t.name, t.data]));
      const acc = o.get('acc:w');
      const accBias = o.get('acc:b');
      if (!acc || !accBias) throw new Error('the start checkpoint has no AdaGrad state (acc:w, acc:b); retrain the shard from scratch');
      base.acc = acc;
      accB!.set(accBias);
    }
  }
  // The job runs in WebAssembly (fusedStep.ts): it numbers the rows' features into a compact space,
  // sets their start values, and steps; a compact feature's weight, AdaGrad accumulator and the batch's
  // gradient sum share one 16-byte record, so a row's logit, its gradient shares and the update all find
  // a feature on one cache line.
  const kernel = new FusedStep({
    buckets,
    rows: rows.ids.length,
    offsets: rows.offsets,
    indices: rows.indices,
    values: rows.values,
    labels: rows.labels,
    batchSize: cfg.batchSize,
    l2: cfg.l2,
    adagrad,
    initialAcc: ADAGRAD_INITIAL,
    base,
  });
  kernel.bias[0] = bias[0]!;
  if (accB) kernel.bias[1] = accB[0]!;
  let step = a.start?.meta.step ?? 0;
  for (let slice = a.fromSlice; slice < a.slices; slice++) {
    let n = 0;
    for (let r = 0; r < rows.ids.length; r++) if (rows.slices[r]! <= slice) n++;
    const ascending = new Int32Array(n);
    n = 0;
    for (let r = 0; r < rows.ids.length; r++) if (rows.slices[r]! <= slice) ascending[n++] = r;
    const order = kernel.order.subarray(0, n);
    for (let epoch = 0; epoch < cfg.epochs; epoch++) {
      // Each epoch shuffles the rows in ascending order, so the order depends on the seed alone.
      order.set(ascending);
      shuffleInPlace(order, mulberry32(deriveSeed(a.seed, a.shard, slice, epoch)));
      for (let s = 0; s < order.length; s += cfg.batchSize) {
        const end = Math.min(order.length, s + cfg.batchSize);
        const lr = adagrad ? cfg.learningRate : cfg.learningRate / Math.sqrt(1 + step / 200);
        kernel.step(s, end, lr);
        step += 1;
      }
    }
    bias[0] = kernel.bias[0]!;
    if (accB) accB[0] = kernel.bias[1]!;
    // Checkpoints are handed on sparse: the coordinates that differ from their initial value, exactly
    // (see FusedStep.listedValues). A retrain starts from the checkpoint before the earliest affected
    // slice, never from the last one, so the last checkpoint (the model) keeps no optimiser state: a
    // third less to store.
    const last = slice === a.slices - 1;
    const listed = kernel.listedValues(adagrad && !last);
    const params: TensorBlob[] = [sparseBlob('w', listed.w), { name: 'b', data: bias.slice() }];
    const optimizer: TensorBlob[] = listed.acc ? [sparseBlob('acc:w', listed.acc), { name: 'acc:b', data: accB!.slice() }] : [];
    await a.onSlice({ meta: { shard: a.shard, slice, buckets, hidden: 0, step, kernel: FUSED_KERNEL }, params, optimizer });
  }
}

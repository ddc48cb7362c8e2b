/**
 * The fused kernel for the default learner (hashed logistic regression, `hidden: 0`): one loop per batch
 * over the batch's features on plain typed arrays, with no tensors, no per-op dispatch and no
 * allocation per batch. It is its own module behind the learner interface rather than a tfjs custom
 * kernel because the whole training step (logits, gradient, L2, AdaGrad/SGD update of the touched
 * coordinates) is one operation here; split into tfjs kernels it would pay the dispatch and packing
 * that made the tfjs path slow, and it needs no tfjs at all, so a one-shard retrain runs in-process
 * without loading a backend.
 *
 * Arithmetic is in float64 with results stored to float32 parameters; JavaScript's double arithmetic is
 * IEEE-exact on every platform Node runs on, so the same data and seed give the same bits anywhere.
 * It is not bit-compatible with the tfjs path (which sums in float32 in another order): checkpoints
 * record the kernel (FUSED_KERNEL), and a checkpoint from one engine is never continued by the other.
 */
import type { Rows } from '../data/shardFile.js';
import type { LearnerConfig } from '../state/manifest.js';
import { deriveSeed, mulberry32, shuffleInPlace } from '../util/rng.js';
import type { Checkpoint, KernelId, TensorBlob } from './checkpoint.js';

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
  const w = new Float32Array(buckets);
  const bias = new Float32Array(1);
  const acc = adagrad ? new Float32Array(buckets).fill(ADAGRAD_INITIAL) : null;
  const accB = adagrad ? new Float32Array(1).fill(ADAGRAD_INITIAL) : null;
  if (a.start) {
    const p = new Map(a.start.params.map((t) => [t.name, t.data]));
    w.set(p.get('w')!);
    bias.set(p.get('b')!);
    const o = new Map(a.start.optimizer.map((t) => [t.name, t.data]));
    if (acc) acc.set(o.get('acc:w')!);
    if (accB) accB.set(o.get('acc:b')!);
  }
  let step = a.start?.meta.step ?? 0;
  const { offsets, indices, values, labels } = rows;
  // Gradient per feature, zeroed again after each batch at the touched coordinates only.
  const grad = new Float64Array(buckets);
  const stamp = new Int32Array(buckets);
  const touched = new Int32Array(buckets);
  const rowGrad = new Float64Array(cfg.batchSize);
  let batchNo = 0;
  const l2 = cfg.l2;
  for (let slice = a.fromSlice; slice < a.slices; slice++) {
    let n = 0;
    for (let r = 0; r < rows.ids.length; r++) if (rows.slices[r]! <= slice) n++;
    const order = new Int32Array(n);
    n = 0;
    for (let r = 0; r < rows.ids.length; r++) if (rows.slices[r]! <= slice) order[n++] = r;
    for (let epoch = 0; epoch < cfg.epochs; epoch++) {
      order.sort();
      shuffleInPlace(order, mulberry32(deriveSeed(a.seed, a.shard, slice, epoch)));
      for (let s = 0; s < order.length; s += cfg.batchSize) {
        const end = Math.min(order.length, s + cfg.batchSize);
        const lr = adagrad ? cfg.learningRate : cfg.learningRate / Math.sqrt(1 + step / 200);
        const b0 = bias[0]!;
        // Forward: logit and d(log loss)/d(logit) per row, with the weights as they were before the batch.
        let gBias = 0;
        for (let i = s; i < end; i++) {
          const r = order[i]!;
          let z = b0;
          for (let j = offsets[r]!, e = offsets[r + 1]!; j < e; j++) z += w[indices[j]!]! * values[j]!;
          const g = 1 / (1 + Math.exp(-z)) - labels[r]!;
          rowGrad[i - s] = g;
          gBias += g;
        }
        // Backward: gradient per distinct feature, in order of first appearance.
        const now = ++batchNo;
        let U = 0;
        for (let i = s; i < end; i++) {
          const r = order[i]!;
          const g = rowGrad[i - s]!;
          for (let j = offsets[r]!, e = offsets[r + 1]!; j < e; j++) {
            const f = indices[j]!;
            if (stamp[f] !== now) {
              stamp[f] = now;
              touched[U++] = f;
            }
            grad[f] += g * values[j]!;
          }
        }
        // Update the touched coordinates; L2 is part of the gradient (applied lazily, to touched ones).
        if (acc) {
          for (let k = 0; k < U; k++) {
            const f = touched[k]!;
            const wf = w[f]!;
            const g = grad[f]! + l2 * wf;
            grad[f] = 0;
            const af = acc[f]! + g * g;
            acc[f] = af;
            w[f] = wf - (lr * g) / Math.sqrt(Math.fround(af));
          }
          const ab = accB![0]! + gBias * gBias;
          accB![0] = ab;
          bias[0] = b0 - (lr * gBias) / Math.sqrt(Math.fround(ab));
        } else {
          for (let k = 0; k < U; k++) {
            const f = touched[k]!;
            const wf = w[f]!;
            w[f] = wf - lr * (grad[f]! + l2 * wf);
            grad[f] = 0;
          }
          bias[0] = b0 - lr * gBias;
        }
        step += 1;
      }
    }
    const params: TensorBlob[] = [
      { name: 'w', data: w.slice() },
      { name: 'b', data: bias.slice() },
    ];
    // A retrain starts from the checkpoint before the earliest affected slice, never from the last
    // one, so the last checkpoint (the model) keeps no optimiser state: a third less to store.
    const last = slice === a.slices - 1;
    const optimizer: TensorBlob[] = acc && !last ? [{ name: 'acc:w', data: acc.slice() }, { name: 'acc:b', data: accB!.slice() }] : [];
    await a.onSlice({ meta: { shard: a.shard, slice, buckets, hidden: 0, step, kernel: FUSED_KERNEL }, params, optimizer });
  }
}

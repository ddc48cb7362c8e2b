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
  // Weight f and its AdaGrad accumulator sit side by side (wa[2f], wa[2f+1]): an update reads and
  // writes both, and one cache line then serves both. The buckets are far larger than the CPU caches,
  // so the kernel's time is its cache misses, not its arithmetic.
  const wa = new Float32Array(2 * buckets);
  const bias = new Float32Array(1);
  const accB = adagrad ? new Float32Array(1).fill(ADAGRAD_INITIAL) : null;
  if (adagrad) for (let f = 0; f < buckets; f++) wa[2 * f + 1] = ADAGRAD_INITIAL;
  if (a.start) {
    const p = new Map(a.start.params.map((t) => [t.name, t.data]));
    const w0 = p.get('w')!;
    for (let f = 0; f < buckets; f++) wa[2 * f] = w0[f]!;
    bias.set(p.get('b')!);
    const o = new Map(a.start.optimizer.map((t) => [t.name, t.data]));
    if (adagrad) {
      const acc0 = o.get('acc:w')!;
      for (let f = 0; f < buckets; f++) wa[2 * f + 1] = acc0[f]!;
      accB!.set(o.get('acc:b')!);
    }
  }
  let step = a.start?.meta.step ?? 0;
  const { offsets, indices, values, labels } = rows;
  // Per batch, each distinct feature gets a dense slot in order of first appearance (stamp marks the
  // batch that assigned it), and its gradient is summed in that slot. The slots of a batch fit in the
  // cache, and the backward pass walks them in order instead of jumping across the buckets.
  const stampSlot = new Int32Array(2 * buckets);
  let maxNnz = 0;
  for (let r = 0; r < rows.ids.length; r++) maxNnz = Math.max(maxNnz, offsets[r + 1]! - offsets[r]!);
  const occSlot = new Int32Array(Math.max(1, maxNnz * cfg.batchSize));
  const touched = new Int32Array(Math.max(1, Math.min(buckets, maxNnz * cfg.batchSize)));
  const grad = new Float64Array(touched.length);
  const rowGrad = new Float64Array(cfg.batchSize);
  const kernel = new BatchKernel({ wa, bias, accB, stampSlot, occSlot, touched, grad, rowGrad, offsets, indices, values, labels, l2: cfg.l2 });
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
        kernel.step(order, s, end, lr);
        step += 1;
      }
    }
    const w = new Float32Array(buckets);
    for (let f = 0; f < buckets; f++) w[f] = wa[2 * f]!;
    const params: TensorBlob[] = [
      { name: 'w', data: w },
      { name: 'b', data: bias.slice() },
    ];
    // A retrain starts from the checkpoint before the earliest affected slice, never from the last
    // one, so the last checkpoint (the model) keeps no optimiser state: a third less to store.
    const last = slice === a.slices - 1;
    let optimizer: TensorBlob[] = [];
    if (adagrad && !last) {
      const acc = new Float32Array(buckets);
      for (let f = 0; f < buckets; f++) acc[f] = wa[2 * f + 1]!;
      optimizer = [{ name: 'acc:w', data: acc }, { name: 'acc:b', data: accB!.slice() }];
    }
    await a.onSlice({ meta: { shard: a.shard, slice, buckets, hidden: 0, step, kernel: FUSED_KERNEL }, params, optimizer });
  }
}

interface BatchArrays {
  wa: Float32Array;
  bias: Float32Array;
  /** AdaGrad's bias accumulator; null for SGD. */
  accB: Float32Array | null;
  stampSlot: Int32Array;
  occSlot: Int32Array;
  touched: Int32Array;
  grad: Float64Array;
  rowGrad: Float64Array;
  offsets: Int32Array;
  indices: Int32Array;
  values: Float32Array;
  labels: Uint8Array;
  l2: number;
}

/**
 * One optimiser step over one batch. It is a small method of its own, not a loop inside the training
 * function, because V8 optimises a hot small function from its first few hundred calls with complete
 * type feedback, while a long function reached by on-stack replacement was deoptimised again at every
 * code path it had not run yet: a shard's first training ran about 2.5 times slower than the next.
 */
class BatchKernel {
  private batchNo = 0;
  constructor(private readonly k: BatchArrays) {}

  step(order: Int32Array, s: number, end: number, lr: number): void {
    const { wa, bias, accB, stampSlot, occSlot, touched, grad, rowGrad, offsets, indices, values, labels, l2 } = this.k;
    const b0 = bias[0]!;
    // Forward: logit and d(log loss)/d(logit) per row, with the weights as they were before the
    // batch; on the way, each feature occurrence is given its batch slot.
    const now = ++this.batchNo;
    let U = 0;
    let o = 0;
    let gBias = 0;
    for (let i = s; i < end; i++) {
      const r = order[i]!;
      let z = b0;
      for (let j = offsets[r]!, e = offsets[r + 1]!; j < e; j++) {
        const f = indices[j]!;
        z += wa[2 * f]! * values[j]!;
        if (stampSlot[2 * f] !== now) {
          stampSlot[2 * f] = now;
          stampSlot[2 * f + 1] = U;
          grad[U] = 0;
          touched[U++] = f;
        }
        occSlot[o++] = stampSlot[2 * f + 1]!;
      }
      const g = 1 / (1 + Math.exp(-z)) - labels[r]!;
      rowGrad[i - s] = g;
      gBias += g;
    }
    // Backward: the gradient per distinct feature, summed in occurrence order.
    o = 0;
    for (let i = s; i < end; i++) {
      const r = order[i]!;
      const g = rowGrad[i - s]!;
      for (let j = offsets[r]!, e = offsets[r + 1]!; j < e; j++) grad[occSlot[o++]!] += g * values[j]!;
    }
    // Update the touched coordinates; L2 is part of the gradient (applied lazily, to touched ones).
    if (accB) {
      for (let k = 0; k < U; k++) {
        const f2 = 2 * touched[k]!;
        const wf = wa[f2]!;
        const g = grad[k]! + l2 * wf;
        const af = wa[f2 + 1]! + g * g;
        wa[f2 + 1] = af;
        wa[f2] = wf - (lr * g) / Math.sqrt(Math.fround(af));
      }
      const ab = accB[0]! + gBias * gBias;
      accB[0] = ab;
      bias[0] = b0 - (lr * gBias) / Math.sqrt(Math.fround(ab));
    } else {
      for (let k = 0; k < U; k++) {
        const f2 = 2 * touched[k]!;
        const wf = wa[f2]!;
        wa[f2] = wf - lr * (grad[k]! + l2 * wf);
      }
      bias[0] = b0 - lr * gBias;
    }
  }
}

/**
 * The default learner: a hashed-feature text classifier in TensorFlow.js — logistic regression, or with
 * `hidden > 0` a small hidden layer over a summed feature embedding.
 *
 * A training step costs O(batch features) in the forward pass: weights are gathered at the batch's
 * feature indices (never a dense matrix product over the vocabulary), and the gradient is built with a
 * scatter (tf.scatterND) instead of tf.layers.embedding's UnsortedSegmentSum, which is O(vocabulary ×
 * batch tokens) on the CPU backend and missing on WebAssembly. Gradients are written out by hand and
 * the optimiser (AdaGrad by default: per-coordinate step sizes suit hashed sparse features, where rare
 * n-grams need larger steps than common ones; or plain SGD) is written out too, so that all of the
 * training state is the parameters, the optimiser's accumulators and a step counter: exactly what a
 * checkpoint stores, and what a retrain from a checkpoint restores.
 *
 * Rows are packed into fixed-width blocks of `blockWidth` features (padding has value 0); a row with
 * more features spans several blocks, whose partial logits a small [batch × blocks] 0/1 matrix sums.
 */
import type { Tensor, Tensor1D, Tensor2D, Variable } from '@tensorflow/tfjs-core';
import type { Rows } from '../data/shardFile.js';
import type { LearnerConfig } from '../state/manifest.js';
import { deriveSeed, mulberry32, shuffleInPlace } from '../util/rng.js';
import type { Tf } from './backend.js';
import type { Checkpoint, TensorBlob } from './checkpoint.js';

export const DEFAULT_LEARNER: LearnerConfig = {
  hidden: 0,
  optimizer: 'adagrad',
  epochs: 6,
  batchSize: 128,
  learningRate: 2,
  l2: 1e-6,
  blockWidth: 32,
};

/** Fresh parameters. Linear weights start at zero; the hidden layer is seeded-random to break symmetry. */
export function initialParams(buckets: number, hidden: number, seed: number): TensorBlob[] {
  if (hidden === 0) return [{ name: 'w', data: new Float32Array(buckets) }, { name: 'b', data: new Float32Array(1) }];
  const rand = mulberry32(seed);
  const embScale = 1 / Math.sqrt(hidden);
  const emb = new Float32Array(buckets * hidden);
  for (let i = 0; i < emb.length; i++) emb[i] = (rand() * 2 - 1) * embScale;
  const w2 = new Float32Array(hidden);
  for (let i = 0; i < hidden; i++) w2[i] = (rand() * 2 - 1) * embScale;
  return [
    { name: 'emb', data: emb },
    { name: 'b1', data: new Float32Array(hidden) },
    { name: 'w2', data: w2 },
    { name: 'b2', data: new Float32Array(1) },
  ];
}

interface Batch {
  /** Rows in the batch. */
  size: number;
  /** Number of feature blocks (≥ size). */
  blocks: number;
  idx: Int32Array; // blocks × blockWidth
  val: Float32Array; // blocks × blockWidth
  blockRow: Int32Array; // blocks
  y: Float32Array; // size
  /** Distinct feature indices of the batch, and for each (block, slot) its position in `uniq` (padding → uniq.length). */
  uniq: Int32Array;
  pos: Int32Array; // blocks × blockWidth
}

/**
 * Scratch table for finding a batch's distinct features in O(entries): stamp[f] === current batch
 * number means feature f already has a slot, slot[f]. Allocated once per shard job.
 */
interface DedupTable {
  stamp: Int32Array;
  slot: Int32Array;
  batch: number;
}

function dedupTable(buckets: number): DedupTable {
  return { stamp: new Int32Array(buckets), slot: new Int32Array(buckets), batch: 0 };
}

/** Which rows go into one batch: order[start..end) of `rows`, packed `width` features to a block. */
interface BatchSpan {
  rows: Rows;
  order: Int32Array;
  start: number;
  end: number;
  width: number;
  table: DedupTable;
}

function packBatch({ rows, order, start, end, width, table }: BatchSpan): Batch {
  const size = end - start;
  let blocks = 0;
  for (let i = start; i < end; i++) {
    const r = order[i]!;
    blocks += Math.max(1, Math.ceil((rows.offsets[r + 1]! - rows.offsets[r]!) / width));
  }
  const idx = new Int32Array(blocks * width);
  const val = new Float32Array(blocks * width);
  const blockRow = new Int32Array(blocks);
  const filled = new Int32Array(blocks);
  const y = new Float32Array(size);
  let b = 0;
  for (let i = start; i < end; i++) {
    const r = order[i]!;
    y[i - start] = rows.labels[r]!;
    const s = rows.offsets[r]!;
    const e = rows.offsets[r + 1]!;
    const n = Math.max(1, Math.ceil((e - s) / width));
    for (let k = 0; k < n; k++) {
      const from = s + k * width;
      const to = Math.min(e, from + width);
      idx.set(rows.indices.subarray(from, to), b * width);
      val.set(rows.values.subarray(from, to), b * width);
      filled[b] = to - from;
      blockRow[b] = i - start;
      b += 1;
    }
  }
  // Distinct indices, in order of first appearance, and each slot's position among them. Padding slots
  // (value 0) point past the end, into a sink that is dropped, so they touch no parameter.
  const stampNow = ++table.batch;
  const pos = new Int32Array(blocks * width);
  const uniq = new Int32Array(blocks * width);
  let U = 0;
  for (let b2 = 0; b2 < blocks; b2++) {
    const n = filled[b2]!;
    for (let k = 0; k < n; k++) {
      const at = b2 * width + k;
      const f = idx[at]!;
      if (table.stamp[f] !== stampNow) {
        table.stamp[f] = stampNow;
        table.slot[f] = U;
        uniq[U++] = f;
      }
      pos[at] = table.slot[f]!;
    }
  }
  for (let b2 = 0; b2 < blocks; b2++) for (let k = filled[b2]!; k < width; k++) pos[b2 * width + k] = U;
  return { size, blocks, idx, val, blockRow, y, uniq: uniq.slice(0, U), pos };
}

/** Step size at a global step: constant for AdaGrad (it decays per coordinate), 1/sqrt decay for SGD. */
function stepSize(cfg: LearnerConfig, step: number): number {
  return cfg.optimizer === 'adagrad' ? cfg.learningRate : cfg.learningRate / Math.sqrt(1 + step / 200);
}

export interface TrainShardArgs {
  tf: Tf;
  rows: Rows;
  cfg: LearnerConfig;
  buckets: number;
  seed: number;
  shard: number;
  slices: number;
  /** First slice to train (0-based). Earlier slices are already in `start`. */
  fromSlice: number;
  /** Checkpoint after slice fromSlice−1, or null to start from fresh parameters (fromSlice must be 0). */
  start: Checkpoint | null;
  /** Called with each slice's checkpoint as soon as the slice is trained. */
  onSlice: (ckpt: Checkpoint) => Promise<void>;
}

/**
 * SISA schedule: at slice i the model continues from checkpoint i−1 and trains `epochs` passes over the
 * union of slices 0..i, in an order drawn from (seed, shard, slice, epoch) alone, so that retraining
 * from any checkpoint reproduces exactly what a full run on the same data would do.
 */
export async function trainShard(a: TrainShardArgs): Promise<void> {
  const { tf, rows, cfg } = a;
  if (a.fromSlice > 0 && !a.start) throw new Error('trainShard: a start checkpoint is needed when fromSlice > 0');
  if (a.start?.meta.kernel)
    throw new Error(`checkpoint was written by ${a.start.meta.kernel.name} v${a.start.meta.kernel.version}, not the tfjs engine; retrain the shard from scratch or pass --backend fused`);
  let step = a.start?.meta.step ?? 0;
  const initial = a.start?.params ?? initialParams(a.buckets, cfg.hidden, deriveSeed(a.seed, a.shard, 0xabc));
  const vars = new Map<string, Variable>(initial.map((p) => [p.name, tf.variable(tf.tensor1d(p.data), true, undefined, 'float32')]));
  const accumulators = new Map<string, Variable>();
  if (cfg.optimizer === 'adagrad') {
    const saved = new Map((a.start?.optimizer ?? []).map((t) => [t.name, t.data]));
    for (const p of initial) {
      const data = saved.get(`acc:${p.name}`) ?? new Float32Array(p.data.length).fill(ADAGRAD_INITIAL);
      accumulators.set(p.name, tf.variable(tf.tensor1d(data), false, undefined, 'float32'));
    }
  }
  const update = makeUpdater(tf, vars, accumulators, cfg);
  const sparse = makeSparseUpdater(tf, vars, accumulators, cfg);
  const dedup = dedupTable(a.buckets);
  const ctx: StepContext = { tf, vars, cfg, buckets: a.buckets, update, sparse };
  try {
    for (let slice = a.fromSlice; slice < a.slices; slice++) {
      const members: number[] = [];
      for (let r = 0; r < rows.ids.length; r++) if (rows.slices[r]! <= slice) members.push(r);
      const order = Int32Array.from(members);
      for (let epoch = 0; epoch < cfg.epochs; epoch++) {
        // Sort first so the shuffle depends on the set of rows, not on the order they were gathered in.
        order.sort();
        shuffleInPlace(order, mulberry32(deriveSeed(a.seed, a.shard, slice, epoch)));
        for (let s = 0; s < order.length; s += cfg.batchSize) {
          const batch = packBatch({ rows, order, start: s, end: Math.min(order.length, s + cfg.batchSize), width: cfg.blockWidth, table: dedup });
          const lr = stepSize(cfg, step);
          if (cfg.hidden === 0) linearStep(ctx, batch, lr);
          else mlpStep(ctx, batch, lr);
          step += 1;
        }
      }
      const params: TensorBlob[] = [];
      for (const [name, v] of vars) params.push({ name, data: (await v.data()) as Float32Array });
      const optimizer: TensorBlob[] = [];
      // Retrains start before the earliest affected slice, never from the last checkpoint: it keeps no optimiser state.
      if (slice < a.slices - 1) for (const [name, v] of accumulators) optimizer.push({ name: `acc:${name}`, data: (await v.data()) as Float32Array });
      await a.onSlice({ meta: { shard: a.shard, slice, buckets: a.buckets, hidden: cfg.hidden, step }, params, optimizer });
    }
  } finally {
    for (const v of [...vars.values(), ...accumulators.values()]) v.dispose();
  }
}

const ADAGRAD_INITIAL = 0.1;

/** Applies one gradient to a parameter: SGD, or AdaGrad with its squared-gradient accumulator. */
type Updater = (name: string, grad: Tensor, lr: number) => void;

/**
 * Applies a gradient given only at some rows of a [rows × width] parameter (the batch's distinct
 * features): gathers those rows of the parameter and of the AdaGrad accumulator, updates them, and
 * writes them back with tensorScatterUpdate. Untouched coordinates are left as they are, so the cost
 * is a copy of the parameter rather than a dozen arithmetic passes over it; L2 decay is applied lazily,
 * to the coordinates a step touches.
 */
type SparseUpdater = (name: string, rows: number, width: number, uniq: Tensor, gradRows: Tensor, lr: number) => void;

function makeSparseUpdater(tf: Tf, vars: Map<string, Variable>, acc: Map<string, Variable>, cfg: LearnerConfig): SparseUpdater {
  return (name, rows, width, uniq, gradRows, lr) => {
    const v = vars.get(name)!;
    const shape = width === 1 ? [rows] : [rows, width];
    const index = tf.reshape(uniq, [uniq.shape[0]!, 1]);
    const param = tf.reshape(v, shape);
    const current = tf.gatherND(param, index);
    const g = cfg.l2 > 0 ? tf.add(gradRows, tf.mul(current, cfg.l2)) : gradRows;
    const a = acc.get(name);
    let step: Tensor;
    if (a) {
      const accParam = tf.reshape(a, shape);
      const accRows = tf.add(tf.gatherND(accParam, index), tf.square(g));
      a.assign(tf.reshape(tf.tensorScatterUpdate(accParam, index, accRows), v.shape));
      step = tf.mul(tf.div(g, tf.sqrt(accRows)), lr);
    } else {
      step = tf.mul(g, lr);
    }
    v.assign(tf.reshape(tf.tensorScatterUpdate(param, index, tf.sub(current, step)), v.shape));
  };
}

function makeUpdater(tf: Tf, vars: Map<string, Variable>, acc: Map<string, Variable>, cfg: LearnerConfig): Updater {
  return (name, grad, lr) => {
    const v = vars.get(name)!;
    const flatGrad = tf.reshape(grad, v.shape);
    // L2 as part of the gradient, so that AdaGrad scales it like the data term.
    const g = cfg.l2 > 0 && name !== 'b' && name !== 'b2' ? tf.add(flatGrad, tf.mul(v, cfg.l2)) : flatGrad;
    const a = acc.get(name);
    if (!a) {
      v.assign(tf.sub(v, tf.mul(g, lr)));
      return;
    }
    const nextAcc = tf.add(a, tf.square(g));
    a.assign(nextAcc);
    v.assign(tf.sub(v, tf.mul(tf.div(g, tf.sqrt(nextAcc)), lr)));
  };
}

/** Sums per-block values into per-row values when rows span several blocks. */
function blocksToRows(tf: Tf, x: Tensor2D, batch: Batch): Tensor2D {
  if (batch.blocks === batch.size) return x;
  const assign = new Float32Array(batch.size * batch.blocks);
  for (let b = 0; b < batch.blocks; b++) assign[batch.blockRow[b]! * batch.blocks + b] = 1;
  return tf.matMul(tf.tensor2d(assign, [batch.size, batch.blocks]), x);
}

function rowsToBlocks(tf: Tf, x: Tensor, batch: Batch): Tensor {
  if (batch.blocks === batch.size) return x;
  return tf.gather(x, tf.tensor1d(batch.blockRow, 'int32'));
}

/** What a training step works with that stays the same for a whole run: the model, its config and its updaters. */
interface StepContext {
  tf: Tf;
  vars: Map<string, Variable>;
  cfg: LearnerConfig;
  buckets: number;
  update: Updater;
  sparse: SparseUpdater;
}

function linearStep({ tf, vars, cfg, buckets, update, sparse }: StepContext, batch: Batch, lr: number): void {
  const w = vars.get('w')!;
  const b = vars.get('b')!;
  tf.tidy(() => {
    const width = cfg.blockWidth;
    const U = batch.uniq.length;
    // gatherND rather than gather: the same lookup, several times faster on the WebAssembly backend.
    const idx = tf.tensor2d(batch.idx, [batch.blocks * width, 1], 'int32');
    const val = tf.tensor2d(batch.val, [batch.blocks, width]);
    const blockLogit = tf.sum(tf.mul(tf.reshape(tf.gatherND(w, idx), [batch.blocks, width]), val), 1, true) as Tensor2D;
    const logit = tf.add(tf.reshape(blocksToRows(tf, blockLogit, batch), [batch.size]), b) as Tensor1D;
    // d(log loss)/d(logit) = sigmoid(logit) − y, summed over the batch (a per-example step size).
    const g = tf.sub(tf.sigmoid(logit), tf.tensor1d(batch.y));
    const gBlock = rowsToBlocks(tf, g, batch);
    const gVal = tf.mul(val, tf.reshape(gBlock, [batch.blocks, 1]));
    // Gradient per distinct feature: a scatter into U+1 slots (the last one collects padding).
    const gU = tf.slice(tf.scatterND(tf.tensor2d(batch.pos, [batch.blocks * width, 1], 'int32'), tf.reshape(gVal, [batch.blocks * width]), [U + 1]), 0, U);
    sparse('w', buckets, 1, tf.tensor1d(batch.uniq, 'int32'), gU, lr);
    update('b', tf.reshape(tf.sum(g), [1]), lr);
  });
}

function mlpStep({ tf, vars, cfg, buckets, update, sparse }: StepContext, batch: Batch, lr: number): void {
  const H = cfg.hidden;
  const emb = vars.get('emb')!;
  const b1 = vars.get('b1')!;
  const w2 = vars.get('w2')!;
  const b2 = vars.get('b2')!;
  tf.tidy(() => {
    const width = cfg.blockWidth;
    const idx = tf.tensor2d(batch.idx, [batch.blocks * width, 1], 'int32');
    const val = tf.tensor2d(batch.val, [batch.blocks, width]);
    const E = tf.reshape(emb, [buckets, H]);
    const rowsE = tf.reshape(tf.gatherND(E, idx), [batch.blocks, width, H]); // blocks × width × H
    const blockSum = tf.sum(tf.mul(rowsE, tf.reshape(val, [batch.blocks, width, 1])), 1) as Tensor2D; // blocks × H
    const pre = tf.add(blocksToRows(tf, blockSum, batch), b1); // size × H
    const h = tf.relu(pre);
    const logit = tf.add(tf.reshape(tf.matMul(h, tf.reshape(w2, [H, 1])), [batch.size]), b2);
    const g = tf.sub(tf.sigmoid(logit), tf.tensor1d(batch.y)); // size
    const gw2 = tf.matMul(tf.reshape(g, [1, batch.size]), h);
    const gh = tf.mul(tf.mul(tf.reshape(g, [batch.size, 1]), tf.reshape(w2, [1, H])), tf.step(pre)); // size × H
    const gb1 = tf.sum(gh, 0);
    const gBlock = rowsToBlocks(tf, gh, batch); // blocks × H
    const gRows = tf.mul(tf.reshape(val, [batch.blocks, width, 1]), tf.reshape(gBlock, [batch.blocks, 1, H]));
    const U = batch.uniq.length;
    const gE = tf.slice(tf.scatterND(tf.tensor2d(batch.pos, [batch.blocks * width, 1], 'int32'), tf.reshape(gRows, [batch.blocks * width, H]), [U + 1, H]), [0, 0], [U, H]);
    sparse('emb', buckets, H, tf.tensor1d(batch.uniq, 'int32'), gE, lr);
    update('b1', gb1, lr);
    update('w2', gw2, lr);
    update('b2', tf.reshape(tf.sum(g), [1]), lr);
  });
}

/** Probability of the positive class for each row, in plain JS (no tfjs needed to predict). */
export function predictProba(params: readonly TensorBlob[], rows: Pick<Rows, 'offsets' | 'indices' | 'values'>, n: number): Float32Array {
  const p = new Map(params.map((t) => [t.name, t.data]));
  const out = new Float32Array(n);
  const w = p.get('w');
  if (w) {
    const b = p.get('b')![0]!;
    for (let r = 0; r < n; r++) {
      let z = b;
      for (let j = rows.offsets[r]!; j < rows.offsets[r + 1]!; j++) z += w[rows.indices[j]!]! * rows.values[j]!;
      out[r] = 1 / (1 + Math.exp(-z));
    }
    return out;
  }
  const emb = p.get('emb')!;
  const b1 = p.get('b1')!;
  const w2 = p.get('w2')!;
  const b2 = p.get('b2')![0]!;
  const H = b1.length;
  const acc = new Float64Array(H);
  for (let r = 0; r < n; r++) {
    acc.set(b1);
    for (let j = rows.offsets[r]!; j < rows.offsets[r + 1]!; j++) {
      const base = rows.indices[j]! * H;
      const v = rows.values[j]!;
      for (let k = 0; k < H; k++) acc[k]! += emb[base + k]! * v;
    }
    let z = b2;
    for (let k = 0; k < H; k++) z += Math.max(0, acc[k]!) * w2[k]!;
    out[r] = 1 / (1 + Math.exp(-z));
  }
  return out;
}

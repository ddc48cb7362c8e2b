/**
 * The fused kernel's optimiser step, in WebAssembly (source: fusedStep.as.ts, built to fusedStep.wasm).
 * One FusedStep per training job: it lays out the job's arrays in a linear memory of its own; the caller
 * reads and writes the bias and the epoch's row order through typed-array views of that memory, and gets
 * each checkpoint's listed weights from listedValues(). The memory never grows, so the views stay valid
 * for the job's lifetime. Compact feature l's weight, AdaGrad accumulator and batch gradient sum share
 * one 16-byte record.
 */
import { errorMessage, SisaError } from '../util/errors.js';
import type { SparseTensor } from './checkpoint.js';
import { compileKernel, instantiate, newMemory, WASM_PAGE } from '../util/wasm.js';

interface StepExports {
  init(wa: number, touched: number, offsets: number, indices: number, values: number, labels: number, order: number, bias: number): void;
  initPrepare(localOf: number, features: number, ascending: number, firstOf: number, baseW: number, baseAcc: number, coords: number, listedLocal: number, outWI: number, outW: number, outAI: number, outAcc: number, outCounts: number): void;
  compact(buckets: number, nnz: number): number;
  start(D: number, hasBase: boolean, adagrad: boolean, initialAcc: number): void;
  listed(D: number, buckets: number, hasBase: boolean, adagrad: boolean, initialAcc: number): number;
  extract(n: number, withAcc: boolean, initialAcc: number): void;
  step(s: number, end: number, lr: number, l2: number, adagrad: boolean): void;
}

/** The compiled module, once per thread (see compileKernel; a few KB: compiling it takes about a millisecond). */
function stepModule(): object {
  return compileKernel(new URL('./fusedStep.wasm', import.meta.url), 'training');
}

export interface FusedStepInput {
  /** Buckets of the hashed feature space (the length of a full-size tensor). */
  buckets: number;
  rows: number;
  /** The shard's rows in CSR form, features numbered by bucket. */
  offsets: Int32Array;
  indices: Int32Array;
  values: Float32Array;
  labels: Uint8Array;
  /** The most rows in one batch. */
  batchSize: number;
  l2: number;
  adagrad: boolean;
  /** AdaGrad's initial accumulator (float32). */
  initialAcc: number;
  /** The start checkpoint's full-size weights and (AdaGrad) accumulators, or null to start from the initial values. */
  base: { w: Float32Array; acc: Float32Array | null } | null;
}

/** A checkpoint's weights and (AdaGrad) accumulators, listed exactly: see FusedStep.listedValues. */
export interface ListedValues {
  w: SparseTensor;
  acc: SparseTensor | null;
}

/**
 * One training job in WebAssembly memory. The constructor prepares it: the features that occur in the
 * rows are numbered by falling frequency into a compact space (Davidson's shards use ~53k of 262k
 * buckets; 1M rows at 32 shards ~170k), so that the weights the step touches fit in or near the CPU's L2
 * cache and the hot ones share cache lines; every compact feature starts at its start value; and the
 * coordinates a checkpoint may list are fixed (each checkpoint lists those of them that differ from their
 * initial value). Every coordinate's arithmetic is the same as in the full space, so the checkpoints are
 * bit for bit those of training over all buckets.
 */
export class FusedStep {
  /** The bias at [0] and its AdaGrad accumulator at [1]. */
  readonly bias: Float32Array;
  /** The row order of the current epoch: the caller writes order[0, n) before stepping through it. */
  readonly order: Int32Array;
  private readonly exports: StepExports;
  private readonly l2: number;
  private readonly adagrad: boolean;
  private readonly listedCount: number;
  /** Views of extract()'s output in the module's memory (the accumulators' with AdaGrad only). */
  private readonly out: { wi: Int32Array; w: Float32Array; acc: { ai: Int32Array; values: Float32Array } | null; counts: Int32Array };
  private readonly buckets: number;
  private readonly initialAcc: number;

  constructor(k: FusedStepInput) {
    const rows = k.rows;
    const nnz = k.offsets[rows]!;
    let maxNnz = 0;
    for (let r = 0; r < rows; r++) maxNnz = Math.max(maxNnz, k.offsets[r + 1]! - k.offsets[r]!);
    // The compact space is at most the buckets, and at most the feature occurrences; the listed
    // coordinates are those features, or with a start checkpoint at most every bucket.
    const maxFeatures = Math.max(1, Math.min(k.buckets, nnz));
    const maxListed = k.base ? Math.max(1, k.buckets) : maxFeatures;
    // A batch touches at most maxNnz · batchSize distinct features, and never more than there are.
    const touched = Math.max(1, Math.min(maxFeatures, maxNnz * k.batchSize));
    let end = 16; // offset 0 stays unused
    const take = (bytes: number) => {
      const at = end;
      end += Math.ceil(bytes / 16) * 16; // 16-byte aligned: the feature records (first) and every array after them
      return at;
    };
    const at = {
      wa: take(16 * maxFeatures),
      touched: take(4 * touched),
      offsets: take(4 * (rows + 1)),
      indices: take(4 * nnz),
      values: take(4 * nnz),
      labels: take(rows),
      order: take(4 * rows),
      bias: take(8),
      localOf: take(4 * k.buckets),
      features: take(4 * maxFeatures),
      ascending: take(4 * maxFeatures),
      firstOf: take(4 * (nnz + 2)), // a feature's count is at most nnz
      baseW: k.base ? take(4 * k.buckets) : 0,
      baseAcc: k.base?.acc ? take(4 * k.buckets) : 0,
      coords: take(4 * maxListed),
      listedLocal: take(4 * maxListed),
      outWI: take(4 * maxListed),
      outW: take(4 * maxListed),
      outAI: k.adagrad ? take(4 * maxListed) : 0,
      outAcc: k.adagrad ? take(4 * maxListed) : 0,
      outCounts: take(12),
    };
    let memory;
    try {
      memory = newMemory(Math.ceil(end / WASM_PAGE));
    } catch (err) {
      // WebAssembly memory ends at 4 GiB: about 350 million feature occurrences in one shard.
      throw new SisaError('TRAIN', `a shard of ${rows.toLocaleString('en-US')} rows and ${nnz.toLocaleString('en-US')} feature occurrences needs ${(end / 2 ** 30).toFixed(1)} GiB of WebAssembly memory to train (${errorMessage(err)}); ingest with more --shards`, { cause: err });
    }
    this.exports = instantiate<StepExports>(stepModule(), { env: { memory, exp: Math.exp } });
    const buf = memory.buffer;
    new Int32Array(buf, at.offsets, rows + 1).set(k.offsets.subarray(0, rows + 1));
    new Int32Array(buf, at.indices, nnz).set(k.indices.subarray(0, nnz));
    new Float32Array(buf, at.values, nnz).set(k.values.subarray(0, nnz));
    new Uint8Array(buf, at.labels, rows).set(k.labels.subarray(0, rows));
    if (k.base && (k.base.w.length !== k.buckets || (k.base.acc && k.base.acc.length !== k.buckets)))
      throw new SisaError('STATE', `the start checkpoint has ${k.base.w.length} weights, the model ${k.buckets} buckets`);
    if (k.base) new Float32Array(buf, at.baseW, k.buckets).set(k.base.w);
    if (k.base?.acc) new Float32Array(buf, at.baseAcc, k.buckets).set(k.base.acc);
    const x = this.exports;
    x.init(at.wa, at.touched, at.offsets, at.indices, at.values, at.labels, at.order, at.bias);
    x.initPrepare(at.localOf, at.features, at.ascending, at.firstOf, at.baseW, at.baseAcc, at.coords, at.listedLocal, at.outWI, at.outW, at.outAI, at.outAcc, at.outCounts);
    const D = x.compact(k.buckets, nnz);
    if (D < 0) throw new SisaError('STATE', `a shard's feature index is outside the ${k.buckets} buckets of the model; the shard file and the workspace's feature configuration disagree`);
    // AdaGrad's state is read from the start checkpoint only when training with AdaGrad.
    if (k.adagrad && k.base && !k.base.acc) throw new Error("FusedStep: an AdaGrad start needs the start checkpoint's accumulators");
    x.start(D, !!k.base, k.adagrad, k.initialAcc);
    this.listedCount = x.listed(D, k.buckets, !!k.base, k.adagrad, k.initialAcc);
    this.bias = new Float32Array(buf, at.bias, 2);
    this.order = new Int32Array(buf, at.order, rows);
    this.out = {
      wi: new Int32Array(buf, at.outWI, this.listedCount),
      w: new Float32Array(buf, at.outW, this.listedCount),
      acc: k.adagrad ? { ai: new Int32Array(buf, at.outAI, this.listedCount), values: new Float32Array(buf, at.outAcc, this.listedCount) } : null,
      counts: new Int32Array(buf, at.outCounts, 3),
    };
    this.buckets = k.buckets;
    this.initialAcc = k.initialAcc;
    this.l2 = k.l2;
    this.adagrad = k.adagrad;
  }

  /**
   * A checkpoint's tensors as exact sparse lists (SparseTensor.exact): the coordinates that differ from
   * their initial value, ascending, and their current values; the weights (fill 0) and, withAcc, the
   * AdaGrad accumulators (fill: the initial accumulator). Only the rows' features and, after a start
   * checkpoint, the coordinates where it differs from the initial tensors can differ, and only those are
   * looked at, so a checkpoint is built and encoded in time proportional to them, not to the number of
   * buckets. (An accumulator can keep its initial value where its weight has moved: a gradient whose
   * square rounds away against it in float32. So the two lists usually differ, and share one array only
   * when they do not.)
   */
  listedValues(withAcc: boolean): ListedValues {
    const acc = withAcc ? this.out.acc : null;
    this.exports.extract(this.listedCount, acc !== null, this.initialAcc);
    const [nw, na, same] = this.out.counts;
    const w: SparseTensor = { length: this.buckets, fill: 0, indices: this.out.wi.slice(0, nw), values: this.out.w.slice(0, nw), exact: true };
    if (!acc) return { w, acc: null };
    const indices = same ? w.indices : acc.ai.slice(0, na);
    return { w, acc: { length: this.buckets, fill: this.initialAcc, indices, values: acc.values.slice(0, na), exact: true } };
  }

  /** One optimiser step over the rows order[s, end) with learning rate lr. */
  step(s: number, end: number, lr: number): void {
    this.exports.step(s, end, lr, this.l2, this.adagrad);
  }
}

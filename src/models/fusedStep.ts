/**
 * The fused kernel's optimiser step, in WebAssembly (source: fusedStep.as.ts, built to fusedStep.wasm).
 * One FusedStep per training job: it lays out the job's arrays in a linear memory of its own, and the
 * caller reads and writes the weights, the bias and the epoch's row order through typed-array views of
 * that memory. The memory never grows, so the views stay valid for the job's lifetime.
 */
import { errorMessage, SisaError } from '../util/errors.js';
import { compileKernel, instantiate, newMemory, WASM_PAGE } from '../util/wasm.js';

interface StepExports {
  init(wa: number, slotOf: number, rowSlots: number, touched: number, grad: number, offsets: number, indices: number, values: number, labels: number, order: number, bias: number): void;
  step(s: number, end: number, lr: number, l2: number, adagrad: boolean): void;
}

let compiled: object | null = null;

/** The compiled module, once per thread (a ~1 KB file: compiling it takes well under a millisecond). */
function stepModule(): object {
  return (compiled ??= compileKernel(new URL('./fusedStep.wasm', import.meta.url), 'training'));
}

export interface FusedStepInput {
  /** Compact features of the model (weights and accumulators are kept for these only). */
  features: number;
  rows: number;
  /** The shard's rows in CSR form, features numbered in the compact space. */
  offsets: Int32Array;
  indices: Int32Array;
  values: Float32Array;
  labels: Uint8Array;
  /** The most rows in one batch. */
  batchSize: number;
  l2: number;
  adagrad: boolean;
}

export class FusedStep {
  /** Weight of compact feature l at wa[2l], its AdaGrad accumulator at wa[2l + 1]. */
  readonly wa: Float32Array;
  /** The bias at [0] and its AdaGrad accumulator at [1]. */
  readonly bias: Float32Array;
  /** The row order of the current epoch: the caller writes order[0, n) before stepping through it. */
  readonly order: Int32Array;
  private readonly exports: StepExports;
  private readonly l2: number;
  private readonly adagrad: boolean;

  constructor(k: FusedStepInput) {
    const rows = k.rows;
    const nnz = k.offsets[rows]!;
    let maxNnz = 0;
    for (let r = 0; r < rows; r++) maxNnz = Math.max(maxNnz, k.offsets[r + 1]! - k.offsets[r]!);
    // A batch touches at most maxNnz · batchSize distinct features, and never more than there are.
    const slots = Math.max(1, Math.min(k.features, maxNnz * k.batchSize));
    let end = 16; // offset 0 stays unused
    const take = (bytes: number) => {
      const at = end;
      end += Math.ceil(bytes / 8) * 8; // 8-byte aligned for the f64 gradient
      return at;
    };
    const at = {
      wa: take(8 * k.features),
      slotOf: take(4 * k.features),
      rowSlots: take(4 * Math.max(1, maxNnz)),
      touched: take(4 * slots),
      grad: take(8 * slots),
      offsets: take(4 * (rows + 1)),
      indices: take(4 * nnz),
      values: take(4 * nnz),
      labels: take(rows),
      order: take(4 * rows),
      bias: take(8),
    };
    let memory;
    try {
      memory = newMemory(Math.ceil(end / WASM_PAGE));
    } catch (err) {
      // WebAssembly memory ends at 4 GiB: about 500 million feature occurrences in one shard.
      throw new SisaError('TRAIN', `a shard of ${rows.toLocaleString('en-US')} rows and ${nnz.toLocaleString('en-US')} feature occurrences needs ${(end / 2 ** 30).toFixed(1)} GiB of WebAssembly memory to train (${errorMessage(err)}); ingest with more --shards`, { cause: err });
    }
    this.exports = instantiate<StepExports>(stepModule(), { env: { memory, exp: Math.exp } });
    const buf = memory.buffer;
    this.wa = new Float32Array(buf, at.wa, 2 * k.features);
    this.bias = new Float32Array(buf, at.bias, 2);
    this.order = new Int32Array(buf, at.order, rows);
    new Int32Array(buf, at.offsets, rows + 1).set(k.offsets.subarray(0, rows + 1));
    new Int32Array(buf, at.indices, nnz).set(k.indices.subarray(0, nnz));
    new Float32Array(buf, at.values, nnz).set(k.values.subarray(0, nnz));
    new Uint8Array(buf, at.labels, rows).set(k.labels.subarray(0, rows));
    this.exports.init(at.wa, at.slotOf, at.rowSlots, at.touched, at.grad, at.offsets, at.indices, at.values, at.labels, at.order, at.bias);
    this.l2 = k.l2;
    this.adagrad = k.adagrad;
  }

  /** One optimiser step over the rows order[s, end) with learning rate lr. */
  step(s: number, end: number, lr: number): void {
    this.exports.step(s, end, lr, this.l2, this.adagrad);
  }
}

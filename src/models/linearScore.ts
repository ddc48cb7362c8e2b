/**
 * Scoring S linear models at once, for prediction, shared by the ensemble on this thread and by the
 * prediction workers, so that both give the same float32 probabilities bit for bit.
 *
 * The weights live in a shared WebAssembly memory, and scoring runs in a WebAssembly kernel (source:
 * linearScore.as.ts, built to linearScore.wasm) on each thread that scores, with the batch's rows copied into
 * a region of that memory that the thread holds for the call. A table too large for one WebAssembly memory
 * with room for those regions (4 GiB less 256 MiB: e.g. 2^24 buckets × 60 models) is kept in a
 * SharedArrayBuffer and scored by the JavaScript kernel below, which computes the same bits (a NaN result
 * may carry another NaN payload: WebAssembly leaves NaN propagation open; any NaN votes the same).
 */
import { threadId } from 'node:worker_threads';
import { compileKernel, instantiate, newSharedMemory, WASM_PAGE, type WasmMemory } from '../util/wasm.js';

export interface LinearMembers {
  /** Weights interleaved bucket-major, w[bucket·S + model]: one cache line per feature for all S models. */
  weights: Float32Array;
  biases: Float32Array;
  /** The shared WebAssembly memory that holds weights, biases and the scoring threads' regions, or null where they did not fit in one. */
  memory: WasmMemory | null;
}

export interface CsrRows {
  offsets: Int32Array;
  indices: Int32Array;
  values: Float32Array;
}

/** A WebAssembly memory ends at 2^16 pages (4 GiB). */
const MAX_PAGES = 65536;
/** Address space a members memory reserves beyond its weights, for the scoring threads' batch regions. */
const SCRATCH_PAGES = 4096;
/**
 * Batch regions that threads take turns at: a table of SLOTS entries after the biases, each [holder, first
 * page, pages] (i32; holder is the claiming thread's id + 1, or 0 when free, claimed with Atomics), so that a
 * region outlives the thread that grew it and the next prediction's threads reuse it rather than grow the
 * memory again. More threads than slots scoring at once: the extra ones score in JavaScript.
 */
const SLOTS = 256;
const SLOT_INTS = 4;

/**
 * Zeroed members for `buckets` × `models` weights, in memory that worker threads share without a copy: a
 * shared WebAssembly memory when the table fits in one, else a SharedArrayBuffer. `scratchPages` is the
 * room the scoring threads may take beyond the table (a batch that does not fit is scored in JavaScript).
 */
export function newLinearMembers(buckets: number, models: number, scratchPages = SCRATCH_PAGES): LinearMembers {
  const weightBytes = buckets * models * Float32Array.BYTES_PER_ELEMENT;
  // Page 0 stays clear of the weights: it is where the kernel module would place static data of its own
  // (it has none today), written again by every thread that instantiates it.
  const weightsAt = WASM_PAGE;
  const biasesAt = align(weightsAt + weightBytes);
  const end = slotsAt(biasesAt, models) + SLOTS * SLOT_INTS * Int32Array.BYTES_PER_ELEMENT;
  const pages = Math.ceil(end / WASM_PAGE);
  if (pages + scratchPages <= MAX_PAGES) {
    const memory = newSharedMemory(pages, pages + scratchPages);
    return { weights: new Float32Array(memory.buffer, weightsAt, buckets * models), biases: new Float32Array(memory.buffer, biasesAt, models), memory };
  }
  return { weights: new Float32Array(new SharedArrayBuffer(weightBytes)), biases: new Float32Array(models), memory: null };
}

function slotsAt(biasesAt: number, models: number): number {
  return align(biasesAt + models * Float32Array.BYTES_PER_ELEMENT);
}

function slotTable(members: LinearMembers): Int32Array {
  return new Int32Array(members.memory!.buffer, slotsAt(members.biases.byteOffset, members.biases.length), SLOTS * SLOT_INTS);
}

/**
 * Frees the regions that these threads held: a worker terminated in the middle of a call (a prediction
 * whose other request failed closes its pool at once) never reaches the code that frees its region.
 */
export function releaseScoringRegions(members: LinearMembers, threadIds: readonly number[]): void {
  if (!members.memory) return;
  const slots = slotTable(members);
  for (let i = 0; i < SLOTS; i++) for (const id of threadIds) Atomics.compareExchange(slots, i * SLOT_INTS, id + 1, 0);
}

/** How many regions are held now (diagnostics, and the tests). */
export function heldScoringRegions(members: LinearMembers): number {
  if (!members.memory) return 0;
  const slots = slotTable(members);
  let held = 0;
  for (let i = 0; i < SLOTS; i++) if (Atomics.load(slots, i * SLOT_INTS) !== 0) held++;
  return held;
}

/**
 * Each member's probability for each row, probs[m·n + r] = σ(b_m + Σ_j w[idx_j·S + m] · v_j), summed in
 * float64 in the row's feature order.
 */
export function scoreLinear(members: LinearMembers, rows: CsrRows, n: number): Float32Array {
  const probs = new Float32Array(members.biases.length * n);
  scoreLinearInto(members, rows, n, probs, n, 0);
  return probs;
}

/** The same for n rows that are rows at..at + n of a larger output: probs[m·stride + at + r]. */
export function scoreLinearInto(members: LinearMembers, rows: CsrRows, n: number, probs: Float32Array, stride: number, at: number): void {
  const kernel = members.memory ? wasmScorer(members) : null;
  if (!kernel?.score(rows, n, probs, stride, at)) scoreLinearJs(members, rows, n, probs, stride, at);
}

/**
 * The JavaScript kernel: the same sums in the same order as the WebAssembly one. Eight models per pass are
 * kept in locals (registers), not in an array that each feature reads and writes.
 */
export function scoreLinearJs(members: Pick<LinearMembers, 'weights' | 'biases'>, rows: CsrRows, n: number, probs: Float32Array, stride = n, at = 0): void {
  const { weights, biases } = members;
  const { offsets, indices, values } = rows;
  const S = biases.length;
  const blocks = S >> 3;
  // Row-major, then blocks of eight models: a row's weights (S floats per feature, adjacent) are still in
  // the cache when the next block reads them; block-major re-fetched every line from memory S/8 times.
  for (let r = 0; r < n; r++) {
    const from = offsets[r]!;
    const end = offsets[r + 1]!;
    for (let blk = 0; blk < blocks; blk++) {
      const m0 = blk << 3;
      let z0: number = biases[m0]!, z1: number = biases[m0 + 1]!, z2: number = biases[m0 + 2]!, z3: number = biases[m0 + 3]!;
      let z4: number = biases[m0 + 4]!, z5: number = biases[m0 + 5]!, z6: number = biases[m0 + 6]!, z7: number = biases[m0 + 7]!;
      for (let j = from; j < end; j++) {
        const base = indices[j]! * S + m0;
        const v = values[j]!;
        z0 += weights[base]! * v;
        z1 += weights[base + 1]! * v;
        z2 += weights[base + 2]! * v;
        z3 += weights[base + 3]! * v;
        z4 += weights[base + 4]! * v;
        z5 += weights[base + 5]! * v;
        z6 += weights[base + 6]! * v;
        z7 += weights[base + 7]! * v;
      }
      const o = m0 * stride + at + r;
      probs[o] = 1 / (1 + Math.exp(-z0));
      probs[o + stride] = 1 / (1 + Math.exp(-z1));
      probs[o + 2 * stride] = 1 / (1 + Math.exp(-z2));
      probs[o + 3 * stride] = 1 / (1 + Math.exp(-z3));
      probs[o + 4 * stride] = 1 / (1 + Math.exp(-z4));
      probs[o + 5 * stride] = 1 / (1 + Math.exp(-z5));
      probs[o + 6 * stride] = 1 / (1 + Math.exp(-z6));
      probs[o + 7 * stride] = 1 / (1 + Math.exp(-z7));
    }
  }
  const m0 = blocks << 3;
  if (m0 === S) return;
  // The models left over (S not a multiple of 8), with accumulators in an array.
  const rest = S - m0;
  const z = new Float64Array(rest);
  for (let r = 0; r < n; r++) {
    for (let m = 0; m < rest; m++) z[m] = biases[m0 + m]!;
    for (let j = offsets[r]!; j < offsets[r + 1]!; j++) {
      const base = indices[j]! * S + m0;
      const v = values[j]!;
      for (let m = 0; m < rest; m++) z[m]! += weights[base + m]! * v;
    }
    for (let m = 0; m < rest; m++) probs[(m0 + m) * stride + at + r] = 1 / (1 + Math.exp(-z[m]!));
  }
}

interface ScoreExports {
  score(n: number, offsets: number, first: number, indices: number, values: number, weights: number, S: number, biases: number, z: number, out: number): void;
}

/** This thread's scorer of each members object (a worker receives its members once). */
const scorers = new WeakMap<LinearMembers, WasmScorer>();

/** The scoring kernel, compiled (once per thread; see compileKernel). */
export function scoringKernel(): object {
  return compileKernel(new URL('./linearScore.wasm', import.meta.url), 'scoring');
}

function wasmScorer(members: LinearMembers): WasmScorer {
  let s = scorers.get(members);
  if (!s) {
    s = new WasmScorer(members, scoringKernel());
    scorers.set(members, s);
  }
  return s;
}

/** Rows per kernel call, and the features a call's rows may have (a single longer row goes alone). */
const CHUNK_ROWS = 2048;
const CHUNK_FEATURES = 1 << 19;

/**
 * One thread's use of a members memory. Each call claims a free region slot (compare-and-swap on its holder
 * field), grows the memory for a larger region when the slot's is too small (grow is atomic and returns
 * where the new pages start, so two threads never get the same pages), and frees the slot when it returns.
 */
class WasmScorer {
  private readonly exports: ScoreExports;
  private readonly slots: Int32Array;

  constructor(
    private readonly members: LinearMembers,
    module: object,
  ) {
    this.exports = instantiate<ScoreExports>(module, { env: { memory: members.memory, exp: Math.exp } });
    this.slots = slotTable(members);
  }

  /** Scores into probs[m·stride + at + r]; false if no region could be had (then the caller scores them all). */
  score(rows: CsrRows, n: number, probs: Float32Array, stride: number, at: number): boolean {
    let slot = 0;
    while (slot < SLOTS && Atomics.compareExchange(this.slots, slot * SLOT_INTS, 0, threadId + 1) !== 0) slot++;
    if (slot === SLOTS) return false; // more threads scoring at once than slots
    try {
      return this.scoreIn(slot * SLOT_INTS, rows, n, probs, stride, at);
    } finally {
      Atomics.store(this.slots, slot * SLOT_INTS, 0);
    }
  }

  private scoreIn(slot: number, rows: CsrRows, n: number, probs: Float32Array, stride: number, at: number): boolean {
    const { weights, biases, memory } = this.members;
    const S = biases.length;
    for (let r0 = 0; r0 < n; ) {
      let r1 = r0 + 1;
      while (r1 < n && r1 - r0 < CHUNK_ROWS && rows.offsets[r1 + 1]! - rows.offsets[r0]! <= CHUNK_FEATURES) r1++;
      const count = r1 - r0;
      const first = rows.offsets[r0]!;
      const nnz = rows.offsets[r1]! - first;
      // The region holds, in turn: offsets, indices, values, z and out (plain sums, not an array of sizes
      // mapped by a closure: a worker that lives for one call recompiled that, on cores it was using).
      const indicesFrom = align(4 * (count + 1));
      const valuesFrom = indicesFrom + align(4 * nnz);
      const zFrom = valuesFrom + align(4 * nnz);
      const outFrom = zFrom + align(8 * S);
      const offsetsAt = this.region(slot, outFrom + align(4 * S * count));
      if (offsetsAt < 0) return false;
      const indicesAt = offsetsAt + indicesFrom;
      const valuesAt = offsetsAt + valuesFrom;
      const zAt = offsetsAt + zFrom;
      const outAt = offsetsAt + outFrom;
      const buf = memory!.buffer;
      new Int32Array(buf, offsetsAt, count + 1).set(rows.offsets.subarray(r0, r1 + 1));
      new Int32Array(buf, indicesAt, nnz).set(rows.indices.subarray(first, first + nnz));
      new Float32Array(buf, valuesAt, nnz).set(rows.values.subarray(first, first + nnz));
      this.exports.score(count, offsetsAt, first, indicesAt, valuesAt, weights.byteOffset, S, biases.byteOffset, zAt, outAt);
      const out = new Float32Array(memory!.buffer, outAt, S * count);
      for (let m = 0; m < S; m++) probs.set(out.subarray(m * count, (m + 1) * count), m * stride + at + r0);
      r0 = r1;
    }
    return true;
  }

  /** Byte offset of the claimed slot's region, grown to at least `bytes`; −1 if the memory cannot grow. */
  private region(slot: number, bytes: number): number {
    const s = this.slots;
    if (bytes <= s[slot + 2]! * WASM_PAGE) return s[slot + 1]! * WASM_PAGE;
    // Twice the old region (fewer grows as batches vary), or just what this chunk needs if that is all there is.
    for (const pages of [Math.ceil(Math.max(bytes, 2 * s[slot + 2]! * WASM_PAGE) / WASM_PAGE), Math.ceil(bytes / WASM_PAGE)]) {
      try {
        s[slot + 1] = this.members.memory!.grow(pages);
        s[slot + 2] = pages;
        return s[slot + 1]! * WASM_PAGE;
      } catch {
        // the memory's reserved maximum is reached
      }
    }
    return -1;
  }
}

function align(n: number): number {
  return Math.ceil(n / 16) * 16;
}

// AssemblyScript source of the fused kernel's optimiser step (compiled to dist/src/models/fusedStep.wasm
// by `npm run build`; excluded from tsc). fusedLinear.ts lays the shard's arrays out in one linear memory,
// calls init() with their byte offsets, and then step() once per batch.
//
// Why WebAssembly: the step is a loop over typed arrays that V8 compiles well once it is hot, but a
// one-shot `sisa delete` runs it cold (interpreted until tier-up, then deoptimised once) and large shards
// paid bounds checks on every access. WebAssembly is compiled before the first call and has neither:
// a deletion's retrain took ~35% less time, and training at 200k rows ~25% less, with the same bits.
//
// Exactness: every operation is the one the TypeScript kernel did, in the same order, in float64 with
// float32 storage. JavaScript numbers and wasm f64 are both IEEE binary64; Math.fround is f32.demote,
// Math.sqrt is f64.sqrt (correctly rounded in both), and exp is JavaScript's own Math.exp, imported, so
// the checkpoints are bit for bit those of the TypeScript kernel (test/fused-kernel.test.ts holds them to
// a plain reference implementation).

@external("env", "exp")
declare function jsExp(x: f64): f64;

// Byte offsets of the arrays in linear memory (set by init; one instance per training job).
/** Per compact feature l: weight (f32) at 8l, AdaGrad accumulator (f32) at 8l + 4. */
let WA: usize = 0;
/** Per compact feature: its slot in the current batch + 1, or 0 (i32). */
let SLOT_OF: usize = 0;
/** The batch slots of one row's features (i32). */
let ROW_SLOTS: usize = 0;
/** Per slot: its compact feature (i32). */
let TOUCHED: usize = 0;
/** Per slot: the batch's gradient for that feature (f64). */
let GRAD: usize = 0;
/** CSR row offsets (i32, rows + 1), feature numbers (i32) and values (f32) of the shard's rows. */
let OFFSETS: usize = 0;
let INDICES: usize = 0;
let VALUES: usize = 0;
/** Per row: its label, 0 or 1 (u8). */
let LABELS: usize = 0;
/** The epoch's row order (i32), written by the caller before each epoch. */
let ORDER: usize = 0;
/** The bias (f32) and, for AdaGrad, its accumulator (f32 at +4). */
let BIAS: usize = 0;

// Job preparation (compact(), start(), listed(), extract() below): integer and bit-copying loops that
// each run a few times per job. In JavaScript they ran cold in every worker and every one-shot retrain
// (interpreted, then compiled on the stack and deoptimised at the next loop: ~20 ms per Davidson shard
// where warm code takes 8); here they are compiled before the first call.
/** Per bucket: its count of occurrences, then its compact number, or −1 where no row has it (i32). */
let LOCAL_OF: usize = 0;
/** Per compact feature: its bucket (i32). */
let FEATURES: usize = 0;
/** The compact numbers in ascending order of their buckets (i32). */
let ASCENDING: usize = 0;
/** Counting-sort scratch: one entry per possible count + 2 (i32). */
let FIRST_OF: usize = 0;
/** The start checkpoint's full-size weights and AdaGrad accumulators (f32 per bucket), if any. */
let BASE_W: usize = 0;
let BASE_ACC: usize = 0;
/** The coordinates a checkpoint lists (ascending buckets, i32) and each one's compact number or −1 (i32). */
let COORDS: usize = 0;
let LISTED_LOCAL: usize = 0;
/** A checkpoint's listed weights and accumulators (f32), written by extract(). */
let OUT_W: usize = 0;
let OUT_ACC: usize = 0;

export function initPrepare(localOf: usize, features: usize, ascending: usize, firstOf: usize, baseW: usize, baseAcc: usize, coords: usize, listedLocal: usize, outW: usize, outAcc: usize): void {
  LOCAL_OF = localOf;
  FEATURES = features;
  ASCENDING = ascending;
  FIRST_OF = firstOf;
  BASE_W = baseW;
  BASE_ACC = baseAcc;
  COORDS = coords;
  LISTED_LOCAL = listedLocal;
  OUT_W = outW;
  OUT_ACC = outAcc;
}

/**
 * Numbers the features that occur in the rows by falling count, ties by ascending bucket (a counting
 * sort over the counts: a stable pass in bucket order), fills FEATURES, ASCENDING and LOCAL_OF, renumbers
 * the rows' indices in place, and returns the number of features D, or −1 if an index is outside
 * 0..buckets − 1 (then nothing else is done). LOCAL_OF must hold zeros.
 */
export function compact(buckets: i32, nnz: i32): i32 {
  let D: i32 = 0;
  for (let j = 0; j < nnz; j++) {
    const f = load<i32>(INDICES + (<usize>j << 2));
    if (<u32>f >= <u32>buckets) return -1; // outside the feature space: it would overwrite other arrays
    const at = LOCAL_OF + (<usize>f << 2);
    const c = load<i32>(at);
    if (c == 0) D++;
    store<i32>(at, c + 1);
  }
  let maxCount: i32 = 0;
  for (let f = 0; f < buckets; f++) {
    const c = load<i32>(LOCAL_OF + (<usize>f << 2));
    if (c > maxCount) maxCount = c;
  }
  // FIRST_OF[c]: the first number of the features seen maxCount − c times.
  memory.fill(FIRST_OF, 0, <usize>(maxCount + 2) << 2);
  for (let f = 0; f < buckets; f++) {
    const c = load<i32>(LOCAL_OF + (<usize>f << 2));
    if (c > 0) {
      const at = FIRST_OF + (<usize>(maxCount - c + 1) << 2);
      store<i32>(at, load<i32>(at) + 1);
    }
  }
  for (let c = 1; c <= maxCount + 1; c++) {
    const at = FIRST_OF + (<usize>c << 2);
    store<i32>(at, load<i32>(at) + load<i32>(at - 4));
  }
  let k: i32 = 0;
  for (let f = 0; f < buckets; f++) {
    const at = LOCAL_OF + (<usize>f << 2);
    const c = load<i32>(at);
    if (c == 0) {
      store<i32>(at, -1);
      continue;
    }
    const first = FIRST_OF + (<usize>(maxCount - c) << 2);
    const l = load<i32>(first);
    store<i32>(first, l + 1);
    store<i32>(FEATURES + (<usize>l << 2), f);
    store<i32>(at, l);
    store<i32>(ASCENDING + (<usize>k << 2), l);
    k++;
  }
  for (let j = 0; j < nnz; j++) {
    const at = INDICES + (<usize>j << 2);
    store<i32>(at, load<i32>(LOCAL_OF + (<usize>load<i32>(at) << 2)));
  }
  return D;
}

/**
 * Sets each compact feature's weight and accumulator to its start value: the start checkpoint's (bits
 * copied) or the initial ones (0, and initialAcc for AdaGrad).
 */
export function start(D: i32, hasBase: bool, adagrad: bool, initialAcc: f32): void {
  for (let l = 0; l < D; l++) {
    const at = WA + (<usize>l << 3);
    const f = <usize>load<i32>(FEATURES + (<usize>l << 2)) << 2;
    store<i32>(at, hasBase ? load<i32>(BASE_W + f) : 0);
    if (adagrad) {
      if (hasBase) store<i32>(at, load<i32>(BASE_ACC + f), 4);
      else store<f32>(at, initialAcc, 4);
    }
  }
}

/**
 * Fills COORDS and LISTED_LOCAL with the coordinates a checkpoint lists and returns their number: the
 * rows' features, and with a start checkpoint every coordinate where it differs from the initial
 * tensors (0 for weights, initialAcc for AdaGrad's accumulator, compared bit for bit).
 */
export function listed(D: i32, buckets: i32, hasBase: bool, adagrad: bool, initialAcc: f32): i32 {
  if (!hasBase) {
    for (let k = 0; k < D; k++) {
      const l = load<i32>(ASCENDING + (<usize>k << 2));
      store<i32>(COORDS + (<usize>k << 2), load<i32>(FEATURES + (<usize>l << 2)));
      store<i32>(LISTED_LOCAL + (<usize>k << 2), l);
    }
    return D;
  }
  const initBits = reinterpret<i32>(initialAcc);
  let n: i32 = 0;
  for (let f = 0; f < buckets; f++) {
    const b = <usize>f << 2;
    const l = load<i32>(LOCAL_OF + b);
    if (l >= 0 || load<i32>(BASE_W + b) != 0 || (adagrad && load<i32>(BASE_ACC + b) != initBits)) {
      store<i32>(COORDS + (<usize>n << 2), f);
      store<i32>(LISTED_LOCAL + (<usize>n << 2), l);
      n++;
    }
  }
  return n;
}

/** Copies the listed coordinates' current weights (and accumulators) to OUT_W (and OUT_ACC), bit for bit. */
export function extract(n: i32, withAcc: bool): void {
  for (let i = 0; i < n; i++) {
    const l = load<i32>(LISTED_LOCAL + (<usize>i << 2));
    const out = <usize>i << 2;
    if (l >= 0) {
      const at = WA + (<usize>l << 3);
      store<i32>(OUT_W + out, load<i32>(at));
      if (withAcc) store<i32>(OUT_ACC + out, load<i32>(at, 4));
    } else {
      const b = <usize>load<i32>(COORDS + out) << 2;
      store<i32>(OUT_W + out, load<i32>(BASE_W + b));
      if (withAcc) store<i32>(OUT_ACC + out, load<i32>(BASE_ACC + b));
    }
  }
}

export function init(wa: usize, slotOf: usize, rowSlots: usize, touched: usize, grad: usize, offsets: usize, indices: usize, values: usize, labels: usize, order: usize, bias: usize): void {
  WA = wa;
  SLOT_OF = slotOf;
  ROW_SLOTS = rowSlots;
  TOUCHED = touched;
  GRAD = grad;
  OFFSETS = offsets;
  INDICES = indices;
  VALUES = values;
  LABELS = labels;
  ORDER = order;
  BIAS = bias;
}

/**
 * One optimiser step over the rows order[s, end). Per row: its logit with the weights as they were
 * before the batch (giving each feature its batch slot on the way), then the row's share of each
 * feature's gradient, summed per slot in occurrence order. Then each touched feature is updated once,
 * with L2 as part of its gradient (applied lazily, to touched coordinates only), by AdaGrad or SGD.
 */
export function step(s: i32, end: i32, lr: f64, l2: f64, adagrad: bool): void {
  const b0 = <f64>load<f32>(BIAS);
  let used: i32 = 0;
  let gBias: f64 = 0;
  for (let i = s; i < end; i++) {
    const r = load<i32>(ORDER + (<usize>i << 2));
    const j0 = load<i32>(OFFSETS + (<usize>r << 2));
    const e = load<i32>(OFFSETS + (<usize>r << 2), 4);
    let z: f64 = b0;
    for (let j = j0; j < e; j++) {
      const f = load<i32>(INDICES + (<usize>j << 2));
      z += <f64>load<f32>(WA + (<usize>f << 3)) * <f64>load<f32>(VALUES + (<usize>j << 2));
      let slot = load<i32>(SLOT_OF + (<usize>f << 2)) - 1;
      if (slot < 0) {
        slot = used++;
        store<i32>(SLOT_OF + (<usize>f << 2), used);
        store<f64>(GRAD + (<usize>slot << 3), 0);
        store<i32>(TOUCHED + (<usize>slot << 2), f);
      }
      store<i32>(ROW_SLOTS + (<usize>(j - j0) << 2), slot);
    }
    const g = 1.0 / (1.0 + jsExp(-z)) - <f64>load<u8>(LABELS + <usize>r);
    gBias += g;
    for (let j = j0; j < e; j++) {
      const at = GRAD + (<usize>load<i32>(ROW_SLOTS + (<usize>(j - j0) << 2)) << 3);
      store<f64>(at, load<f64>(at) + g * <f64>load<f32>(VALUES + (<usize>j << 2)));
    }
  }
  if (adagrad) {
    for (let k = 0; k < used; k++) {
      const l = load<i32>(TOUCHED + (<usize>k << 2));
      store<i32>(SLOT_OF + (<usize>l << 2), 0);
      const at = WA + (<usize>l << 3);
      const wf = <f64>load<f32>(at);
      const g = load<f64>(GRAD + (<usize>k << 3)) + l2 * wf;
      const af = <f64>load<f32>(at, 4) + g * g;
      store<f32>(at, <f32>af, 4);
      store<f32>(at, <f32>(wf - (lr * g) / Math.sqrt(<f64>(<f32>af))));
    }
    const ab = <f64>load<f32>(BIAS, 4) + gBias * gBias;
    store<f32>(BIAS, <f32>ab, 4);
    store<f32>(BIAS, <f32>(b0 - (lr * gBias) / Math.sqrt(<f64>(<f32>ab))));
  } else {
    for (let k = 0; k < used; k++) {
      const l = load<i32>(TOUCHED + (<usize>k << 2));
      store<i32>(SLOT_OF + (<usize>l << 2), 0);
      const at = WA + (<usize>l << 3);
      const wf = <f64>load<f32>(at);
      store<f32>(at, <f32>(wf - lr * (load<f64>(GRAD + (<usize>k << 3)) + l2 * wf)));
    }
    store<f32>(BIAS, <f32>(b0 - lr * gBias));
  }
}

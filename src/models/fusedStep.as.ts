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
/**
 * Per compact feature l, 16 bytes at 16l: its weight (f32), AdaGrad accumulator (f32 at +4), and the
 * current batch's gradient sum (f64 at +8; NOT_IN_BATCH when the batch has not met the feature yet). A
 * row's logit loads the feature's line, and its gradient share and the update find the sum on the same
 * line, instead of on the lines of a slot table and a gradient array (8 % faster in all on Davidson).
 */
let WA: usize = 0;
/** The features the current batch has met, in the order it met them (i32). */
let TOUCHED: usize = 0;
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
/** A feature's gradient sum outside a batch: a signalling NaN, which no arithmetic produces (a NaN it does produce is quiet). */
const NOT_IN_BATCH: i64 = 0x7FF4000000000001;

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
/**
 * Written by extract(): the coordinates (i32) and values (f32) of the weights that are not 0 and of the
 * accumulators that are not the initial value, and at OUT_COUNTS their counts and whether the two lists
 * name the same coordinates (three i32).
 */
let OUT_WI: usize = 0;
let OUT_W: usize = 0;
let OUT_AI: usize = 0;
let OUT_ACC: usize = 0;
let OUT_COUNTS: usize = 0;

export function initPrepare(localOf: usize, features: usize, ascending: usize, firstOf: usize, baseW: usize, baseAcc: usize, coords: usize, listedLocal: usize, outWI: usize, outW: usize, outAI: usize, outAcc: usize, outCounts: usize): void {
  LOCAL_OF = localOf;
  FEATURES = features;
  ASCENDING = ascending;
  FIRST_OF = firstOf;
  BASE_W = baseW;
  BASE_ACC = baseAcc;
  COORDS = coords;
  LISTED_LOCAL = listedLocal;
  OUT_WI = outWI;
  OUT_W = outW;
  OUT_AI = outAI;
  OUT_ACC = outAcc;
  OUT_COUNTS = outCounts;
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
    const at = WA + (<usize>l << 4);
    const f = <usize>load<i32>(FEATURES + (<usize>l << 2)) << 2;
    store<i32>(at, hasBase ? load<i32>(BASE_W + f) : 0);
    store<i64>(at, NOT_IN_BATCH, 8);
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

/**
 * Lists the listed coordinates' current weights that are not 0, and (withAcc) their accumulators that are
 * not initialAcc, with their coordinates (bits compared, as the checkpoint encoder does: −0 is listed).
 * These are exactly the coordinates a checkpoint stores, so the encoder takes the lists as they are
 * instead of scanning them again in JavaScript, where its first calls in each worker ran cold.
 */
export function extract(n: i32, withAcc: bool, initialAcc: f32): void {
  const initBits = reinterpret<i32>(initialAcc);
  let nw: i32 = 0;
  let na: i32 = 0;
  let same: i32 = 1;
  for (let i = 0; i < n; i++) {
    const l = load<i32>(LISTED_LOCAL + (<usize>i << 2));
    const coord = load<i32>(COORDS + (<usize>i << 2));
    let w: i32;
    let a: i32 = initBits;
    if (l >= 0) {
      const at = WA + (<usize>l << 4);
      w = load<i32>(at);
      if (withAcc) a = load<i32>(at, 4);
    } else {
      const b = <usize>coord << 2;
      w = load<i32>(BASE_W + b);
      if (withAcc) a = load<i32>(BASE_ACC + b);
    }
    // Written at the next free place always; kept by counting it (no branch on the values).
    store<i32>(OUT_WI + (<usize>nw << 2), coord);
    store<i32>(OUT_W + (<usize>nw << 2), w);
    const keepW = <i32>(w != 0);
    nw += keepW;
    if (withAcc) {
      store<i32>(OUT_AI + (<usize>na << 2), coord);
      store<i32>(OUT_ACC + (<usize>na << 2), a);
      const keepA = <i32>(a != initBits);
      na += keepA;
      same &= <i32>(keepW == keepA);
    }
  }
  store<i32>(OUT_COUNTS, nw);
  store<i32>(OUT_COUNTS, na, 4);
  store<i32>(OUT_COUNTS, same, 8);
}

export function init(wa: usize, touched: usize, offsets: usize, indices: usize, values: usize, labels: usize, order: usize, bias: usize): void {
  WA = wa;
  TOUCHED = touched;
  OFFSETS = offsets;
  INDICES = indices;
  VALUES = values;
  LABELS = labels;
  ORDER = order;
  BIAS = bias;
}

/** Feature occurrence j's term of its row's logit, with the weights as they were before the batch. */
@inline
function term(j: i32, wa: usize, indices: usize, values: usize): f64 {
  return <f64>load<f32>(wa + (<usize>load<i32>(indices + (<usize>j << 2)) << 4)) * <f64>load<f32>(values + (<usize>j << 2));
}

/**
 * Adds the shares g·value of row features j0..e−1 to their gradient sums, in feature order; a feature the
 * batch meets for the first time joins TOUCHED and its sum starts as 0 + g·value (as a sum started at 0
 * would, so a −0 share still gives +0). Returns the number of touched features so far.
 */
@inline
function accumulate(j0: i32, e: i32, g: f64, used: i32, wa: usize, indices: usize, values: usize, touched: usize): i32 {
  for (let j = j0; j < e; j++) {
    const f = load<i32>(indices + (<usize>j << 2));
    const share = g * <f64>load<f32>(values + (<usize>j << 2));
    const at = wa + (<usize>f << 4);
    const sum = load<i64>(at, 8);
    if (sum == NOT_IN_BATCH) {
      store<i32>(touched + (<usize>used << 2), f);
      store<f64>(at, 0.0 + share, 8);
      used++;
    } else {
      store<f64>(at, reinterpret<f64>(sum) + share, 8);
    }
  }
  return used;
}

/**
 * One optimiser step over the rows order[s, end). Per row: its logit with the weights as they were
 * before the batch, then the row's share of each feature's gradient, summed per feature in occurrence
 * order. Then each touched feature is updated once, with L2 as part of its gradient (applied lazily, to
 * touched coordinates only), by AdaGrad or SGD.
 *
 * Faster, with the same arithmetic: a row's logit is a chain of dependent additions, so two rows' logits
 * are summed side by side, each in its own order (no weight changes within a batch; 6 % faster); and
 * AdaGrad's update, where a division and a square root per feature dominate, runs on two features at
 * once in f64x2 lanes, each lane doing the scalar code's operations in the same order (IEEE add, mul,
 * div and sqrt, and the same rounding to f32), so the bits are those of the scalar step.
 */
export function step(s: i32, end: i32, lr: f64, l2: f64, adagrad: bool): void {
  // The arrays' offsets in locals: TurboFan reloads a global at every use.
  const wa = WA;
  const indices = INDICES;
  const values = VALUES;
  const touched = TOUCHED;
  const order = ORDER;
  const offsets = OFFSETS;
  const labels = LABELS;
  const b0 = <f64>load<f32>(BIAS);
  let used: i32 = 0;
  let gBias: f64 = 0;
  let i = s;
  for (; i + 1 < end; i += 2) {
    const ra = load<i32>(order + (<usize>i << 2));
    const rb = load<i32>(order + (<usize>i << 2), 4);
    const ja = load<i32>(offsets + (<usize>ra << 2));
    const ea = load<i32>(offsets + (<usize>ra << 2), 4);
    const jb = load<i32>(offsets + (<usize>rb << 2));
    const eb = load<i32>(offsets + (<usize>rb << 2), 4);
    let za: f64 = b0;
    let zb: f64 = b0;
    const both = min(ea - ja, eb - jb);
    for (let k = 0; k < both; k++) {
      za += term(ja + k, wa, indices, values);
      zb += term(jb + k, wa, indices, values);
    }
    for (let j = ja + both; j < ea; j++) za += term(j, wa, indices, values);
    for (let j = jb + both; j < eb; j++) zb += term(j, wa, indices, values);
    const ga = 1.0 / (1.0 + jsExp(-za)) - <f64>load<u8>(labels + <usize>ra);
    gBias += ga;
    used = accumulate(ja, ea, ga, used, wa, indices, values, touched);
    const gb = 1.0 / (1.0 + jsExp(-zb)) - <f64>load<u8>(labels + <usize>rb);
    gBias += gb;
    used = accumulate(jb, eb, gb, used, wa, indices, values, touched);
  }
  if (i < end) {
    const r = load<i32>(order + (<usize>i << 2));
    const j0 = load<i32>(offsets + (<usize>r << 2));
    const e = load<i32>(offsets + (<usize>r << 2), 4);
    let z: f64 = b0;
    for (let j = j0; j < e; j++) z += term(j, wa, indices, values);
    const g = 1.0 / (1.0 + jsExp(-z)) - <f64>load<u8>(labels + <usize>r);
    gBias += g;
    used = accumulate(j0, e, g, used, wa, indices, values, touched);
  }
  if (adagrad) {
    const lrs = f64x2.splat(lr);
    const l2s = f64x2.splat(l2);
    let k: i32 = 0;
    const idle = i64x2.splat(NOT_IN_BATCH);
    for (; k + 1 < used; k += 2) {
      const at0 = wa + (<usize>load<i32>(touched + (<usize>k << 2)) << 4);
      const at1 = wa + (<usize>load<i32>(touched + (<usize>k << 2), 4) << 4);
      // Each feature's 16 bytes: weight and accumulator (f32), then the batch's gradient sum (f64).
      const p0 = v128.load(at0);
      const p1 = v128.load(at1);
      const wacc = v128.shuffle<f32>(p0, p1, 0, 4, 1, 5);
      const wf = f64x2.promote_low_f32x4(wacc);
      const accf = f64x2.promote_low_f32x4(v128.shuffle<f32>(wacc, wacc, 2, 3, 0, 1));
      const g = f64x2.add(v128.shuffle<i64>(p0, p1, 1, 3), f64x2.mul(l2s, wf));
      const af = f32x4.demote_f64x2_zero(f64x2.add(accf, f64x2.mul(g, g)));
      const w = f32x4.demote_f64x2_zero(f64x2.sub(wf, f64x2.div(f64x2.mul(lrs, g), f64x2.sqrt(f64x2.promote_low_f32x4(af)))));
      const out = v128.shuffle<f32>(w, af, 0, 4, 1, 5);
      v128.store(at0, v128.shuffle<i64>(out, idle, 0, 2));
      v128.store(at1, v128.shuffle<i64>(out, idle, 1, 2));
    }
    if (k < used) {
      const at = wa + (<usize>load<i32>(touched + (<usize>k << 2)) << 4);
      const wf = <f64>load<f32>(at);
      const g = load<f64>(at, 8) + l2 * wf;
      const af = <f64>load<f32>(at, 4) + g * g;
      store<f32>(at, <f32>af, 4);
      store<f32>(at, <f32>(wf - (lr * g) / Math.sqrt(<f64>(<f32>af))));
      store<i64>(at, NOT_IN_BATCH, 8);
    }
    const ab = <f64>load<f32>(BIAS, 4) + gBias * gBias;
    store<f32>(BIAS, <f32>ab, 4);
    store<f32>(BIAS, <f32>(b0 - (lr * gBias) / Math.sqrt(<f64>(<f32>ab))));
  } else {
    for (let k = 0; k < used; k++) {
      const at = wa + (<usize>load<i32>(touched + (<usize>k << 2)) << 4);
      const wf = <f64>load<f32>(at);
      store<f32>(at, <f32>(wf - lr * (load<f64>(at, 8) + l2 * wf)));
      store<i64>(at, NOT_IN_BATCH, 8);
    }
    store<f32>(BIAS, <f32>(b0 - lr * gBias));
  }
}

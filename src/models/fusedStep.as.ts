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

// AssemblyScript source of prediction's scoring kernel (compiled to dist/src/models/linearScore.wasm by
// `npm run build`; excluded from tsc). linearScore.ts keeps the ensemble's interleaved weights in a shared
// linear memory, copies a batch's CSR rows into a region of it that belongs to the calling thread, and calls
// score().
//
// Why WebAssembly: scoring reads S adjacent float32 weights for each of a row's ~150 features from a table of
// 2^18 · S floats, far larger than the core's caches, so it waits on memory. JavaScript spent about 30
// instructions per feature on bounds checks and conversions, which kept few of those reads in flight; here a
// feature costs two 16-byte loads and eight multiply-adds in SIMD lanes, and the processor overlaps the reads
// of many features (a synthetic batch at S = 8 and 2^18 buckets: about 3 times faster).
//
// Exactness: each model's sum is the JavaScript kernel's (linearScore.ts): the bias, then w · v for the
// row's features in their order, every product and sum in float64 from float32 inputs. A SIMD lane is one
// model's IEEE binary64 arithmetic, never fused; exp is JavaScript's Math.exp, imported; the probability is
// 1 / (1 + exp(−z)) rounded to float32 as the typed-array store did. test/linear-score.test.ts compares the
// two kernels and a plain loop bit for bit (a NaN result may differ in its payload only, which WebAssembly
// leaves open). No static data: the memory's first page is kept for it, and the weights follow.

@external("env", "exp")
declare function jsExp(x: f64): f64;

// @ts-ignore: decorator
@inline
function sigmoid(z: f64): f32 {
  return <f32>(1 / (1 + jsExp(-z)));
}

/** What the touching loads read (see score), kept so that no compiler may drop them as unused. */
let touched: i32 = 0;

/**
 * out[m·n + r] = σ(b_m + Σ_j w[idx_j·S + m] · v_j) for the n rows in CSR form (offsets i32, n + 1, each
 * minus `first` an index into indices i32 and values f32), weights interleaved bucket-major (f32, S per
 * bucket), biases f32 (S). z is scratch for one row's sums (f64, S).
 */
export function score(n: i32, offsets: usize, first: i32, indices: usize, values: usize, weights: usize, S: i32, biases: usize, z: usize, out: usize): void {
  const stride = <usize>S << 2;
  const blocks = S >> 3;
  for (let r = 0; r < n; r++) {
    const from = load<i32>(offsets + (<usize>r << 2)) - first;
    const end = load<i32>(offsets + (<usize>r << 2), 4) - first;
    // Touch the next row's weights before summing this one's. The weights are scattered over a table far
    // larger than the core's caches, and the multiply-add loop below is long enough per feature that the
    // processor keeps only a few of its cache misses in flight; a loop of a few instructions per feature
    // keeps many, and the next row then finds its weights in cache (Davidson texts on this 2-core host,
    // hashed and scored on one thread: about 12 % more rows/s at S = 8 and 18 % at S = 32, where a
    // feature's weights span two cache lines). It reads, and changes nothing: the sums are the same bits.
    // The weights start on a page, so a feature's S weights lie in one line when 4·S divides 64, and start
    // on a line when 64 divides 4·S; otherwise the line holding their last weight is touched too.
    if (r + 1 < n) {
      const next = load<i32>(offsets + (<usize>(r + 1) << 2), 4) - first;
      let t: i32 = 0;
      if (64 % stride === 0) for (let j = end; j < next; j++) t |= load<i32>(weights + <usize>load<u32>(indices + (<usize>j << 2)) * stride);
      else {
        const last: usize = stride % 64 === 0 ? 0 : stride - 4;
        for (let j = end; j < next; j++) {
          const at = weights + <usize>load<u32>(indices + (<usize>j << 2)) * stride;
          t |= load<i32>(at) | load<i32>(at + last);
          for (let o: usize = 64; o < stride; o += 64) t |= load<i32>(at + o);
        }
      }
      touched |= t;
    }
    // Eight models at a time in four f64x2 accumulators: a row's S weights of one feature are adjacent,
    // so the next block finds them in cache.
    for (let blk = 0; blk < blocks; blk++) {
      const m0 = <usize>blk << 3;
      const b = v128.load(biases + (m0 << 2));
      const b2 = v128.load(biases + (m0 << 2), 16);
      let a0 = f64x2.promote_low_f32x4(b);
      let a1 = f64x2.promote_low_f32x4(v128.shuffle<f32>(b, b, 2, 3, 0, 1));
      let a2 = f64x2.promote_low_f32x4(b2);
      let a3 = f64x2.promote_low_f32x4(v128.shuffle<f32>(b2, b2, 2, 3, 0, 1));
      const wb = weights + (m0 << 2);
      for (let j = from; j < end; j++) {
        const at = wb + <usize>load<u32>(indices + (<usize>j << 2)) * stride;
        const v = f64x2.splat(<f64>load<f32>(values + (<usize>j << 2)));
        const w0 = v128.load(at);
        const w1 = v128.load(at, 16);
        a0 = f64x2.add(a0, f64x2.mul(f64x2.promote_low_f32x4(w0), v));
        a1 = f64x2.add(a1, f64x2.mul(f64x2.promote_low_f32x4(v128.shuffle<f32>(w0, w0, 2, 3, 0, 1)), v));
        a2 = f64x2.add(a2, f64x2.mul(f64x2.promote_low_f32x4(w1), v));
        a3 = f64x2.add(a3, f64x2.mul(f64x2.promote_low_f32x4(v128.shuffle<f32>(w1, w1, 2, 3, 0, 1)), v));
      }
      const o = out + ((m0 * <usize>n + <usize>r) << 2);
      const col = <usize>n << 2;
      store<f32>(o, sigmoid(f64x2.extract_lane(a0, 0)));
      store<f32>(o + col, sigmoid(f64x2.extract_lane(a0, 1)));
      store<f32>(o + 2 * col, sigmoid(f64x2.extract_lane(a1, 0)));
      store<f32>(o + 3 * col, sigmoid(f64x2.extract_lane(a1, 1)));
      store<f32>(o + 4 * col, sigmoid(f64x2.extract_lane(a2, 0)));
      store<f32>(o + 5 * col, sigmoid(f64x2.extract_lane(a2, 1)));
      store<f32>(o + 6 * col, sigmoid(f64x2.extract_lane(a3, 0)));
      store<f32>(o + 7 * col, sigmoid(f64x2.extract_lane(a3, 1)));
    }
    // The models left over (S not a multiple of 8), one sum each in z.
    const m0 = blocks << 3;
    if (m0 === S) continue;
    for (let m = m0; m < S; m++) store<f64>(z + (<usize>(m - m0) << 3), <f64>load<f32>(biases + (<usize>m << 2)));
    for (let j = from; j < end; j++) {
      const at = weights + <usize>load<u32>(indices + (<usize>j << 2)) * stride;
      const v = <f64>load<f32>(values + (<usize>j << 2));
      for (let m = m0; m < S; m++) {
        const zm = z + (<usize>(m - m0) << 3);
        store<f64>(zm, load<f64>(zm) + <f64>load<f32>(at + (<usize>m << 2)) * v);
      }
    }
    for (let m = m0; m < S; m++) store<f32>(out + ((<usize>m * <usize>n + <usize>r) << 2), sigmoid(load<f64>(z + (<usize>(m - m0) << 3))));
  }
}

/**
 * Prediction's scoring kernels: the WebAssembly kernel (weights in a shared WebAssembly memory) and the
 * JavaScript kernel (a table too large for one, or a batch its memory cannot hold) give the same float32
 * probabilities as a plain loop, bit for bit, on arbitrary weights, rows and ensemble sizes: the models'
 * votes, scores, fairness fits and reports all rest on these bits.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { newLinearMembers, scoreLinear, scoreLinearInto, scoreLinearJs, type CsrRows, type LinearMembers } from '../src/models/linearScore.js';

/** σ(b_m + Σ_j w[idx_j·S + m] · v_j) with the sum in float64 in the row's order, as a plain loop. */
function reference(m: LinearMembers, rows: CsrRows, n: number): Float32Array {
  const S = m.biases.length;
  const out = new Float32Array(S * n);
  for (let r = 0; r < n; r++) {
    for (let k = 0; k < S; k++) {
      let z = m.biases[k]!;
      for (let j = rows.offsets[r]!; j < rows.offsets[r + 1]!; j++) z += m.weights[rows.indices[j]! * S + k]! * rows.values[j]!;
      out[k * n + r] = 1 / (1 + Math.exp(-z));
    }
  }
  return out;
}

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Float32 values of every kind: ordinary, large (exp overflows), tiny, subnormal, ±0. */
const f32 = fc.oneof(
  fc.float({ min: -4, max: 4, noNaN: true }),
  fc.float({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 1e-40, -1e-40, 3e38, -3e38, 1e-7),
);

interface Case {
  buckets: number;
  S: number;
  weights: number[];
  biases: number[];
  rows: { index: number; value: number }[][];
}

const cases: fc.Arbitrary<Case> = fc
  .record({ bucketBits: fc.integer({ min: 0, max: 6 }), S: fc.integer({ min: 1, max: 20 }) })
  .chain(({ bucketBits, S }) => {
    const buckets = 1 << bucketBits;
    return fc.record({
      buckets: fc.constant(buckets),
      S: fc.constant(S),
      weights: fc.array(f32, { minLength: buckets * S, maxLength: buckets * S }),
      biases: fc.array(f32, { minLength: S, maxLength: S }),
      // Rows in any bucket order, repeats allowed, empty rows too: the kernels must keep the given order.
      rows: fc.array(fc.array(fc.record({ index: fc.integer({ min: 0, max: buckets - 1 }), value: f32 }), { maxLength: 12 }), { minLength: 1, maxLength: 30 }),
    });
  });

function build(c: Case, scratchPages?: number): { members: LinearMembers; rows: CsrRows; n: number } {
  const members = newLinearMembers(c.buckets, c.S, scratchPages);
  members.weights.set(c.weights);
  members.biases.set(c.biases);
  const offsets = new Int32Array(c.rows.length + 1);
  c.rows.forEach((r, i) => (offsets[i + 1] = offsets[i]! + r.length));
  const flat = c.rows.flat();
  return { members, rows: { offsets, indices: Int32Array.from(flat, (f) => f.index), values: Float32Array.from(flat, (f) => f.value) }, n: c.rows.length };
}

describe('scoring kernels', () => {
  it('the WebAssembly kernel, the JavaScript kernel and a plain loop agree bit for bit (property)', () => {
    fc.assert(
      fc.property(cases, (c) => {
        const { members, rows, n } = build(c);
        assert.ok(members.memory, 'a small table lives in a WebAssembly memory');
        const want = bits(reference(members, rows, n));
        assert.deepEqual(bits(scoreLinear(members, rows, n)), want, 'WebAssembly');
        const js = new Float32Array(c.S * n);
        scoreLinearJs(members, rows, n, js);
        assert.deepEqual(bits(js), want, 'JavaScript');
      }),
      { numRuns: 300 },
    );
  });

  it('scores many rows in several calls (past a call’s row limit), into the middle of a larger output', () => {
    const c: Case = { buckets: 1 << 10, S: 11, weights: [], biases: [], rows: [] };
    let seed = 7;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    c.weights = Array.from({ length: c.buckets * c.S }, () => rand() - 0.5);
    c.biases = Array.from({ length: c.S }, () => rand() - 0.5);
    c.rows = Array.from({ length: 5000 }, (_, r) => Array.from({ length: r % 40 }, () => ({ index: Math.floor(rand() * c.buckets), value: rand() })));
    const { members, rows, n } = build(c);
    const want = reference(members, rows, n);
    // Rows 0..n of an output of n + 10 rows, starting at row 4.
    const probs = new Float32Array(c.S * (n + 10)).fill(-1);
    scoreLinearInto(members, rows, n, probs, n + 10, 4);
    for (let m = 0; m < c.S; m++) {
      assert.deepEqual(bits(probs.subarray(m * (n + 10) + 4, m * (n + 10) + 4 + n)), bits(want.subarray(m * n, (m + 1) * n)), `member ${m}`);
      for (const r of [0, 1, 2, 3, n + 4, n + 9]) assert.equal(probs[m * (n + 10) + r], -1, `member ${m}, row ${r} outside the range is untouched`);
    }
  });

  it('a batch the memory cannot hold is scored in JavaScript, with the same bits', () => {
    const c: Case = { buckets: 64, S: 9, weights: [], biases: [], rows: [] };
    c.weights = Array.from({ length: 64 * 9 }, (_, i) => Math.sin(i));
    c.biases = Array.from({ length: 9 }, (_, i) => Math.cos(i));
    // 3,000 rows of 30 features: their batch needs more than the one page of room these members have.
    c.rows = Array.from({ length: 3000 }, (_, r) => Array.from({ length: 30 }, (_, j) => ({ index: (r * 7 + j * 13) % 64, value: Math.fround(1 / (j + 1)) })));
    const { members, rows, n } = build(c, 1);
    const size = members.memory!.buffer.byteLength;
    assert.deepEqual(bits(scoreLinear(members, rows, n)), bits(reference(members, rows, n)));
    assert.equal(members.memory!.buffer.byteLength, size, 'the memory did not grow: the batch was scored in JavaScript');
  });
});

/**
 * The fused kernel's speed comes from its layout (a compact per-shard feature space, one record per
 * feature holding its weight, accumulator and batch gradient sum, two rows summed side by side, SIMD
 * lanes for the update), never from different arithmetic. These tests hold it to a
 * plain reference written from the definition of the model (logistic loss, L2 on the touched
 * coordinates, AdaGrad or decaying SGD, the SISA union schedule): every checkpoint must match bit for
 * bit, from scratch and when continued from a checkpoint, including coordinates that no remaining row
 * uses (a deletion can remove the last row of a feature).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Rows } from '../src/data/shardFile.js';
import type { LearnerConfig } from '../src/state/manifest.js';
import type { Checkpoint } from '../src/models/checkpoint.js';
import { ADAGRAD_INITIAL, trainShardFused } from '../src/models/fusedLinear.js';
import { deriveSeed, mulberry32, shuffleInPlace } from '../src/util/rng.js';

interface Tensors {
  w: Float32Array;
  b: Float32Array;
  acc: Float32Array | null;
  accB: Float32Array | null;
  step: number;
}

/** The model trained the obvious way, over all buckets, one batch at a time. */
function referenceTrain(rows: Rows, cfg: LearnerConfig, buckets: number, seed: number, shard: number, slices: number, fromSlice: number, start: Tensors | null): Tensors[] {
  const adagrad = cfg.optimizer === 'adagrad';
  const w = start ? start.w.slice() : new Float32Array(buckets);
  const b = start ? start.b.slice() : new Float32Array(1);
  const acc = adagrad ? (start?.acc ? start.acc.slice() : new Float32Array(buckets).fill(ADAGRAD_INITIAL)) : null;
  const accB = adagrad ? (start?.accB ? start.accB.slice() : new Float32Array(1).fill(ADAGRAD_INITIAL)) : null;
  let step = start?.step ?? 0;
  const out: Tensors[] = [];
  for (let slice = fromSlice; slice < slices; slice++) {
    const members: number[] = [];
    for (let r = 0; r < rows.ids.length; r++) if (rows.slices[r]! <= slice) members.push(r);
    for (let epoch = 0; epoch < cfg.epochs; epoch++) {
      const order = Int32Array.from(members);
      shuffleInPlace(order, mulberry32(deriveSeed(seed, shard, slice, epoch)));
      for (let s = 0; s < order.length; s += cfg.batchSize) {
        const lr = adagrad ? cfg.learningRate : cfg.learningRate / Math.sqrt(1 + step / 200);
        const b0 = b[0]!;
        // The batch's gradient per feature, summed in the order the features occur.
        const gradient = new Map<number, number>();
        let gBias = 0;
        for (const r of order.subarray(s, Math.min(order.length, s + cfg.batchSize))) {
          let z = b0;
          for (let j = rows.offsets[r]!; j < rows.offsets[r + 1]!; j++) z += w[rows.indices[j]!]! * rows.values[j]!;
          const g = 1 / (1 + Math.exp(-z)) - rows.labels[r]!;
          gBias += g;
          for (let j = rows.offsets[r]!; j < rows.offsets[r + 1]!; j++) {
            const f = rows.indices[j]!;
            gradient.set(f, (gradient.get(f) ?? 0) + g * rows.values[j]!);
          }
        }
        for (const [f, gf] of gradient) {
          const g = gf + cfg.l2 * w[f]!;
          if (acc) {
            acc[f] = acc[f]! + g * g;
            w[f] = w[f]! - (lr * g) / Math.sqrt(acc[f]!);
          } else w[f] = w[f]! - lr * g;
        }
        if (accB) {
          accB[0] = accB[0]! + gBias * gBias;
          b[0] = b0 - (lr * gBias) / Math.sqrt(accB[0]!);
        } else b[0] = b0 - lr * gBias;
        step += 1;
      }
    }
    out.push({ w: w.slice(), b: b.slice(), acc: acc?.slice() ?? null, accB: accB?.slice() ?? null, step });
  }
  return out;
}

async function fusedTrain(rows: Rows, cfg: LearnerConfig, buckets: number, seed: number, shard: number, slices: number, fromSlice: number, start: Checkpoint | null): Promise<Checkpoint[]> {
  const out: Checkpoint[] = [];
  await trainShardFused({ rows, cfg, buckets, seed, shard, slices, fromSlice, start, onSlice: async (c) => void out.push(c) });
  return out;
}

function tensor(c: Checkpoint, name: string): Float32Array | undefined {
  return [...c.params, ...c.optimizer].find((t) => t.name === name)?.data;
}

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/**
 * The kernel hands a tensor on as exactly the coordinates whose value differs from the fill (bits
 * compared), ascending, marked `exact`: the checkpoint encoder stores such a list as it is, so a wrong
 * list (a fill value kept, a changed coordinate left out) would give other checkpoint bytes.
 */
function assertListedExactly(fused: Checkpoint, name: string, dense: Float32Array, fill: number, what: string): void {
  const sparse = [...fused.params, ...fused.optimizer].find((t) => t.name === name)?.sparse;
  assert.ok(sparse?.exact, `${what}: ${name} is not handed on as an exact list`);
  const fillBits = new Uint32Array(Float32Array.of(fill).buffer)[0];
  const denseBits = new Uint32Array(dense.buffer, dense.byteOffset, dense.length);
  const expected = [...denseBits.keys()].filter((i) => denseBits[i] !== fillBits);
  assert.deepEqual([...sparse.indices], expected, `${what}: ${name} lists other coordinates than those that differ from ${fill}`);
  assert.ok(bits(sparse.values).equals(bits(Float32Array.from(expected, (i) => dense[i]!))), `${what}: ${name}'s listed values differ`);
}

function assertSame(fused: Checkpoint, ref: Tensors, last: boolean, what: string): void {
  assert.equal(fused.meta.step, ref.step, `${what}: step`);
  assert.ok(bits(tensor(fused, 'w')!).equals(bits(ref.w)), `${what}: weights differ`);
  assertListedExactly(fused, 'w', ref.w, 0, what);
  assert.ok(bits(tensor(fused, 'b')!).equals(bits(ref.b)), `${what}: bias differs`);
  if (ref.acc && !last) {
    assert.ok(bits(tensor(fused, 'acc:w')!).equals(bits(ref.acc)), `${what}: AdaGrad accumulator differs`);
    assertListedExactly(fused, 'acc:w', ref.acc, ADAGRAD_INITIAL, what);
    assert.ok(bits(tensor(fused, 'acc:b')!).equals(bits(ref.accB!)), `${what}: AdaGrad bias accumulator differs`);
  }
}

/** A shard of random sparse rows: ascending buckets per row (a bucket may repeat), signed counts, 0/1 labels. */
const shardArb = (buckets: number, slices: number) =>
  fc
    .array(
      fc.record({
        // Repeats allowed: a row that names a feature twice must add up like the reference.
        features: fc.array(fc.integer({ min: 0, max: buckets - 1 }), { minLength: 1, maxLength: 12 }),
        values: fc.array(fc.integer({ min: -3, max: 3 }).filter((v) => v !== 0), { minLength: 12, maxLength: 12 }),
        label: fc.integer({ min: 0, max: 1 }),
        slice: fc.integer({ min: 0, max: slices - 1 }),
      }),
      { minLength: 1, maxLength: 60 },
    )
    .map((recs): Rows => {
      const offsets = new Int32Array(recs.length + 1);
      const indices: number[] = [];
      const values: number[] = [];
      recs.forEach((rec, r) => {
        const feats = [...rec.features].sort((a, b) => a - b);
        feats.forEach((f, k) => {
          indices.push(f);
          values.push(rec.values[k]! / 2);
        });
        offsets[r + 1] = indices.length;
      });
      return {
        ids: recs.map((_, r) => `r${r}`),
        texts: recs.map(() => ''),
        labels: Uint8Array.from(recs.map((x) => x.label)),
        slices: Int16Array.from(recs.map((x) => x.slice)),
        offsets,
        indices: Int32Array.from(indices),
        values: Float32Array.from(values),
        groups: {},
      };
    });

const withoutRows = (rows: Rows, drop: Set<number>): Rows => {
  const keep = rows.ids.map((_, r) => r).filter((r) => !drop.has(r));
  const offsets = new Int32Array(keep.length + 1);
  const indices: number[] = [];
  const values: number[] = [];
  keep.forEach((r, k) => {
    for (let j = rows.offsets[r]!; j < rows.offsets[r + 1]!; j++) {
      indices.push(rows.indices[j]!);
      values.push(rows.values[j]!);
    }
    offsets[k + 1] = indices.length;
  });
  return {
    ids: keep.map((r) => rows.ids[r]!),
    texts: keep.map((r) => rows.texts[r]!),
    labels: Uint8Array.from(keep.map((r) => rows.labels[r]!)),
    slices: Int16Array.from(keep.map((r) => rows.slices[r]!)),
    offsets,
    indices: Int32Array.from(indices),
    values: Float32Array.from(values),
    groups: {},
  };
};

describe('fused kernel = the model trained the obvious way, bit for bit', () => {
  const buckets = 64;
  const slices = 3;
  for (const optimizer of ['adagrad', 'sgd'] as const) {
    const cfg: LearnerConfig = { hidden: 0, optimizer, learningRate: optimizer === 'adagrad' ? 0.5 : 0.2, l2: 1e-3, epochs: 2, batchSize: 4, blockWidth: 16 };

    it(`${optimizer}: every slice's checkpoint, trained from scratch`, async () => {
      await fc.assert(
        fc.asyncProperty(shardArb(buckets, slices), fc.integer({ min: 0, max: 1000 }), async (rows, seed) => {
          const fused = await fusedTrain(rows, cfg, buckets, seed, 3, slices, 0, null);
          const ref = referenceTrain(rows, cfg, buckets, seed, 3, slices, 0, null);
          assert.equal(fused.length, slices);
          fused.forEach((c, k) => assertSame(c, ref[k]!, k === slices - 1, `slice ${k}`));
        }),
        { numRuns: 40 },
      );
    });

    it(`${optimizer}: continued from any checkpoint after rows were removed; coordinates of no remaining row keep their values`, async () => {
      await fc.assert(
        fc.asyncProperty(shardArb(buckets, slices), fc.integer({ min: 0, max: 1000 }), fc.array(fc.nat(), { maxLength: 10 }), async (rows, seed, dropAt) => {
          const full = await fusedTrain(rows, cfg, buckets, seed, 1, slices, 0, null);
          // Any checkpoint may be continued: give every coordinate a value of its own, so that those
          // of no remaining row are not simply the initial ones.
          const start = structuredClone(full[0]!);
          for (const t of [...start.params, ...start.optimizer]) for (let f = 0; f < t.data.length; f++) t.data[f] = t.data[f]! + ((f % 7) + 1) * (t.name.startsWith('acc') ? 0.1 : 0.01);
          // Drop rows of slices ≥ 1 (those the retrain from slice 1 relearns), as a deletion would.
          const later = rows.ids.map((_, r) => r).filter((r) => rows.slices[r]! >= 1);
          const drop = new Set(dropAt.filter(() => later.length > 0).map((k) => later[k % later.length]!));
          const rest = withoutRows(rows, drop);
          const fused = await fusedTrain(rest, cfg, buckets, seed, 1, slices, 1, start);
          const ref = referenceTrain(rest, cfg, buckets, seed, 1, slices, 1, {
            w: tensor(start, 'w')!,
            b: tensor(start, 'b')!,
            acc: tensor(start, 'acc:w') ?? null,
            accB: tensor(start, 'acc:b') ?? null,
            step: start.meta.step,
          });
          fused.forEach((c, k) => assertSame(c, ref[k]!, k === fused.length - 1, `slice ${k + 1}`));
        }),
        { numRuns: 40 },
      );
    });
  }

  it('the reference is not vacuous: a different seed or a dropped row changes the weights', async () => {
    const rows: Rows = {
      ids: ['a', 'b', 'c', 'd', 'e'],
      texts: ['', '', '', '', ''],
      labels: Uint8Array.of(1, 0, 1, 0, 1),
      slices: Int16Array.of(0, 0, 1, 1, 2),
      offsets: Int32Array.of(0, 2, 4, 5, 7, 9),
      indices: Int32Array.of(1, 5, 2, 5, 9, 1, 40, 3, 63),
      values: Float32Array.of(1, 1, 1, -1, 2, 1, 1, 1, -1),
      groups: {},
    };
    const cfg: LearnerConfig = { hidden: 0, optimizer: 'adagrad', learningRate: 0.5, l2: 1e-3, epochs: 2, batchSize: 2, blockWidth: 16 };
    const a = referenceTrain(rows, cfg, buckets, 1, 0, slices, 0, null).at(-1)!;
    const b = referenceTrain(rows, cfg, buckets, 2, 0, slices, 0, null).at(-1)!;
    const c = referenceTrain(withoutRows(rows, new Set([3])), cfg, buckets, 1, 0, slices, 0, null).at(-1)!;
    assert.ok(!bits(a.w).equals(bits(b.w)), 'the seed must matter');
    assert.ok(!bits(a.w).equals(bits(c.w)), 'a row must matter');
  });

  it('refuses a feature index outside the buckets, and a start checkpoint of another size (they would write past their arrays in WebAssembly memory)', async () => {
    const cfg: LearnerConfig = { hidden: 0, optimizer: 'adagrad', learningRate: 0.5, l2: 1e-3, epochs: 1, batchSize: 2, blockWidth: 16 };
    const rows = (indices: number[]): Rows => ({
      ids: ['a', 'b'],
      texts: ['', ''],
      labels: Uint8Array.of(1, 0),
      slices: Int16Array.of(0, 1),
      offsets: Int32Array.of(0, 2, 3),
      indices: Int32Array.from(indices),
      values: Float32Array.of(1, 1, 1),
      groups: {},
    });
    for (const bad of [[1, buckets], [-1, 2], [3, 2 ** 31 - 1]])
      await assert.rejects(fusedTrain(rows([bad[0]!, bad[1]!, 7]), cfg, buckets, 1, 0, 2, 0, null), /feature index is outside the 64 buckets/);
    const [first] = await fusedTrain(rows([1, 2, 7]), cfg, buckets, 1, 0, 2, 0, null);
    await assert.rejects(fusedTrain(rows([1, 2, 7]), cfg, buckets * 2, 1, 0, 2, 1, first!), /the start checkpoint has 64 weights, the model 128 buckets/);
  });
});

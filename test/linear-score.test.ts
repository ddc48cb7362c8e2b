/**
 * Prediction's scoring kernels: the WebAssembly kernel (weights in a shared WebAssembly memory) and the
 * JavaScript kernel (a table too large for one, or a batch its memory cannot hold) give the same float32
 * probabilities as a plain loop, bit for bit, on arbitrary weights, rows and ensemble sizes: the models'
 * votes, scores, fairness fits and reports all rest on these bits.
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_FEATURES, hashTexts } from '../src/features/hashing.js';
import { heldScoringRegions, newLinearMembers, scoreLinear, scoreLinearInto, scoreLinearJs, type CsrRows, type LinearMembers } from '../src/models/linearScore.js';
import { ScorePool, scoreOnThreads, type BatchScorer } from '../src/models/scorePool.js';
import { RequestPool } from '../src/util/workerPool.js';
import { SisaError } from '../src/util/errors.js';
import type { FailReply, FailRequest } from './fixtures/failingWorker.js';
import { cliJson, makeCorpus, runCli, tempDir } from './helpers.js';

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

/**
 * The same float32 bits, except that a NaN only has to be a NaN: WebAssembly leaves the payload of a NaN
 * computed from two NaNs open, and any NaN votes the same.
 */
function assertSameProbs(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, what);
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < got.length; i++) {
    if (Number.isNaN(want[i]!)) assert.ok(Number.isNaN(got[i]!), `${what}: value ${i} should be NaN, got ${got[i]}`);
    else assert.equal(g[i], w[i], `${what}: value ${i}: ${got[i]} vs ${want[i]}`);
  }
}

/** Float32 values of every kind: ordinary, large (exp overflows), tiny, subnormal, ±0, ±Infinity, NaN. */
const f32 = fc.oneof(
  fc.float({ min: -4, max: 4, noNaN: true }),
  fc.float({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 1e-40, -1e-40, 3e38, -3e38, 1e-7),
  fc.float(),
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
        const before = members.memory.buffer.byteLength;
        const want = reference(members, rows, n);
        assertSameProbs(scoreLinear(members, rows, n), want, 'WebAssembly');
        assert.ok(members.memory.buffer.byteLength > before, 'the WebAssembly kernel ran (it took a region of the memory)');
        const js = new Float32Array(c.S * n);
        scoreLinearJs(members, rows, n, js);
        assertSameProbs(js, want, 'JavaScript');
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

  it('a call whose first rows fit and whose later rows do not is scored whole, with the same bits', () => {
    const c: Case = { buckets: 256, S: 8, weights: [], biases: [], rows: [] };
    c.weights = Array.from({ length: 256 * 8 }, (_, i) => Math.sin(i * 0.7));
    c.biases = Array.from({ length: 8 }, (_, i) => Math.cos(i));
    // 2,048 short rows (the first kernel call, 123 KB), then one of 40,000 features (320 KB: more than the 2 pages of room).
    c.rows = Array.from({ length: 2048 }, (_, r) => Array.from({ length: 3 }, (_, j) => ({ index: (r + j * 31) % 256, value: 0.25 })));
    c.rows.push(Array.from({ length: 40000 }, (_, j) => ({ index: (j * 7) % 256, value: Math.fround(1 / (1 + (j % 13))) })));
    const { members, rows, n } = build(c, 2);
    const size = members.memory!.buffer.byteLength;
    assert.deepEqual(bits(scoreLinear(members, rows, n)), bits(reference(members, rows, n)));
    assert.ok(members.memory!.buffer.byteLength > size, 'the first rows went through the WebAssembly kernel');
  });

  it('a region that cannot double is grown to what the call needs', () => {
    // One row per call, S = 1: a call needs about 8 bytes per feature. The memory starts at 2 pages and may
    // grow by 5: 15,000 features take a region of 2 pages; then 24,000 need 3, where doubling would take 4.
    const members = newLinearMembers(16, 1, 5);
    members.weights.set(Array.from({ length: 16 }, (_, i) => Math.fround(Math.sin(i))));
    members.biases.set([0.25]);
    const row = (n: number): CsrRows => ({ offsets: Int32Array.from([0, n]), indices: Int32Array.from({ length: n }, (_, j) => (j * 5) % 16), values: Float32Array.from({ length: n }, (_, j) => Math.fround(1 / (1 + (j % 9)))) });
    const pages = () => members.memory!.buffer.byteLength / 65536;
    assert.equal(pages(), 2);
    for (const [n, after] of [[15000, 4], [24000, 7]] as const) {
      const rows = row(n);
      assert.deepEqual(bits(scoreLinear(members, rows, 1)), bits(reference(members, rows, 1)), `${n} features`);
      assert.equal(pages(), after, `${n} features: the memory has ${pages()} pages`);
    }
  });

  it('rows with more features than one kernel call takes are split between calls, with the same bits', () => {
    const c: Case = { buckets: 1024, S: 3, weights: [], biases: [], rows: [] };
    c.weights = Array.from({ length: 1024 * 3 }, (_, i) => Math.sin(i));
    c.biases = [0.5, -0.25, 0];
    // Three rows of 300,000 features each: no two fit in one call of at most 2^19.
    c.rows = Array.from({ length: 3 }, (_, r) => Array.from({ length: 300000 }, (_, j) => ({ index: (j * (r + 3)) % 1024, value: Math.fround(((j % 17) - 8) / 64) })));
    const { members, rows, n } = build(c);
    assert.deepEqual(bits(scoreLinear(members, rows, n)), bits(reference(members, rows, n)));
  });

  it('a table too large for a WebAssembly memory is kept in shared memory and scored in JavaScript', () => {
    // No room beyond the table: the members fall back to a SharedArrayBuffer (as 2^24 buckets × 60 models would).
    const members = newLinearMembers(16, 4, 65536);
    assert.equal(members.memory, null);
    assert.ok(members.weights.buffer instanceof SharedArrayBuffer);
    members.weights.set(Array.from({ length: 64 }, (_, i) => Math.fround(Math.cos(i))));
    members.biases.set([0.1, -0.2, 0.3, -0.4]);
    const rows: CsrRows = { offsets: Int32Array.from([0, 2, 2, 5]), indices: Int32Array.from([1, 15, 0, 3, 3]), values: Float32Array.from([0.5, -1, 2, 0.25, 0.25]) };
    assert.deepEqual(bits(scoreLinear(members, rows, 3)), bits(reference(members, rows, 3)));
  });

  it('worker threads of successive predictions reuse the regions of the ones before, and score as this thread does', async () => {
    const S = 3;
    const members = newLinearMembers(DEFAULT_FEATURES.buckets, S);
    for (let i = 0; i < members.weights.length; i += 97) members.weights[i] = Math.fround(Math.sin(i));
    members.biases.set([0.1, -0.2, 0.05]);
    // Every request the same 1,000 texts, so that any region, once grown for one, fits them all: the memory
    // grows only when more threads than ever before score at once (here at most two), not with each pool.
    const texts = Array.from({ length: 1000 }, (_, i) => `text ${i} with words like w${i % 113} and w${i % 7}, number ${i * 31}`);
    const here = scoreLinear(members, hashTexts(texts, DEFAULT_FEATURES), texts.length);
    const sizes: number[] = [];
    const start = members.memory!.buffer.byteLength;
    for (let round = 0; round < 12; round++) {
      const pool = new ScorePool(DEFAULT_FEATURES, members, 2);
      try {
        const parts = await Promise.all([0, 1, 2].map((k) => pool.scoreOn(k % pool.threads, texts)));
        parts.forEach((probs, k) => assert.deepEqual(bits(probs), bits(here), `round ${round}, request ${k}`));
      } finally {
        await pool.close();
      }
      sizes.push(members.memory!.buffer.byteLength);
    }
    const grew = sizes.filter((size, i) => size > (i === 0 ? start : sizes[i - 1]!)).length;
    assert.ok(grew <= 2, `the memory grew in ${grew} of 12 rounds: ${[start, ...sizes].join(', ')}`);
  });

  it('a prediction spread over this thread and a worker scores every row once, where it belongs', async () => {
    const S = 5;
    const members = newLinearMembers(DEFAULT_FEATURES.buckets, S);
    for (let i = 0; i < members.weights.length; i += 13) members.weights[i] = Math.fround(Math.cos(i) * 2);
    members.biases.set([0.3, -0.1, 0, 0.2, -0.4]);
    // Distinct texts, so that a row skipped or put at another row's place shows; long enough (~700
    // characters) that the featuriser splits this thread's batches, so rows past a split are placed too.
    const filler = Array.from({ length: 90 }, (_, k) => `w${k}`).join(' ');
    const texts = Array.from({ length: 9001 }, (_, i) => `row ${i}: words w${i % 211} w${(i * 7) % 389} and ${i * 13} ${filler.slice(i % 50)}`);
    const want = scoreLinear(members, hashTexts(texts, DEFAULT_FEATURES), texts.length);
    const pool = new ScorePool(DEFAULT_FEATURES, members, 1);
    const onWorker: number[] = [];
    const counted: BatchScorer = {
      threads: pool.threads,
      scoreOn: (index, batch) => {
        onWorker.push(batch.length);
        return pool.scoreOn(index, batch);
      },
    };
    const shares = { own: 0, workers: 0 };
    try {
      assertSameProbs(await scoreOnThreads(counted, members, DEFAULT_FEATURES, texts, 1000, shares), want, 'this thread and a worker');
    } finally {
      await pool.close();
    }
    // Every row taken once: a row scored twice would be counted twice (its values would not show it).
    assert.equal(shares.own + shares.workers, texts.length, `this thread ${shares.own} + the worker ${shares.workers} rows`);
    assert.equal(shares.workers, onWorker.reduce((a, b) => a + b, 0));
    assert.ok(shares.own > 0 && shares.workers > 0, `both threads should have scored rows: this thread ${shares.own}, the worker ${shares.workers}`);
    assert.ok(Math.max(...onWorker) <= 1000, 'no batch above the size asked for');
  });

  it('a starting worker is handed one small batch, and more only once it has answered', async () => {
    const S = 2;
    const members = newLinearMembers(DEFAULT_FEATURES.buckets, S);
    members.biases.set([0.25, -0.5]);
    const texts = Array.from({ length: 12000 }, (_, i) => `row ${i} with words w${i % 97} w${(i * 5) % 131}`);
    const want = scoreLinear(members, hashTexts(texts, DEFAULT_FEATURES), texts.length);
    const pool = new ScorePool(DEFAULT_FEATURES, members, 1);
    // The worker's first answer is held back 300 ms, as a worker that is still starting: meanwhile it must
    // not be handed a second batch, nor a first one larger than the smallest batch.
    const events: string[] = [];
    let requests = 0;
    const slowStart: BatchScorer = {
      threads: pool.threads,
      scoreOn: async (index, batch) => {
        const k = ++requests;
        events.push(`request ${k} (${batch.length} rows)`);
        const probs = await pool.scoreOn(index, batch);
        if (k === 1) await new Promise((r) => setTimeout(r, 300));
        events.push(`answer ${k}`);
        return probs;
      },
    };
    const shares = { own: 0, workers: 0 };
    try {
      assertSameProbs(await scoreOnThreads(slowStart, members, DEFAULT_FEATURES, texts, 4096, shares), want, 'this thread and a slow-starting worker');
    } finally {
      await pool.close();
    }
    assert.match(events[0] ?? '', /^request 1 \((\d+) rows\)$/);
    assert.ok(Number(/\((\d+) rows\)/.exec(events[0]!)![1]) <= 256, `first batch: ${events[0]}`);
    assert.equal(events[1], 'answer 1', `a second batch went to the worker before it answered the first: ${events.slice(0, 4).join(', ')}`);
    assert.equal(shares.own + shares.workers, texts.length);
  });

  it('a worker that has answered before (a resident pool) gets full batches from the first request', async () => {
    const members = newLinearMembers(DEFAULT_FEATURES.buckets, 2);
    const texts = Array.from({ length: 12000 }, (_, i) => `row ${i} with words w${i % 97}`);
    const want = scoreLinear(members, hashTexts(texts, DEFAULT_FEATURES), texts.length);
    const pool = new ScorePool(DEFAULT_FEATURES, members, 1);
    const sizes: number[] = [];
    const started: BatchScorer = { threads: pool.threads, answered: () => true, scoreOn: (index, batch) => (sizes.push(batch.length), pool.scoreOn(index, batch)) };
    try {
      assertSameProbs(await scoreOnThreads(started, members, DEFAULT_FEATURES, texts, 4096), want, 'this thread and a started worker');
    } finally {
      await pool.close();
    }
    assert.ok(sizes.length >= 2 && sizes[0]! > 256 && sizes[1]! > 256, `batches handed to a started worker: ${sizes.join(', ')}`);
  });

  it("a worker's failure ends the prediction with the worker's error, and this thread stops scoring", async () => {
    const members = newLinearMembers(DEFAULT_FEATURES.buckets, 2);
    const failing = new RequestPool<Omit<FailRequest, 'id'>, FailReply>(new URL('./fixtures/failingWorker.js', import.meta.url), 2);
    const scorer: BatchScorer = { threads: failing.size, scoreOn: async (index) => (await failing.requestOn(index, { kind: 'sisa' }), new Float32Array(0)) };
    const texts = Array.from({ length: 200000 }, (_, i) => `text ${i} with a few more words than that`);
    const shares = { own: 0, workers: 0 };
    try {
      const err = await scoreOnThreads(scorer, members, DEFAULT_FEATURES, texts, 4096, shares).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(err instanceof SisaError, `got ${String(err)}`);
      assert.equal(err.message, 'the kernel is missing');
      // The failure comes back within the workers' start-up; this thread would need seconds for every row.
      assert.ok(shares.own < texts.length / 2, `this thread went on scoring ${shares.own} of ${texts.length} rows after the failure`);
    } finally {
      await failing.close();
    }
  });

  it('a worker that answers with the wrong number of probabilities is an error, not zeros', async () => {
    const members = newLinearMembers(DEFAULT_FEATURES.buckets, 3);
    const short: BatchScorer = { threads: 1, scoreOn: async (_index, batch) => new Float32Array(3 * batch.length - 1) };
    const texts = Array.from({ length: 5000 }, (_, i) => `text ${i}`);
    await assert.rejects(scoreOnThreads(short, members, DEFAULT_FEATURES, texts, 1024), /a scoring worker returned \d+ probabilities for \d+ rows of 3 models/);
  });

  it('a worker stopped in the middle of a batch does not keep its region', async () => {
    const members = newLinearMembers(DEFAULT_FEATURES.buckets, 2);
    members.biases.set([0.5, -0.5]);
    const texts = Array.from({ length: 40000 }, (_, i) => `a longer text number ${i} with some words w${i % 977} and more w${i % 31} words`);
    const start = members.memory!.buffer.byteLength;
    const pool = new ScorePool(DEFAULT_FEATURES, members, 2);
    const pending = [pool.scoreOn(0, texts), pool.scoreOn(1, texts)];
    pending.forEach((p) => p.catch(() => undefined));
    // Close as soon as a worker has taken a region (the memory grew): both are then scoring 40,000 texts.
    const deadline = Date.now() + 30000;
    while (members.memory!.buffer.byteLength === start && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
    assert.ok(members.memory!.buffer.byteLength > start, 'a worker took a region');
    await pool.close();
    assert.equal(heldScoringRegions(members), 0);
  });

  /**
   * `sisa predict` on a workspace trained with `trainArgs` at 1,024 buckets whose manifest was then edited
   * to say 2,048 (a damaged or hand-edited workspace): its exit code and stderr.
   */
  async function predictWithWrongBuckets(trainArgs: string[]): Promise<{ code: number; stderr: string }> {
    const dir = await tempDir();
    try {
      const corpus = await makeCorpus(dir, { rows: 300 });
      const ws = path.join(dir, 'ws');
      await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '2', '--slices', '1', '--buckets', '1024']);
      await cliJson(['train', '--workdir', ws, '--epochs', '1', ...trainArgs]);
      const statePath = path.join(ws, 'manifests', 'state.json');
      const state = JSON.parse(await fsp.readFile(statePath, 'utf8'));
      state.config.features.buckets = 2048;
      await fsp.writeFile(statePath, JSON.stringify(state));
      return await runCli(['predict', corpus, '--workdir', ws]);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }

  it('a model of another size than the workspace\'s buckets is refused in one line, not read past its end', async () => {
    const r = await predictWithWrongBuckets([]);
    assert.notEqual(r.code, 0, 'predict must refuse the workspace');
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /the model of shard \d+ has 1024 weights, but the workspace hashes texts into 2048 buckets/);
  });

  it('a hidden-layer model of another size than the workspace\'s buckets is refused in one line, not scored as NaN', async () => {
    // Its scoring read undefined past the embedding's end: NaN probabilities, every row labelled not toxic.
    const r = await predictWithWrongBuckets(['--hidden', '4']);
    assert.notEqual(r.code, 0, 'predict must refuse the workspace');
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /the model of shard \d+ has an embedding of 4096 values \(4 per bucket\), but the workspace hashes texts into 2048 buckets/);
  });
});

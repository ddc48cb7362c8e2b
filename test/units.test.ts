/** Pure functions: feature hashing, placement, metrics, checkpoints, with property tests where an invariant exists. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { beginPowerLossLog, listDirBeforeSync, noteDirSynced, noteFileSynced, simulatePowerLoss } from '../src/util/powerLoss.js';
import { tempDir } from './helpers.js';
import { placeRecord } from '../src/data/assign.js';
import { filterRows, RowsBuilder, sliceHashes } from '../src/data/shardFile.js';
import { DEFAULT_FEATURES, hashText, tokenize } from '../src/features/hashing.js';
import { rocAuc } from '../src/util/metrics.js';
import { decodeCheckpoint, densify, encodeCheckpoint, paramsHash, sparseBlob } from '../src/models/checkpoint.js';
import { aggregate } from '../src/models/ensemble.js';
import { termMatcher } from '../src/data/groups.js';
import { RequestPool } from '../src/util/workerPool.js';
import { exitCodeFor, SisaError, systemErrorMessage } from '../src/util/errors.js';
import { groupThousands, printable } from '../src/util/format.js';
import { adoptKernels, compileKernel, compiledKernels } from '../src/util/wasm.js';
import { hashingKernel } from '../src/features/hashKernel.js';
import type { FailReply, FailRequest } from './fixtures/failingWorker.js';

describe('feature hashing', () => {
  it('tokenises social-media text: entities decoded, mentions and URLs collapsed', () => {
    assert.deepEqual(tokenize('RT @bob: You &amp; me https://t.co/x DON’T'), ['rt', 'xxuser', 'you', 'me', 'xxurl', 'don’t']);
  });
  it('is deterministic, sorted, in range and l2-normalised', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        const a = hashText(text, DEFAULT_FEATURES);
        const b = hashText(text, DEFAULT_FEATURES);
        assert.deepEqual(a, b);
        for (let i = 1; i < a.indices.length; i++) assert.ok(a.indices[i]! > a.indices[i - 1]!);
        for (const x of a.indices) assert.ok(x >= 0 && x < DEFAULT_FEATURES.buckets);
        const norm = Math.sqrt(a.values.reduce((s, v) => s + v * v, 0));
        assert.ok(a.indices.length === 0 || Math.abs(norm - 1) < 1e-5);
      }),
    );
  });
});

describe('placement', () => {
  const cfg = { seed: 7, test: 0.2, calibration: 0.1, shards: 5, slices: 3 };
  it('places every id in exactly one split or (shard, slice), the same way every time', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }), fc.integer(), (id, seed) => {
        const c = { ...cfg, seed };
        const p = placeRecord(id, c);
        assert.deepEqual(placeRecord(id, c), p);
        if (p.split === 'train') {
          assert.ok(Number.isInteger(p.shard) && p.shard >= 0 && p.shard < c.shards);
          assert.ok(Number.isInteger(p.slice) && p.slice >= 0 && p.slice < c.slices);
        }
      }),
    );
  });
  it('splits near the requested fractions and spreads shards evenly', () => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 20000; i++) {
      const p = placeRecord(`r${i}`, cfg);
      const k = p.split === 'train' ? `s${p.shard}` : p.split;
      counts[k] = (counts[k] ?? 0) + 1;
    }
    assert.ok(Math.abs(counts.test! / 20000 - 0.2) < 0.015);
    assert.ok(Math.abs(counts.calibration! / 20000 - 0.1) < 0.015);
    for (let s = 0; s < 5; s++) assert.ok(Math.abs(counts[`s${s}`]! / 20000 - 0.14) < 0.015);
  });
});

describe('rows', () => {
  const build = (ids: string[]) => {
    const b = new RowsBuilder(['any']);
    ids.forEach((id, i) => b.push({ id, text: `t${id}`, label: i % 2, slice: i % 3, indices: [i, i + 1], values: [0.5, 0.5], groups: { any: i % 2 } }));
    return b.take();
  };
  it('removing records changes only the hashes of the slices that held them', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 999 }), { minLength: 3, maxLength: 60 }), fc.nat(), (nums, pick) => {
        const rows = build(nums.map(String));
        const victim = pick % rows.ids.length;
        const kept = filterRows(rows, (i) => i !== victim);
        assert.equal(kept.ids.length, rows.ids.length - 1);
        const before = sliceHashes(rows, 3);
        const after = sliceHashes(kept, 3);
        for (let s = 0; s < 3; s++) {
          if (s === rows.slices[victim]) assert.notEqual(after[s]!.hash, before[s]!.hash);
          else assert.deepEqual(after[s], before[s]);
        }
      }),
    );
  });
});

describe('metrics', () => {
  it('ROC AUC matches hand-computed values, ties counted as half', () => {
    assert.equal(rocAuc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 0.75);
    assert.equal(rocAuc([0, 1], [0.5, 0.5]), 0.5);
    assert.equal(rocAuc([1, 1, 0], [0.9, 0.8, 0.1]), 1);
    assert.ok(Number.isNaN(rocAuc([1, 1], [0.2, 0.3])));
  });
  it('aggregates by vote (ties positive) and by mean', () => {
    const probs = [Float32Array.from([0.75, 0.2, 0.625]), Float32Array.from([0.25, 0.3, 0.375])];
    const v = aggregate(probs, 'vote');
    assert.deepEqual([...v.score], [0.5, 0, 0.5]);
    assert.deepEqual([...v.label], [1, 0, 1]);
    const m = aggregate(probs, 'mean');
    assert.deepEqual([...m.label], [1, 0, 1]);
    assert.ok(Math.abs(m.score[1]! - 0.25) < 1e-6);
  });
});

describe('checkpoints', () => {
  it('round-trips parameters and optimiser state exactly', () => {
    fc.assert(
      fc.property(fc.float32Array({ minLength: 1, maxLength: 50, noNaN: true }), fc.nat(), (w, step) => {
        const c = { meta: { shard: 1, slice: 2, buckets: w.length, hidden: 0, step }, params: [{ name: 'w', data: w }], optimizer: [{ name: 'acc:w', data: w.map((x) => x * x) }] };
        const d = decodeCheckpoint(encodeCheckpoint(c));
        assert.deepEqual(d, c);
        assert.equal(paramsHash(d.params), paramsHash(c.params));
      }),
    );
  });
  it('stores a mostly untouched tensor sparse and round-trips it bit for bit (−0, NaN, shared indices, kernel id)', () => {
    const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    const odd = fc.oneof(fc.float({ noNaN: false }), fc.constant(-0), fc.constant(0), fc.constant(Math.fround(0.1)));
    fc.assert(
      fc.property(fc.integer({ min: 64, max: 5000 }), fc.array(fc.tuple(fc.nat(), odd), { maxLength: 40 }), (n, touched) => {
        const w = new Float32Array(n);
        const acc = new Float32Array(n).fill(0.1);
        for (const [i, v] of touched) {
          w[i % n] = v;
          acc[i % n] = v * v + 0.5;
        }
        const c = { meta: { shard: 0, slice: 1, buckets: n, hidden: 0, step: 3, kernel: { name: 'fused-linear', version: 1 } }, params: [{ name: 'w', data: w }], optimizer: [{ name: 'acc:w', data: acc }] };
        const bytes = encodeCheckpoint(c);
        const d = decodeCheckpoint(bytes);
        assert.deepEqual(d.meta, c.meta);
        assert.ok(bits(d.params[0]!.data).equals(bits(w)), 'weights bit-identical');
        assert.ok(bits(d.optimizer[0]!.data).equals(bits(acc)), 'accumulator bit-identical');
        if (n >= 1000) assert.ok(bytes.length < n * 4, `sparse: ${bytes.length} bytes for ${n} coordinates × 2 tensors`);
      }),
    );
  });
  it('encodes a tensor handed on sparse to the very bytes of its dense form', () => {
    // The fused kernel hands checkpoints on as listed coordinates; their files (and so their content
    // hashes) must not depend on that. Listed values may equal the fill, be −0 or NaN; the fill may be
    // the sampled background or not (a mostly touched tensor); two tensors may share their coordinates.
    const value = fc.oneof(fc.float({ noNaN: false }), fc.constant(-0), fc.constant(0), fc.constant(Math.fround(0.1)), fc.constant(1));
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3000 }),
        fc.oneof(fc.constant(0), fc.constant(-0), fc.constant(0.1), fc.constant(1)),
        fc.array(fc.tuple(fc.nat(), value, value), { maxLength: 120 }),
        fc.boolean(),
        fc.boolean(),
        (n, fill, entries, dense, tied) => {
          // Ascending distinct coordinates; `dense` lists every coordinate (then the sampled fill decides).
          const byIndex = new Map<number, [number, number]>();
          if (dense) for (let i = 0; i < n; i++) byIndex.set(i, [i % 7 === 0 ? fill : i / 3, fill]);
          for (const [i, v, a] of entries) byIndex.set(i % n, [v, a]);
          // `tied`: an accumulator leaves its initial value where its weight leaves the fill (as in
          // training), so both tensors keep the same coordinates.
          const f32bits = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0];
          if (tied) for (const [i, [v]] of byIndex) byIndex.set(i, [v, f32bits(v) === f32bits(fill) ? 0.1 : 0.25]);
          const indices = Int32Array.from([...byIndex.keys()].sort((x, y) => x - y));
          const wValues = Float32Array.from(indices, (i) => byIndex.get(i)![0]);
          const accValues = Float32Array.from(indices, (i) => byIndex.get(i)![1]);
          const w = { length: n, fill, indices, values: wValues };
          const acc = { length: n, fill: Math.fround(0.1), indices, values: accValues };
          const meta = { shard: 3, slice: 0, buckets: n, hidden: 0, step: 7, kernel: { name: 'fused-linear', version: 1 } };
          const sparse = encodeCheckpoint({ meta, params: [sparseBlob('w', w), { name: 'b', data: Float32Array.of(0.5) }], optimizer: [sparseBlob('acc:w', acc)] });
          // The dense forms built here, coordinate by coordinate, not by densify().
          const denseW = new Float32Array(n).fill(fill);
          const denseAcc = new Float32Array(n).fill(0.1);
          for (const [i, [v, a]] of byIndex) {
            denseW[i] = v;
            denseAcc[i] = a;
          }
          const asDense = encodeCheckpoint({ meta, params: [{ name: 'w', data: denseW }, { name: 'b', data: Float32Array.of(0.5) }], optimizer: [{ name: 'acc:w', data: denseAcc }] });
          assert.ok(Buffer.from(sparse).equals(Buffer.from(asDense)), 'same bytes');
          // Listed `exact` (only the coordinates that differ from the fill, bit for bit, as the fused
          // kernel lists them; one shared array when both tensors keep the same ones): the same bytes.
          const differs = (t: { fill: number; values: Float32Array }) => (_: number, k: number) => f32bits(t.values[k]!) !== f32bits(t.fill);
          const keepW = [...indices].map(differs(w));
          const keepAcc = [...indices].map(differs(acc));
          const exactOf = (t: { length: number; fill: number; indices: Int32Array; values: Float32Array }, keep: boolean[], shared?: Int32Array) => ({
            ...t,
            indices: shared ?? indices.filter((_, k) => keep[k]),
            values: t.values.filter((_, k) => keep[k]),
            exact: true,
          });
          const exactW = exactOf(w, keepW);
          const exactAcc = exactOf(acc, keepAcc, keepW.every((k, i) => k === keepAcc[i]) ? exactW.indices : undefined);
          const exact = encodeCheckpoint({ meta, params: [sparseBlob('w', exactW), { name: 'b', data: Float32Array.of(0.5) }], optimizer: [sparseBlob('acc:w', exactAcc)] });
          assert.ok(Buffer.from(exact).equals(Buffer.from(asDense)), 'same bytes from exact lists');
          assert.ok(Buffer.from(densify(w).buffer).equals(Buffer.from(denseW.buffer)), 'densify gives the dense form');
          assert.equal(paramsHash([sparseBlob('w', w)]), paramsHash([{ name: 'w', data: denseW }]));
        },
      ),
      { numRuns: 300 },
    );
  });
  it('still reads v1 (dense) checkpoints', () => {
    const w = Float32Array.from([1, -2, 0, 3.5]);
    const header = new TextEncoder().encode(JSON.stringify({ shard: 2, slice: 0, buckets: 4, hidden: 0, step: 9, tensors: [{ name: 'w', kind: 'param', length: 4 }] }));
    const start = Math.ceil((12 + header.length) / 4) * 4;
    const bytes = new Uint8Array(start + 16);
    bytes.set(new TextEncoder().encode('SISACKP1'));
    new DataView(bytes.buffer).setUint32(8, header.length, true);
    bytes.set(header, 12);
    bytes.set(new Uint8Array(w.buffer), start);
    assert.deepEqual(decodeCheckpoint(bytes), { meta: { shard: 2, slice: 0, buckets: 4, hidden: 0, step: 9 }, params: [{ name: 'w', data: w }], optimizer: [] });
  });
});

describe('compiled kernels', () => {
  it('are compiled once per thread, listed for workers, and a handed-over module is used without reading its file', () => {
    const module = hashingKernel();
    assert.equal(hashingKernel(), module, 'compiled once');
    const listed = Object.entries(compiledKernels());
    assert.ok(listed.some(([href, m]) => href.endsWith('/hashing.wasm') && m === module), 'the compiled kernel is listed');
    const absent = new URL('file:///nowhere/sisa-kernel-that-is-not-there.wasm');
    assert.throws(() => compileKernel(absent, 'test'), (e: unknown) => e instanceof SisaError && e.code === 'BACKEND' && /missing or damaged/.test(e.message));
    adoptKernels({ [absent.href]: module });
    assert.equal(compileKernel(absent, 'test'), module);
  });
});

describe('number output', () => {
  it("groups an integer's digits in threes exactly as toLocaleString('en-US') does (without loading ICU)", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer(),
          fc.maxSafeInteger(),
          // whole numbers beyond 2^53, where the exact binary value's digits and the shortest round-trip digits differ
          fc.double({ min: -1e21, max: 1e21, noNaN: true }).map(Math.round).filter((x) => Math.abs(x) < 1e21),
          fc.constantFrom(0, -0, 999, 1000, -1000, 999_999, 1_000_000, 2 ** 53, -(2 ** 53), 1e20, 6356893632637609000),
        ),
        (n) => {
          assert.equal(groupThousands(n), n.toLocaleString('en-US'));
        },
      ),
      { numRuns: 5000 },
    );
  });
});

describe('input values in messages (printable)', () => {
  const unsafe = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
  it('holds no control, line-breaking or bidi character, cuts at max without splitting a surrogate pair, and leaves a short plain value as it is', () => {
    // Units mixed in so that every class the function escapes turns up often: bidi controls, C1, line
    // separators, a surrogate pair, a backslash before text that looks like an escape.
    const special = fc.constantFrom('\u202e', '\u2066', '\u0085', '\u2028', '\u001b', '\ud83d\ude00', '\\', '\\u0041');
    const mixed = fc.array(fc.oneof(special, fc.string({ unit: 'binary', maxLength: 4 })), { maxLength: 30 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 80 }), mixed), fc.integer({ min: 1, max: 70 }), (s, max) => {
        const shown = printable(s, max);
        assert.doesNotMatch(shown, unsafe);
        const kept = shown.endsWith('…') && s.length > max ? shown.slice(0, -1) : shown;
        // Whatever was kept reads back as a prefix of the value once the escapes are undone.
        const undone = kept.replace(/\\(\\|u([0-9a-f]{4}))/g, (_, e: string, h?: string) => (e === '\\' ? '\\' : String.fromCharCode(parseInt(h!, 16))));
        assert.ok(s.startsWith(undone), `${JSON.stringify(s)} → ${JSON.stringify(shown)}`);
        if (s.length > max) {
          assert.ok(undone.length === max || undone.length === max - 1, 'cut at max (one less before a surrogate pair)');
          assert.doesNotMatch(undone.slice(-1), /[\ud800-\udbff]/, 'no half pair at the cut');
        } else if (!unsafe.test(s) && !s.includes('\\')) assert.equal(shown, s);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('sensitive terms', () => {
  it('match whole words and phrases, case-insensitively', () => {
    const m = termMatcher(['gay', 'old people', 'non-binary']);
    assert.ok(m('Being GAY is fine'));
    assert.ok(m('some old   people here'));
    assert.ok(m('a non-binary friend'));
    assert.ok(!m('gayety and bold peoples'));
    assert.ok(!m('nothing here'));
  });
});

describe('worker pool', () => {
  it('warm(n) starts n workers and returns (it looped forever for n >= 2: each pass took back the worker it had just started)', () => {
    // In a child process with a time limit: the bug was a synchronous loop, which no test timeout stops.
    const pool = new URL('../src/orchestration/pool.js', import.meta.url).href;
    const script = `const { WorkerPool } = await import(${JSON.stringify(pool)}); const p = new WorkerPool(2, 'cpu'); p.warm(2); await p.close(); console.log('ok');`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
    assert.equal(r.signal, null, 'warm(2) did not return within 60 s');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'ok');
  });
});

describe('request pool', () => {
  it('a request that fails in the worker rejects with the same SisaError, system error code or message, and the worker goes on answering', async () => {
    const pool = new RequestPool<Omit<FailRequest, 'id'>, FailReply>(new URL('./fixtures/failingWorker.js', import.meta.url), 1);
    try {
      const sisa = await pool.request({ kind: 'sisa' }).catch((e: unknown) => e);
      assert.ok(sisa instanceof SisaError, `got ${String(sisa)}`);
      assert.equal(sisa.code, 'BACKEND');
      assert.equal(sisa.message, 'the kernel is missing');
      assert.equal(sisa.journalNote, 'kernel missing');
      assert.equal(exitCodeFor(sisa), exitCodeFor(new SisaError('BACKEND', 'x')));
      const system = (await pool.request({ kind: 'system' }).catch((e: unknown) => e)) as NodeJS.ErrnoException;
      assert.equal(system.code, 'ENOSPC');
      assert.match(systemErrorMessage(system) ?? '', /no space left on device/);
      const plain = (await pool.request({ kind: 'plain' }).catch((e: unknown) => e)) as Error;
      assert.equal(plain.message, 'a bug');
      assert.match(plain.stack ?? '', /failingWorker/, 'the worker-side stack is kept for a bug report');
      assert.equal(((await pool.request({ kind: 'string' }).catch((e: unknown) => e)) as Error).message, 'a string');
      assert.match(((await pool.request({ kind: 'null-proto' }).catch((e: unknown) => e)) as Error).message, /not an Error/);
      assert.deepEqual(await pool.request({ kind: 'ok' }), { id: 6, ok: true });
    } finally {
      await pool.close();
    }
  });
});

/**
 * Runs `body` in a child process that has `pool`, a RequestPool of `threads` fixture workers, and `said(p)`,
 * which says how a request settled; returns what the body printed, parsed. In a child process with a time
 * limit: the failures these tests guard against are requests that never settle, which would leave the
 * pool's threads running and the test process with them.
 */
async function inPoolProcess(threads: number, body: string): Promise<Record<string, string | boolean>> {
  const dir = await tempDir();
  try {
    const script = path.join(dir, 'pool.mjs');
    const lib = new URL('../src/util/workerPool.js', import.meta.url).href;
    const worker = new URL('./fixtures/failingWorker.js', import.meta.url).href;
    await fsp.writeFile(
      script,
      `const { RequestPool } = await import(${JSON.stringify(lib)});
const pool = new RequestPool(new URL(${JSON.stringify(worker)}), ${threads});
const said = (p) => p.then((r) => 'answered ' + JSON.stringify(r), (e) => 'rejected: ' + e.message);
${body}`,
    );
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' });
    assert.equal(r.signal, null, `a request was still waiting after 30 s; the process printed: ${r.stdout}`);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as Record<string, string | boolean>;
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

const ANSWERED = /^answered \{"id":\d+,"ok":true\}$/;

describe('request pool, a worker that stops', () => {
  it('a worker that exits without an error rejects its requests and any later ones, instead of leaving them waiting for good', async () => {
    const out = await inPoolProcess(
      2,
      `const queued = said(pool.requestOn(0, { kind: 'ok' }));
const busy = said(pool.requestOn(1, { kind: 'slow' })); // waiting on the other worker while the first exits
const exited = await said(pool.requestOn(0, { kind: 'exit' }));
const out = { queued: await queued, exited, later: await said(pool.requestOn(0, { kind: 'ok' })), busy: await busy, other: await said(pool.requestOn(1, { kind: 'ok' })) };
await pool.close();
out.closed = await said(pool.requestOn(1, { kind: 'ok' }));
console.log(JSON.stringify(out));`,
    );
    assert.equal(out.queued, 'answered {"id":1,"ok":true}', 'a request answered before the exit keeps its answer');
    assert.match(String(out.exited), /^rejected: a worker thread stopped \(exit code 3\)/);
    assert.match(String(out.later), /^rejected: a worker thread stopped \(exit code 3\)/, 'a later request to it is refused at once');
    assert.match(String(out.busy), ANSWERED, "a request waiting on the other worker is not rejected with the first one's");
    assert.match(String(out.other), ANSWERED, 'the other worker still answers');
    assert.equal(out.closed, 'rejected: the worker pool is closed', 'a request after close is refused, not left waiting');
  });

  it('a worker that dies of an uncaught error rejects its own requests, not those another worker is answering', async () => {
    const out = await inPoolProcess(
      2,
      `const busy = said(pool.requestOn(1, { kind: 'slow' })); // waiting on the other worker while the first dies
const crashed = await said(pool.requestOn(0, { kind: 'crash' }));
const out = { crashed, later: await said(pool.requestOn(0, { kind: 'ok' })), busy: await busy, other: await said(pool.requestOn(1, { kind: 'ok' })), healthy: pool.healthy() };
await pool.close();
console.log(JSON.stringify(out));`,
    );
    assert.equal(out.crashed, 'rejected: an uncaught bug');
    assert.equal(out.later, 'rejected: an uncaught bug', 'a later request to it is refused with the cause');
    assert.match(String(out.busy), ANSWERED, "a request the other worker was answering is not rejected with the first one's error");
    assert.match(String(out.other), ANSWERED, 'the other worker still answers');
    assert.equal(out.healthy, false, 'a pool with a stopped worker is not healthy');
  });

  it('close() rejects the requests still waiting, instead of leaving their callers waiting for good', async () => {
    // A pool shared by several callers (a resident Predictor's) can be closed under a request another one waits on.
    const out = await inPoolProcess(
      1,
      `const running = said(pool.requestOn(0, { kind: 'slow' })); // the worker is busy with it (half a second)
const queued = said(pool.requestOn(0, { kind: 'ok' })); // sent, waiting behind it
const healthyBefore = pool.healthy();
await pool.close();
console.log(JSON.stringify({ running: await running, queued: await queued, healthyBefore, healthyAfter: pool.healthy() }));`,
    );
    assert.deepEqual(out, { running: 'rejected: the worker pool is closed', queued: 'rejected: the worker pool is closed', healthyBefore: true, healthyAfter: false });
  });
});

describe('power-loss simulator', () => {
  it("a directory's durable entries are those of its latest listing, even when that listing's fsync is recorded first", async () => {
    // Two checkpoints stored at once: each renames its file in, lists the folder and fsyncs it; the fsync
    // of the earlier listing (without the second file) may complete last. CI's crash suite dropped a
    // committed checkpoint that way (a simulator error: the second fsync had made it durable).
    const root = await tempDir();
    const logDir = await tempDir();
    const ws = path.join(root, 'ws');
    await fsp.mkdir(ws);
    const env = beginPowerLossLog(ws, logDir);
    const saved = process.env.SISA_POWER_LOSS_LOG;
    process.env.SISA_POWER_LOSS_LOG = env.SISA_POWER_LOSS_LOG;
    try {
      await fsp.writeFile(path.join(ws, 'a.ckpt'), 'A');
      noteFileSynced(path.join(ws, 'a.ckpt'));
      const first = listDirBeforeSync(ws);
      await fsp.writeFile(path.join(ws, 'b.ckpt'), 'B');
      noteFileSynced(path.join(ws, 'b.ckpt'));
      const second = listDirBeforeSync(ws);
      noteDirSynced(second);
      noteDirSynced(first);
    } finally {
      if (saved === undefined) delete process.env.SISA_POWER_LOSS_LOG;
      else process.env.SISA_POWER_LOSS_LOG = saved;
    }
    const effect = simulatePowerLoss(ws, logDir);
    assert.deepEqual(effect, { dropped: [], revived: [], reverted: [] });
    assert.equal(await fsp.readFile(path.join(ws, 'b.ckpt'), 'utf8'), 'B');
    // Not vacuous: a file renamed in after the latest listing is still forgotten.
    await fsp.writeFile(path.join(ws, 'c.ckpt'), 'C');
    assert.deepEqual(simulatePowerLoss(ws, logDir).dropped, ['c.ckpt']);
  });
});

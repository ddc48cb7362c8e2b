// Engine speed and workspace size (issue 10): the compact shard feature column.
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { readRowsFile, RowsBuilder, writeRowsFile, type Rows } from '../src/data/shardFile.js';
import { DEFAULT_FEATURES, hashText } from '../src/features/hashing.js';
import { makeCorpus, runCli, tempDir } from './helpers.js';

function bytesOf(a: Int32Array | Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function assertSameRows(got: Rows, want: Rows): void {
  assert.deepEqual(got.ids, want.ids);
  assert.deepEqual(got.texts, want.texts);
  assert.deepEqual(Array.from(got.offsets), Array.from(want.offsets));
  assert.ok(bytesOf(got.indices).equals(bytesOf(want.indices)), 'indices differ');
  // Bit for bit: the kernel's results depend on every bit of the stored values.
  assert.ok(bytesOf(got.values).equals(bytesOf(want.values)), 'values differ');
}

describe('shard file features', () => {
  it('round-trip bit for bit: hashed texts, and rows whose values are not normalised counts', async () => {
    const dir = await tempDir();
    const text = fc.string({ unit: fc.constantFrom('a', 'b', 'c', ' ', 'ab ', 'é', '😀', '&amp;', '\n'), maxLength: 80 });
    const odd = fc.record({
      indices: fc.array(fc.integer({ min: 0, max: (1 << 24) - 1 }), { maxLength: 12 }),
      values: fc.array(fc.float({ noNaN: true }), { minLength: 12, maxLength: 12 }),
    });
    const row = fc.oneof(text.map((t) => ({ text: t, odd: null })), odd.map((o) => ({ text: 'x', odd: o })));
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(row, { maxLength: 30 }), async (rs) => {
        const b = new RowsBuilder([]);
        rs.forEach((r, i) => {
          const f = r.odd
            ? { indices: Int32Array.from(r.odd.indices), values: Float32Array.from(r.odd.values.slice(0, r.odd.indices.length)) }
            : hashText(r.text, DEFAULT_FEATURES);
          b.push({ id: `r${i}`, text: r.text, label: i % 2, slice: 0, indices: f.indices, values: f.values, groups: {} });
        });
        const rows = b.take();
        const written = await writeRowsFile(dir, `p${n++}`, rows, []);
        assertSameRows(await readRowsFile(path.join(dir, written.file), written.sha256), rows);
      }),
      { numRuns: 60 },
    );
  });

  it('shard files of an ingest are at most 6x the input CSV (17.5x with two float/int list columns, 5.4x now)', async () => {
    const dir = await tempDir();
    const csv = await makeCorpus(dir);
    const ws = path.join(dir, 'ws');
    const r = await runCli(['ingest', csv, '--workdir', ws, '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    let total = 0;
    for (const f of await fsp.readdir(path.join(ws, 'shards'))) if (f.endsWith('.arrow')) total += (await fsp.stat(path.join(ws, 'shards', f))).size;
    const input = (await fsp.stat(csv)).size;
    assert.ok(total <= 6 * input, `shard files ${total} bytes = ${(total / input).toFixed(2)} x the input ${input}`);
  });
});

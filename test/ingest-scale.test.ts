/**
 * The parts of ingest that were rewritten for million-row inputs: the CSV parsed on a worker thread,
 * id hashing without string building, duplicate detection without a Map of strings, and slice hashes
 * fed many records at a time. Each is checked against the plain, obviously right version.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parse as parseCsvSync } from 'csv-parse/sync';
import { readCsvRecordBatches } from '../src/data/csvReader.js';
import { readRecordBatches } from '../src/data/readers.js';
import { readRowsFile, sliceHashes } from '../src/data/shardFile.js';
import { FIRST_SEEN_SEED, FirstSeen } from '../src/util/firstSeen.js';
import { hashUnit, murmur3, murmur3Bytes, murmur3Units } from '../src/util/rng.js';
import { cliJson, makeCorpus, readState, runCli, tempDir } from './helpers.js';

/** Every record of a reader that yields batches, in order. */
async function collect<T>(batches: AsyncIterable<T[]>): Promise<T[]> {
  const out: T[] = [];
  for await (const batch of batches) for (const x of batch) out.push(x);
  return out;
}

/** The records of a reader that yields batches, one at a time (a consumer can stop after any of them). */
async function* records<T>(batches: AsyncIterable<T[]>): AsyncGenerator<T> {
  for await (const batch of batches) yield* batch;
}

describe('CSV parsed on a worker thread', () => {
  it('gives the same records, rows, lines and errors as the reader on this thread, across many batches', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'mixed.csv');
    const lines = ['id,text,label'];
    for (let i = 1; i <= 9000; i++) {
      if (i % 1000 === 0) lines.push(`${i},"a stray "quote" here",1`); // does not parse
      else if (i % 777 === 0) lines.push(`${i},too,many,fields`); // wrong field count
      else if (i % 500 === 0) lines.push(`${i},"two\nlines, one field",0`); // a row spanning lines
      else lines.push(`${i},text number ${i} é ✓,${i % 2}`);
    }
    await writeFile(file, lines.join('\r\n') + '\n');
    const here = await collect(readCsvRecordBatches(file));
    const offThread = await collect(readRecordBatches(file, 'csv'));
    assert.ok(here.length > 8000 && here.some((r) => r.error !== undefined));
    assert.deepEqual(offThread, here);
  });

  it("parses every row as csv-parse's columns option did (the reader takes arrays and builds the fields itself)", async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'random.csv');
    // Pieces that make quoted fields, stray quotes, short and long rows, CR LF, a repeated column name.
    const piece = fc.constantFrom('a', 'b c', ',', '"', '""', '\n', '\r\n', 'é', '', '__proto__', ' x ');
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { maxLength: 80 }), async (parts) => {
        const text = 'id, text ,id\n' + parts.join('');
        await writeFile(file, text);
        const got = await collect(readCsvRecordBatches(file));
        // The reference: csv-parse itself with a columns function, skipping rows with errors.
        let skippedRows = 0;
        const want = parseCsvSync(text, {
          columns: (h: string[]) => h.map((x) => x.trim()),
          bom: true,
          skip_empty_lines: true,
          record_delimiter: ['\r\n', '\n'],
          skip_records_with_error: true,
          on_skip: () => void (skippedRows += 1),
        }) as Record<string, string>[];
        assert.deepEqual(
          got.filter((r) => r.error === undefined).map((r) => r.fields),
          want.map((r) => ({ ...r })),
          JSON.stringify(text),
        );
        assert.ok(got.filter((r) => r.error !== undefined).length <= skippedRows, JSON.stringify(text));
        assert.deepEqual(got.map((r) => r.row), got.map((_, i) => i + 1), 'rows numbered 1.. in file order');
      }),
      { numRuns: 300 },
    );
  });

  it('a header that does not parse is refused with one line naming it, even with --skip-invalid', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'header.csv');
    await writeFile(file, 'id,te"xt,label\n1,hello there,0\n2,you idiot,1\n3,fine,0\n');
    const r = await runCli(['ingest', file, '--workdir', path.join(dir, 'w'), '--skip-invalid']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /header\.csv: the header \(line 1\) does not parse as CSV \(Invalid Opening Quote: a quote is found on field 1, value is "te"\); the first line must name the columns/);
    // A quote opened in the header and never closed: csv-parse finds it at the end of the file.
    await writeFile(file, '"id,text,label\n1,hello there,0\n2,you idiot,1\n');
    const open = await runCli(['ingest', file, '--workdir', path.join(dir, 'w2')]);
    assert.equal(open.code, 1);
    assert.match(open.stderr, /header\.csv: the header does not parse as CSV \(a quoted field that starts in it is never closed\); the first line must name the columns/);
  });

  it('keeps a column named __proto__ on the worker thread too, as an own field', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'proto.csv');
    await writeFile(file, 'id,__proto__,text\n1,x,hello\n2,y,world\n');
    const here = await collect(readCsvRecordBatches(file));
    const offThread = await collect(readRecordBatches(file, 'csv'));
    assert.equal(Object.getOwnPropertyDescriptor(here[0]!.fields, '__proto__')?.value, 'x');
    assert.deepEqual(offThread.map((r) => Object.getOwnPropertyDescriptor(r.fields, '__proto__')?.value), ['x', 'y']);
    assert.deepEqual(offThread, here);
  });

  it('stops the worker when the consumer stops early, and the process can exit', async () => {
    const dir = await tempDir();
    const corpus = await makeCorpus(dir, { rows: 20000 });
    let n = 0;
    for await (const _ of records(readRecordBatches(corpus, 'csv'))) if (++n === 10) break;
    assert.equal(n, 10);
    // Through the CLI: an input refused half-way (a duplicate id) ends the process promptly with the error.
    const bad = path.join(dir, 'dup.csv');
    await writeFile(bad, 'id,text,label\n' + Array.from({ length: 6000 }, (_, i) => `${i === 5000 ? 7 : i},t ${i},${i % 2}`).join('\n') + '\n');
    const r = await runCli(['ingest', bad, '--workdir', path.join(dir, 'w')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /duplicate id '7' \(first seen at row 8\)/);
  });

  it('a read error on the worker thread is the same one-line error', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'latin1.csv');
    await writeFile(file, Buffer.concat([Buffer.from('id,text,label\n1,ok,1\n2,caf'), Buffer.from([0xe9]), Buffer.from(',0\n')]));
    const r = await runCli(['ingest', file, '--workdir', path.join(dir, 'w')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /latin1\.csv: invalid UTF-8 in line 3/);
  });
});

describe('ingest bookkeeping at scale', () => {
  it('slice hashes in the state are those of the records in the shard files (digests fed in blocks)', async () => {
    const dir = await tempDir();
    const corpus = await makeCorpus(dir, { rows: 12000 });
    const ws = path.join(dir, 'ws');
    await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '2', '--slices', '3', '--json']);
    const state = await readState(ws);
    for (const s of state.shards) {
      const rows = await readRowsFile(path.join(ws, 'shards', s.file));
      const recomputed = sliceHashes(rows, 3);
      assert.deepEqual(s.slices.map((x: { rows: number; hash: string }) => ({ rows: x.rows, hash: x.hash })), recomputed);
      assert.ok(recomputed.every((x) => x.rows > 1000)); // large enough that every slice was fed in several blocks
    }
  });

  it('murmur3 hashes a string as its UTF-8 bytes, ASCII or not (published test vectors, then any string)', () => {
    const enc = new TextEncoder();
    assert.equal(murmur3('', 0), 0);
    assert.equal(murmur3('', 1), 0x514e28b7);
    assert.equal(murmur3('The quick brown fox jumps over the lazy dog', 0), 0x2e4ff723);
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ maxLength: 12 }), fc.nat(), (key, purpose, seed) => {
        assert.equal(murmur3(key, seed), murmur3Bytes(enc.encode(key), seed));
        assert.equal(hashUnit(seed, purpose, key), murmur3Bytes(enc.encode(`${purpose}\u0000${key}`), seed) / 4294967296);
      }),
      { numRuns: 2000 },
    );
  });

  it('duplicate detection agrees with a Map on any sequence of ids', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 6 }), { maxLength: 3000 }), (ids) => {
        const seen = new FirstSeen();
        const map = new Map<string, number>();
        ids.forEach((id, row) => {
          const expected = map.get(id);
          if (expected === undefined) map.set(id, row);
          assert.equal(seen.firstRowOrAdd(id, row), expected);
        });
        assert.equal(seen.size, map.size);
      }),
      { numRuns: 200 },
    );
  });

  it('two different ids with the same 32-bit hash are not duplicates', () => {
    // Random ids almost never collide, so find colliding ones: among 300k ids about ten pairs do.
    const byHash = new Map<number, string>();
    let pair: [string, string] | null = null;
    for (let i = 0; i < 300000 && !pair; i++) {
      const id = `id-${100000 + i}`; // all the same length, so only the code units tell them apart
      const h = murmur3Units(id, FIRST_SEEN_SEED);
      const other = byHash.get(h);
      if (other !== undefined) pair = [other, id];
      else byHash.set(h, id);
    }
    assert.ok(pair, 'no colliding pair found');
    const seen = new FirstSeen();
    assert.equal(seen.firstRowOrAdd(pair[0], 1), undefined);
    assert.equal(seen.firstRowOrAdd(pair[1], 2), undefined);
    assert.equal(seen.firstRowOrAdd(pair[1], 3), 2);
    assert.equal(seen.firstRowOrAdd(pair[0], 4), 1);
  });
});

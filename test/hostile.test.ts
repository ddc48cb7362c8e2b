/** Hostile and broken input through the CLI: each gets a clear one-line error, or is handled safely. */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { parquetWriteFile } from 'hyparquet-writer';
import { placeRecord } from '../src/data/assign.js';
import { planDeletion } from '../src/app/delete.js';
import { loadState } from '../src/state/manifest.js';
import { workspace } from '../src/state/workspace.js';
import { generateCorpus } from '../src/demo/corpus.js';
import { cliJson, makeCorpus, nothingPending, readState, runCli, snapshot, tempDir } from './helpers.js';

async function failsCleanly(args: string[], pattern: RegExp, ws?: string): Promise<void> {
  const snap = ws ? await snapshot(ws) : null;
  const r = await runCli(args);
  assert.equal(r.code, 1, `exit 1 for: sisa ${args.join(' ')}\n${r.stderr}`);
  assert.match(r.stderr, /^sisa: error: [^\n]+\n$/, 'one line');
  assert.match(r.stderr, pattern);
  if (ws) {
    assert.deepEqual(await snapshot(ws), snap, 'workspace unchanged');
    assert.ok(await nothingPending(ws));
  }
}

describe('hostile input', () => {
  let dir: string;
  let ws: string;

  before(async () => {
    dir = await tempDir();
    const corpus = await makeCorpus(dir, { rows: 600 });
    ws = path.join(dir, 'ws');
    await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '2', '--slices', '2', '--quiet']);
  });

  it('ids with path separators, "..", NUL bytes and huge lengths', async () => {
    const f = path.join(dir, 'ids.csv');
    const rows = [
      ['../../etc/passwd', 'you idiot', 1],
      ['a/b\\c', 'hello there', 0],
      ['..', 'stupid', 1],
      ['ok-1', 'fine thanks', 0],
      ['ok-2', 'worthless', 1],
      ['ok-3', 'lovely', 0],
    ];
    await fsp.writeFile(f, 'id,text,label\n' + rows.map(([i, t, l]) => `"${i}",${t},${l}`).join('\n') + '\n');
    const w = path.join(dir, 'ws-ids');
    const r = await cliJson(['ingest', f, '--workdir', w, '--shards', '1', '--slices', '1', '--test', '0.1']);
    assert.equal(r.accepted, 6, 'path-like ids are only data: they never name a file');
    const before = await fsp.readdir(dir);
    await cliJson(['train', '--workdir', w, '--quiet']);
    const del = await cliJson(['delete', '--workdir', w, '--id', '../../etc/passwd', '--id', '..', '--quiet']);
    assert.equal(del.deleted.length + del.notFound.length, 2);
    assert.deepEqual(del.notFound, []);
    assert.deepEqual(await fsp.readdir(dir), before, 'nothing written outside the workspace');

    const nul = path.join(dir, 'nul.jsonl');
    await fsp.writeFile(nul, [JSON.stringify({ id: 'a\u0000b', text: 'x', label: 1 }), JSON.stringify({ id: 'x'.repeat(5000), text: 'y', label: 0 })].join('\n') + '\n');
    await failsCleanly(['ingest', nul, '--workdir', ws, '--force'], /row 1 \(line 1\): id contains a NUL character; row 2 \(line 2\): id longer than 1024 characters/, ws);
  });

  it('a text of several megabytes is ingested, trained and predicted', async () => {
    const big = Array.from({ length: 400000 }, (_, i) => `word${i % 5000}`).join(' ');
    const f = path.join(dir, 'big.jsonl');
    const recs = [...generateCorpus({ rows: 300, seed: 4 })].map((r) => ({ id: r.id, text: r.text, label: r.label }));
    recs.push({ id: 'huge', text: big, label: 1 });
    await fsp.writeFile(f, recs.map((r) => JSON.stringify(r)).join('\n') + '\n');
    assert.ok(big.length > 3_000_000);
    const w = path.join(dir, 'ws-big');
    await cliJson(['ingest', f, '--workdir', w, '--shards', '2', '--slices', '2', '--test', '0.1', '--quiet']);
    await cliJson(['train', '--workdir', w, '--quiet']);
    const q = path.join(dir, 'q.jsonl');
    await fsp.writeFile(q, JSON.stringify({ id: 'q', text: big }) + '\n');
    const p = await cliJson(['predict', q, '--workdir', w]);
    assert.equal(p.predictions.length, 1);
    assert.ok(Number.isFinite(p.predictions[0].score));
  });

  it('invalid UTF-8 is refused with its line', async () => {
    const f = path.join(dir, 'latin1.csv');
    await fsp.writeFile(f, Buffer.concat([Buffer.from('id,text,label\n1,ok,0\n2,fine,1\n3,caf'), Buffer.from([0xe9]), Buffer.from(' au lait,0\n')]));
    await failsCleanly(['ingest', f, '--workdir', ws, '--force'], /latin1\.csv: invalid UTF-8 in line 4/, ws);
  });

  it('a CSV with a BOM and mixed line endings', async () => {
    const f = path.join(dir, 'mixed.csv');
    await fsp.writeFile(f, '\ufeffid,text,label\r\n1,"first\r\nline",0\n2,second,1\r\n3,third,0\n4,"fourth, with comma",1\r\n5,fifth,0\n6,sixth,1\n');
    const r = await cliJson(['ingest', f, '--workdir', path.join(dir, 'ws-mixed'), '--shards', '1', '--slices', '1', '--test', '0.1']);
    assert.equal(r.rows, 6);
    assert.equal(r.accepted, 6);
    assert.equal(r.columns.id, 'id', 'the BOM is not part of the first column name');
  });

  it('a truncated Parquet file and an Arrow file that lies about its contents', async () => {
    const pq = path.join(dir, 'ok.parquet');
    parquetWriteFile({ filename: pq, columnData: [{ name: 'id', data: ['1', '2', '3'] }, { name: 'text', data: ['a b', 'c d', 'e f'] }, { name: 'label', data: [0, 1, 0] }] });
    const bytes = await fsp.readFile(pq);
    const cut = path.join(dir, 'cut.parquet');
    await fsp.writeFile(cut, bytes.subarray(0, bytes.length - 20));
    await failsCleanly(['ingest', cut, '--workdir', ws, '--force'], /cut\.parquet: not a valid Parquet file/, ws);

    const arrow = tableToIPC(tableFromArrays({ id: ['1', '2', '3', '4'], text: ['aa', 'bb', 'cc', 'dd'], label: Int8Array.from([0, 1, 0, 1]) }), 'file');
    // Keep the schema, overwrite the record batch body with garbage.
    const liar = Buffer.from(arrow);
    for (let i = Math.floor(liar.length / 2); i < liar.length - 64; i++) liar[i] = 0xff;
    const f = path.join(dir, 'liar.arrow');
    await fsp.writeFile(f, liar);
    await failsCleanly(['ingest', f, '--workdir', ws, '--force'], /liar\.arrow: /, ws);
  });

  it('a damaged shard file is detected by its hash, never used', async () => {
    const w = path.join(dir, 'ws-damaged');
    await fsp.cp(ws, w, { recursive: true });
    await cliJson(['train', '--workdir', w, '--quiet']);
    const st = await readState(w);
    const file = path.join(w, 'shards', st.shards[0].file);
    const bytes = await fsp.readFile(file);
    await fsp.writeFile(file, bytes.subarray(0, bytes.length - 100));
    await failsCleanly(['delete', '--workdir', w, '--id', 'whatever-id', '--id', 'd1'], /content hash .* does not match the manifest/, undefined);
  });
});

describe('deletion planning (property)', () => {
  it('touches exactly the shards that hold the ids, and reports every unknown id', async () => {
    const dir = await tempDir();
    const corpus = await makeCorpus(dir, { rows: 800 });
    const ws = path.join(dir, 'ws');
    await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '4', '--slices', '3', '--calibration', '0.1', '--quiet']);
    const state = await loadState(workspace(ws));
    const known = [...generateCorpus({ rows: 800, seed: 11 })].map((r) => r.id);
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.constantFrom(...known), { maxLength: 12 }), fc.uniqueArray(fc.string({ minLength: 1, maxLength: 8 }).map((s) => `zz-${s}`), { maxLength: 3 }), async (ids, unknown) => {
        const plan = await planDeletion(state, ws, [...ids, ...unknown]);
        const expectShards = new Set(ids.map((id) => placeRecord(id, state.config)).filter((p) => p.split === 'train').map((p) => (p as { shard: number }).shard));
        assert.deepEqual(new Set(plan.shards.keys()), expectShards);
        assert.deepEqual(new Set(plan.notFound), new Set(unknown));
        for (const [shard, p] of plan.shards) {
          for (const id of p.ids) assert.equal((placeRecord(id, state.config) as { shard: number }).shard, shard);
          const slices = [...p.ids].map((id) => (placeRecord(id, state.config) as { slice: number }).slice);
          assert.equal(p.fromSlice, Math.min(...slices), 'retrain starts at the earliest affected slice');
        }
      }),
      { numRuns: 40 },
    );
  });
});

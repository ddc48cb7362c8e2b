/** Input formats through the CLI: the same records as CSV, JSON Lines, Parquet and Arrow ingest identically. */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { parquetWriteFile } from 'hyparquet-writer';
import { generateCorpus } from '../src/demo/corpus.js';
import { readRowsFile } from '../src/data/shardFile.js';
import { cliJson, readState, tempDir } from './helpers.js';

const ARGS = ['--shards', '3', '--slices', '2', '--test', '0.25', '--seed', '3', '--quiet'];

describe('input formats', () => {
  let dir: string;
  const records = [...generateCorpus({ rows: 400, seed: 2 })].map((r, i) => ({
    ...r,
    // Quotes, commas, newlines and non-ASCII text must survive every format.
    text: i % 7 === 0 ? `${r.text}, "quoted"\nsecond line é 🙂` : r.text,
  }));

  before(async () => {
    dir = await tempDir();
  });

  async function ingestFile(file: string, extra: string[] = []): Promise<{ shards: string[]; heldout: string }> {
    const ws = path.join(dir, `ws-${path.basename(file)}`);
    await cliJson(['ingest', file, '--workdir', ws, ...ARGS, ...extra]);
    const st = await readState(ws);
    return { shards: st.shards.map((s: { sha256: string }) => s.sha256), heldout: st.heldout.test.sha256 };
  }

  it('CSV (RFC 4180 with BOM, CRLF and quoted newlines), JSONL, Parquet and Arrow give identical shards', async () => {
    const csv = path.join(dir, 'data.csv');
    const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
    await fsp.writeFile(csv, '\ufeffid,text,label\r\n' + records.map((r) => `${r.id},${q(r.text)},${r.label}`).join('\r\n') + '\r\n');
    const jsonl = path.join(dir, 'data.jsonl');
    await fsp.writeFile(jsonl, records.map((r) => JSON.stringify({ id: r.id, text: r.text, label: r.label === 1 })).join('\n') + '\n');
    const parquet = path.join(dir, 'data.parquet');
    parquetWriteFile({
      filename: parquet,
      columnData: [
        { name: 'id', data: records.map((r) => r.id) },
        { name: 'text', data: records.map((r) => r.text) },
        { name: 'label', data: records.map((r) => r.label) },
      ],
      rowGroupSize: 150,
    });
    const arrow = path.join(dir, 'data.arrow');
    await fsp.writeFile(
      arrow,
      tableToIPC(tableFromArrays({ id: records.map((r) => r.id), text: records.map((r) => r.text), label: Int8Array.from(records.map((r) => r.label)) }), 'file'),
    );

    const fromCsv = await ingestFile(csv);
    assert.deepEqual(await ingestFile(jsonl), fromCsv, 'JSONL');
    assert.deepEqual(await ingestFile(parquet), fromCsv, 'Parquet');
    assert.deepEqual(await ingestFile(arrow), fromCsv, 'Arrow');

    // The multi-line text survived intact.
    const st = await readState(path.join(dir, 'ws-data.csv'));
    const all = new Map<string, string>();
    for (const f of [...st.shards.map((s: { file: string }) => s.file), st.heldout.test.file]) {
      const rows = await readRowsFile(path.join(dir, 'ws-data.csv', 'shards', f));
      rows.ids.forEach((id, i) => all.set(id, rows.texts[i]!));
    }
    assert.equal(all.size, records.length);
    assert.equal(all.get(records[0]!.id), records[0]!.text);
  });

  it('maps labels: --positive-values and --label-threshold', async () => {
    const f = path.join(dir, 'multi.csv');
    await fsp.writeFile(f, 'rid,comment,class,score\n' + records.map((r, i) => `${r.id},"${r.text.replace(/"/g, '""')}",${r.label ? i % 2 : 2},${r.label ? 0.7 : 0.2}`).join('\n') + '\n');
    const a = await cliJson(['ingest', f, '--workdir', path.join(dir, 'pv'), '--id-col', 'rid', '--text-col', 'comment', '--label-col', 'class', '--positive-values', '0,1', ...ARGS]);
    const b = await cliJson(['ingest', f, '--workdir', path.join(dir, 'th'), '--id-col', 'rid', '--text-col', 'comment', '--label-col', 'score', '--label-threshold', '0.5', ...ARGS]);
    assert.equal(a.accepted, records.length);
    assert.deepEqual(a.shards, b.shards, 'both rules give the same labels, so the same shard counts');
    const sa = await readState(path.join(dir, 'pv'));
    const sb = await readState(path.join(dir, 'th'));
    assert.deepEqual(sa.shards.map((s: { sha256: string }) => s.sha256), sb.shards.map((s: { sha256: string }) => s.sha256));
  });
});

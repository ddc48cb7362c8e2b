/**
 * A deletion request is a legal obligation (issue 9 items 7, 10, 11): once accepted it is applied or
 * stays pending, whatever fails, and the workspace keeps no plaintext id that --hash-ids promised to hide.
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { generateCorpus } from '../src/demo/corpus.js';
import { cliJson, readState, runCli, tempDir } from './helpers.js';

const modelHashes = async (ws: string) => (await readState(ws)).models.map((m: { modelHash: string }) => m.modelHash);
const copy = async (from: string, to: string) => (await fsp.cp(from, to, { recursive: true }), to);

/** Every file under a folder whose bytes contain the string. */
async function filesContaining(dir: string, needle: string): Promise<string[]> {
  const hits: string[] = [];
  for (const e of await fsp.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const file = path.join(e.parentPath, e.name);
    if ((await fsp.readFile(file)).includes(Buffer.from(needle))) hits.push(path.relative(dir, file));
  }
  return hits;
}

describe('accepted deletion requests', () => {
  let dir: string;
  let trained: string;
  // E-mail-like ids: no id is a prefix of another, and none can appear inside a hex hash by chance.
  const id = (i: number) => `user${i}@example.org`;

  before(async () => {
    dir = await tempDir();
    const rows = [...generateCorpus({ rows: 1500, seed: 3 })];
    const csv = path.join(dir, 'people.csv');
    await fsp.writeFile(csv, 'id,text,label\n' + rows.map((r, i) => `${id(i)},"${r.text.replace(/"/g, '""')}",${r.label}`).join('\n') + '\n');
    trained = path.join(dir, 'trained');
    await cliJson(['ingest', csv, '--workdir', trained, '--shards', '3', '--slices', '2', '--test', '0.2', '--seed', '4', '--quiet']);
    await cliJson(['train', '--workdir', trained, '--quiet', '--epochs', '2']);
  });

  it('a full disk after acceptance keeps the request pending; status and verify say so; recover applies it', async () => {
    const reference = await copy(trained, path.join(dir, 'reference'));
    await cliJson(['delete', '--workdir', reference, '--id', id(10), '--id', id(11), '--quiet']);
    const ws = await copy(trained, path.join(dir, 'full-disk'));
    const before = await readState(ws);

    const r = await runCli(['delete', '--workdir', ws, '--id', id(10), '--id', id(11), '--quiet'], { env: { SISA_DISK_FULL_AT: 'checkpoint:stored@1' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^sisa: error: .*no space left on device.*the deletion request .*pending.*sisa recover[^\n]*\n$/);
    assert.deepEqual(await readState(ws), before, 'nothing was committed');

    const st = await cliJson(['status', '--workdir', ws]);
    assert.equal(st.pendingRequests.length, 1);
    assert.equal(st.pendingRequests[0].ids, 2);
    const human = await runCli(['status', '--workdir', ws]);
    assert.match(human.stdout, /pending deletion requests: 1 \(2 ids, oldest accepted \S+\): run .sisa recover./);
    const ver = await runCli(['verify', '--workdir', ws]);
    assert.equal(ver.code, 1, 'an accepted request not yet applied is not a clean audit');
    assert.match(ver.stdout, /FAIL pending: 1 accepted deletion request \(2 ids\) not applied yet; run 'sisa recover'/);

    const rec = await cliJson(['recover', '--workdir', ws]);
    assert.equal(rec.action, 'completed');
    assert.deepEqual(new Set(rec.deletion.deleted), new Set([id(10), id(11)]));
    assert.deepEqual(await modelHashes(ws), await modelHashes(reference), 'models equal an uninterrupted deletion');
    assert.equal((await cliJson(['status', '--workdir', ws])).pendingRequests.length, 0);
    assert.equal((await cliJson(['verify', '--workdir', ws])).ok, true);
  });

  it('the next delete applies an earlier pending request first, with its own receipt', async () => {
    const ws = await copy(trained, path.join(dir, 'next-delete'));
    const r = await runCli(['delete', '--workdir', ws, '--id', id(20), '--quiet'], { env: { SISA_DISK_FULL_AT: 'checkpoint:stored@1' } });
    assert.equal(r.code, 1);
    const del = await cliJson(['delete', '--workdir', ws, '--id', id(21), '--quiet']);
    assert.deepEqual(del.deleted, [id(21)]);
    assert.deepEqual(del.earlierRequests.map((e: { deleted: string[] }) => e.deleted), [[id(20)]]);
    const st = await cliJson(['status', '--workdir', ws]);
    assert.equal(st.deletions.batches, 2);
    assert.equal(st.pendingRequests.length, 0);
    const again = await cliJson(['delete', '--workdir', ws, '--id', id(20), '--quiet']);
    assert.deepEqual(again.alreadyDeleted.map((x: { id: string }) => x.id), [id(20)]);
  });

  it('a refused request (--strict with an unknown id) is not kept, and nothing is deleted', async () => {
    const ws = await copy(trained, path.join(dir, 'refused'));
    const r = await runCli(['delete', '--workdir', ws, '--id', id(30), '--id', 'nobody@example.org', '--strict', '--quiet']);
    assert.equal(r.code, 1);
    assert.equal((await cliJson(['status', '--workdir', ws])).pendingRequests.length, 0);
    assert.equal((await cliJson(['status', '--workdir', ws])).deletions.batches, 0);
  });

  it('recover after a --strict delete killed after its commit reports it completed, receipt and all', async () => {
    const ws = await copy(trained, path.join(dir, 'strict-crash'));
    for (const point of ['delete:committed', 'delete:collected']) {
      const w = await copy(ws, path.join(dir, `strict-${point.replace(':', '-')}`));
      const r = await runCli(['delete', '--workdir', w, '--id', id(40), '--id', id(41), '--strict', '--quiet'], { env: { SISA_CRASH_AT: point } });
      assert.equal(r.signal, 'SIGKILL', `${point}: ${r.stderr}`);
      const rec = await cliJson(['recover', '--workdir', w]);
      assert.equal(rec.action, 'completed', `${point}: ${rec.note}`);
      assert.doesNotMatch(rec.note, /nothing was deleted/);
      assert.deepEqual(new Set(rec.deletion.alreadyDeleted.map((x: { id: string }) => x.id)), new Set([id(40), id(41)]));
      const st = await cliJson(['status', '--workdir', w]);
      assert.equal(st.deletions.batches, 1, `${point}: the committed receipt stands`);
      assert.equal((await cliJson(['verify', '--workdir', w])).ok, true);
      const journal = await fsp.readFile(path.join(w, 'manifests', 'journal.jsonl'), 'utf8');
      assert.doesNotMatch(journal.trim().split('\n').at(-1)!, /"abort"/, `${point}: the journal does not call it aborted`);
    }
  });

  it('--hash-ids: no plaintext id anywhere in the workspace, after a refused and after an applied deletion', async () => {
    const ws = await copy(trained, path.join(dir, 'hashed'));
    const refused = await runCli(['delete', '--workdir', ws, '--id', id(50), '--id', 'ghost@example.org', '--strict', '--hash-ids', '--quiet']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /ghost@example\.org/, 'the person who typed the ids still sees which one was not found');
    assert.deepEqual(await filesContaining(path.join(ws, 'manifests'), 'ghost@example.org'), []);
    assert.deepEqual(await filesContaining(path.join(ws, 'manifests'), id(50)), []);
    const ok = await cliJson(['delete', '--workdir', ws, '--id', id(50), '--id', 'ghost@example.org', '--hash-ids', '--quiet']);
    assert.deepEqual(ok.deleted, [id(50)]);
    assert.deepEqual(await filesContaining(ws, id(50)), [], 'the deleted id is in no file of the workspace');
    assert.deepEqual(await filesContaining(ws, 'ghost@example.org'), []);
  });
});

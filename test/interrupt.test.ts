/**
 * Ctrl-C (issue 9 item 14): a writer stops before its commit and says on one line what happened; read-only
 * commands keep answering from the last committed state during an interrupted operation, with a warning.
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { cliJson, makeCorpus, runCli, snapshot, startPaused, tempDir } from './helpers.js';

const copy = async (from: string, to: string) => (await fsp.cp(from, to, { recursive: true }), to);

describe('Ctrl-C', () => {
  let dir: string;
  let corpus: string;
  let ingested: string;
  let trained: string;

  before(async () => {
    dir = await tempDir();
    corpus = await makeCorpus(dir, { rows: 1200 });
    ingested = path.join(dir, 'ingested');
    await cliJson(['ingest', corpus, '--workdir', ingested, '--shards', '3', '--slices', '2', '--quiet']);
    trained = await copy(ingested, path.join(dir, 'trained'));
    await cliJson(['train', '--workdir', trained, '--quiet', '--epochs', '2']);
  });

  async function interrupt(args: string[], point: string, name: string) {
    const p = await startPaused(args, point, path.join(dir, `pause-${name}`));
    process.kill(p.pid, 'SIGINT');
    await new Promise((r) => setTimeout(r, 200)); // the signal is handled while the process waits
    await p.go();
    return p.done;
  }

  it('during train: rolled back, one line, exit 130, nothing to recover', async () => {
    const ws = await copy(ingested, path.join(dir, 'train'));
    const before = await snapshot(ws);
    const r = await interrupt(['train', '--workdir', ws, '--quiet'], 'train:jobs-done', 'train');
    assert.equal(r.code, 130, r.stderr);
    assert.equal(r.stderr, 'sisa: error: interrupted (Ctrl-C): the train was rolled back; the workspace is as it was before it started\n');
    assert.deepEqual(await snapshot(ws), before);
    assert.equal((await cliJson(['recover', '--workdir', ws])).action, 'none');
    assert.equal((await cliJson(['verify', '--workdir', ws])).ok, true);
  });

  it('during ingest --force: rolled back, the previous data and models stand', async () => {
    const ws = await copy(trained, path.join(dir, 'ingest'));
    const before = await snapshot(ws);
    const r = await interrupt(['ingest', corpus, '--workdir', ws, '--force', '--shards', '2', '--slices', '2', '--quiet'], 'ingest:files-written', 'ingest');
    assert.equal(r.code, 130, r.stderr);
    assert.equal(r.stderr, 'sisa: error: interrupted (Ctrl-C): the ingest was rolled back; the workspace is as it was before it started\n');
    assert.deepEqual(await snapshot(ws), before);
    assert.equal((await cliJson(['verify', '--workdir', ws])).ok, true);
  });

  it('during delete: the accepted request stays pending, and recover applies it', async () => {
    const ws = await copy(trained, path.join(dir, 'delete'));
    const r = await interrupt(['delete', '--workdir', ws, '--id', 'd3', '--quiet'], 'delete:retrained', 'delete');
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /^sisa: error: interrupted \(Ctrl-C\) before the commit; the deletion request stays pending: run 'sisa recover' \(or the next 'sisa delete'\) to apply it\n$/);
    assert.equal((await cliJson(['status', '--workdir', ws])).deletions.batches, 0);
    assert.equal((await cliJson(['status', '--workdir', ws])).pendingRequests.length, 1);
    const rec = await cliJson(['recover', '--workdir', ws]);
    assert.deepEqual(rec.deletion.deleted, ['d3']);
    assert.equal((await cliJson(['verify', '--workdir', ws])).ok, true);
  });

  it('read-only commands answer from the last committed state during an interrupted operation; writers refuse', async () => {
    const ws = await copy(trained, path.join(dir, 'killed'));
    const killed = await runCli(['delete', '--workdir', ws, '--id', 'd4', '--quiet'], { env: { SISA_CRASH_AT: 'delete:retrained' } });
    assert.equal(killed.signal, 'SIGKILL');
    const warning = /^sisa: warning: an interrupted 'delete' \(started \S+ by process \d+\) is not finished; its deletion request is not applied yet: this is the last committed state; run 'sisa recover'\n$/;
    const st = await runCli(['status', '--workdir', ws, '--json']);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stderr, warning);
    assert.equal(JSON.parse(st.stdout).deletions.batches, 0);
    const newCsv = path.join(dir, 'new.csv');
    await fsp.writeFile(newCsv, 'id,text\nn1,you are an idiot\n');
    for (const args of [['predict', newCsv], ['evaluate']]) {
      const r = await runCli([...args, '--workdir', ws, '--json']);
      assert.equal(r.code, 0, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, warning, args[0]);
    }
    const w = await runCli(['train', '--workdir', ws, '--quiet']);
    assert.equal(w.code, 1);
    assert.match(w.stderr, /interrupted 'delete'.*sisa recover/);
  });
});

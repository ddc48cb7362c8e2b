/**
 * One writer at a time, made deterministic with pause points (SISA_PAUSE_AT): two processes are stopped
 * at exact places so that the races of issue 9 item 4 happen every run, not by luck.
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { cliJson, makeCorpus, startPaused, tempDir } from './helpers.js';
import { ingest } from '../src/app/ingest.js';

const copy = async (from: string, to: string) => (await fsp.cp(from, to, { recursive: true }), to);

describe('the workspace lock', () => {
  let dir: string;
  let trained: string;

  before(async () => {
    dir = await tempDir();
    const corpus = await makeCorpus(dir, { rows: 1200 });
    trained = path.join(dir, 'trained');
    await cliJson(['ingest', corpus, '--workdir', trained, '--shards', '3', '--slices', '2', '--quiet']);
    await cliJson(['train', '--workdir', trained, '--quiet', '--epochs', '2']);
  });

  it('two processes taking over a dead holder\'s lock: only one gets it', async () => {
    const ws = await copy(trained, path.join(dir, 'takeover'));
    // A holder killed while it holds the lock (recover writes no journal line, so nothing else is pending).
    const dead = await startPaused(['recover', '--workdir', ws], 'recover:locked', path.join(dir, 'p-dead'));
    process.kill(dead.pid, 'SIGKILL');
    await dead.done;

    // A sees the dead holder and stops right before taking over; B takes over and stops before its commit.
    const a = await startPaused(['delete', '--workdir', ws, '--id', 'd5', '--quiet'], 'lock:stale-seen', path.join(dir, 'p-a'));
    const b = await startPaused(['delete', '--workdir', ws, '--id', 'd6', '--quiet'], 'delete:retrained', path.join(dir, 'p-b'));
    await a.go();
    const ra = await a.done;
    assert.equal(ra.code, 1, `A must not take the lock B holds: ${ra.stdout}${ra.stderr}`);
    assert.match(ra.stderr, new RegExp(`^sisa: error: workspace .* is locked by another sisa process \\(pid ${b.pid}\\); pass --wait to wait for it\\n$`));
    await b.go();
    const rb = await b.done;
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal((await cliJson(['verify', '--workdir', ws])).ok, true);
    const st = await cliJson(['status', '--workdir', ws]);
    assert.equal(st.deletions.batches, 1);
  });

  it('a process that lost its lock before the commit commits nothing (fencing)', async () => {
    const ws = await copy(trained, path.join(dir, 'fencing'));
    const a = await startPaused(['delete', '--workdir', ws, '--id', 'd7', '--quiet'], 'delete:retrained', path.join(dir, 'p-f'));
    // A's lock goes stale (a hung process stops refreshing it), and recover takes the workspace over:
    // it completes A's accepted request itself.
    const past = new Date(Date.now() - 120_000);
    await fsp.utimes(path.join(ws, 'manifests', 'lock'), past, past);
    const rec = await cliJson(['recover', '--workdir', ws]);
    assert.equal(rec.action, 'completed');
    assert.deepEqual(rec.deletion.deleted, ['d7']);
    const stateAfterRecover = await fsp.readFile(path.join(ws, 'manifests', 'state.json'));
    const receipts = await fsp.readdir(path.join(ws, 'manifests', 'deletions'));
    const receiptBytes = await fsp.readFile(path.join(ws, 'manifests', 'deletions', receipts[0]!));

    await a.go();
    const ra = await a.done;
    assert.equal(ra.code, 1, `A lost its lock and must not commit: ${ra.stdout}${ra.stderr}`);
    assert.match(ra.stderr, /^sisa: error: this process lost the lock on .* before its commit, so it committed nothing/);
    assert.deepEqual(await fsp.readFile(path.join(ws, 'manifests', 'state.json')), stateAfterRecover, 'state untouched by A');
    assert.deepEqual(await fsp.readdir(path.join(ws, 'manifests', 'deletions')), receipts, 'no receipt from A');
    assert.deepEqual(await fsp.readFile(path.join(ws, 'manifests', 'deletions', receipts[0]!)), receiptBytes, "recover's receipt not overwritten");
    assert.equal((await cliJson(['verify', '--workdir', ws])).ok, true);
  });

  it('a lock whose owner file cannot be written (a full disk) is given back, and no temporary file stays', { skip: process.getuid?.() === 0 ? false : 'needs root to mount a tmpfs' }, async () => {
    const mnt = path.join(dir, 'full-disk');
    await fsp.mkdir(mnt);
    const { spawnSync } = await import('node:child_process');
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
    assert.equal(mount.status, 0, String(mount.stderr));
    try {
      const ws = path.join(mnt, 'ws');
      await fsp.mkdir(path.join(ws, 'manifests'), { recursive: true });
      // Fill the disk: the lock directory can still be made, the owner file cannot be written.
      await fsp.writeFile(path.join(mnt, 'filler'), Buffer.alloc(64 * 1024)).catch(() => undefined);
      const corpus = await makeCorpus(dir, { rows: 50 });
      // In one process, as a service using the library would: a process exit would release the lock anyway.
      await assert.rejects(ingest({ input: corpus, workdir: ws }), /no space left on device/);
      assert.deepEqual((await fsp.readdir(path.join(ws, 'manifests'))).filter((f) => f.includes('lock')), [], 'no lock directory, no owner file, no temporary file');
      await fsp.rm(path.join(mnt, 'filler'));
      const r = await ingest({ input: corpus, workdir: ws });
      assert.equal(r.accepted, 50, 'the same process can take the workspace again');
    } finally {
      spawnSync('umount', [mnt]);
    }
  });
});

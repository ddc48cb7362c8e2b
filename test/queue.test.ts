/**
 * Distributed mode through the CLI: a real redis-server on loopback, two `sisa worker` processes, one
 * killed with SIGKILL while it holds a job. Uses SISA_TEST_REDIS (set by .ci/run) or starts its own
 * redis-server on 127.0.0.1; skipped, saying why, where Debian's redis-server is not installed.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { placeRecord } from '../src/data/assign.js';
import { cliJson, makeCorpus, readState, runCli, sisaBin, snapshot, tempDir } from './helpers.js';

const haveRedis = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error === undefined;
const skip = process.env.SISA_TEST_REDIS || haveRedis ? false : 'redis-server not installed (Debian: apt-get install redis-server; .ci/run installs it)';

/** Resolves once a redis-server on loopback answers PING (it starts in a few ms to a few seconds). */
async function untilPong(port: number): Promise<void> {
  const end = Date.now() + 20000;
  for (;;) {
    const pong = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, '127.0.0.1');
      sock.once('connect', () => sock.write('PING\r\n'));
      sock.once('data', (d) => {
        sock.destroy();
        resolve(d.toString().startsWith('+PONG'));
      });
      sock.once('error', () => resolve(false));
    });
    if (pong) return;
    if (Date.now() > end) throw new Error(`redis-server on port ${port} did not answer PING`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('BullMQ queue mode', { skip }, () => {
  let redis: ChildProcess | null = null;
  let url: string;
  const workers: ChildProcess[] = [];
  const queueName = `sisa-test-${process.pid}`;
  let dir: string;

  before(async () => {
    if (process.env.SISA_TEST_REDIS) url = process.env.SISA_TEST_REDIS;
    else {
      const port = 20000 + (process.pid % 20000);
      redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      url = `redis://127.0.0.1:${port}`;
      await untilPong(port);
    }
    dir = await tempDir();
  });

  after(async () => {
    for (const w of workers) w.kill('SIGKILL');
    redis?.kill('SIGTERM');
  });

  function startWorker(name: string, extra: string[] = [], queue = queueName, env: Record<string, string> = {}): { proc: ChildProcess; log: () => string } {
    let log = '';
    const proc = spawn(process.execPath, [sisaBin, 'worker', '--queue', url, '--queue-name', queue, '--concurrency', '1', '--lock-duration', '3000', ...extra], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...env },
    });
    proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    workers.push(proc);
    void name;
    return { proc, log: () => log };
  }

  async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('trains 8 shards on two workers, survives one being killed mid-job, and equals a local train', async () => {
    const corpus = await makeCorpus(dir, { rows: 6000 });
    const wsQueue = path.join(dir, 'queue');
    const wsLocal = path.join(dir, 'local');
    const args = ['--shards', '8', '--slices', '2', '--seed', '3', '--quiet'];
    await cliJson(['ingest', corpus, '--workdir', wsQueue, ...args]);
    await cliJson(['ingest', corpus, '--workdir', wsLocal, ...args]);
    // Enough epochs that a job lasts long enough to be killed in the middle of it.
    await cliJson(['train', '--workdir', wsLocal, '--epochs', '30', '--quiet']);

    // Worker 1 kills itself (SIGKILL) when it has stored its first checkpoint: inside a job, every time,
    // instead of racing the test's kill against the job's end.
    const w1 = startWorker('w1', [], queueName, { SISA_CRASH_AT: 'checkpoint:stored' });
    const w2 = startWorker('w2');
    await until(() => w1.log().includes('worker ready') && w2.log().includes('worker ready'), 20000, 'workers');
    const w1Exit = new Promise<NodeJS.Signals | null>((resolve) => w1.proc.once('exit', (_code, signal) => resolve(signal)));
    const trainRun = runCli(['train', '--workdir', wsQueue, '--queue', url, '--queue-name', queueName, '--epochs', '30', '--json', '--quiet']);
    assert.equal(await w1Exit, 'SIGKILL', 'worker 1 died inside its job');
    const r = await trainRun;
    assert.equal(r.code, 0, r.stderr);
    const queued = await readState(wsQueue);
    const local = await readState(wsLocal);
    assert.equal(queued.models.length, 8, 'every shard has a model');
    assert.deepEqual(queued.models.map((m: { modelHash: string }) => m.modelHash), local.models.map((m: { modelHash: string }) => m.modelHash), 'identical to a local train');
    const killedShard = Number(/start \S+ shard (\d+)/.exec(w1.log())![1]);
    assert.match(w2.log(), new RegExp(`done \\S+ shard ${killedShard} `), 'the surviving worker finished the killed worker’s job');

    // Deleting ids in two shards retrains exactly those two shards, on the queue.
    const ids: string[] = [];
    const shards = new Set<number>();
    for (let i = 0; ids.length < 2 && i < 6000; i++) {
      const p = placeRecord(`d${i}`, queued.config);
      if (p.split === 'train' && !shards.has(p.shard)) {
        shards.add(p.shard);
        ids.push(`d${i}`);
      }
    }
    const del = await cliJson(['delete', '--workdir', wsQueue, '--queue', url, '--queue-name', queueName, ...ids.flatMap((id) => ['--id', id]), '--quiet']);
    assert.deepEqual(new Set(del.retrained.map((x: { shard: number }) => x.shard)), shards);
    const afterDelete = await readState(wsQueue);
    for (let s = 0; s < 8; s++) if (!shards.has(s)) assert.deepEqual(afterDelete.models[s], queued.models[s], `shard ${s} untouched`);
    const st = await cliJson(['status', '--workdir', wsQueue, '--queue', url, '--queue-name', queueName]);
    assert.equal(typeof st.queue.counts.completed, 'number');
    assert.equal((await cliJson(['verify', '--workdir', wsQueue])).ok, true);
  });

  it('a job that keeps failing fails the waiting command with the shard and reason, leaving the workspace unchanged', async () => {
    const corpus = await makeCorpus(dir, { rows: 1200, seed: 5 });
    const ws = path.join(dir, 'broken');
    await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '3', '--slices', '2', '--quiet']);
    const st = await readState(ws);
    const file = path.join(ws, 'shards', st.shards[1].file);
    await fsp.writeFile(file, (await fsp.readFile(file)).subarray(0, 1000)); // the shard file is damaged
    const snap = await snapshot(ws);
    if (!workers.some((w) => w.exitCode === null && !w.killed)) {
      const w = startWorker('w3');
      await until(() => w.log().includes('worker ready'), 20000, 'worker');
    }
    const r = await runCli(['train', '--workdir', ws, '--queue', url, '--queue-name', queueName, '--quiet']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^sisa: error: shard 1: job failed on the queue: .*content hash .* does not match the manifest[^\n]*\n$/);
    assert.deepEqual(await snapshot(ws), snap, 'workspace unchanged');
  });

  it('a shard file the worker cannot see yet (NFS lag: ENOENT) is retried, not failed for good', async () => {
    const corpus = await makeCorpus(dir, { rows: 1200, seed: 6 });
    const ws = path.join(dir, 'lagging');
    await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '3', '--slices', '2', '--quiet']);
    const st = await readState(ws);
    const file = path.join(ws, 'shards', st.shards[1].file);
    await fsp.rename(file, `${file}.elsewhere`);
    const w = startWorker('w-lag');
    await until(() => w.log().includes('worker ready'), 20000, 'worker');
    const run = runCli(['train', '--workdir', ws, '--queue', url, '--queue-name', queueName, '--json', '--quiet']);
    await until(() => /failed \S+ shard 1:/.test(w.log()), 30000, 'the first attempt at shard 1 to fail');
    await fsp.rename(`${file}.elsewhere`, file); // the file becomes visible
    const r = await run;
    assert.equal(r.code, 0, `${r.stderr}\n${w.log()}`);
    assert.equal((await readState(ws)).models.length, 3);
    assert.equal((await cliJson(['verify', '--workdir', ws])).ok, true);
  });

  it('a worker on another backend than the one that trained the models fails the retrain job permanently; nothing is committed', async () => {
    const corpus = await makeCorpus(dir, { rows: 900, seed: 8 });
    const ws = path.join(dir, 'pinned');
    await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '2', '--slices', '2', '--quiet']);
    await cliJson(['train', '--workdir', ws, '--backend', 'wasm', '--quiet']); // local, on wasm (not the fused kernel)
    const st = await readState(ws);
    assert.equal(st.training.backend, 'wasm');
    let id = '';
    for (let i = 0; !id; i++) if (placeRecord(`d${i}`, st.config).split === 'train') id = `d${i}`;
    // Its own queue, so that only the cpu worker can take the job.
    const cpuQueue = `${queueName}-cpu`;
    const w = startWorker('cpu', ['--backend', 'cpu'], cpuQueue);
    await until(() => w.log().includes('worker ready'), 20000, 'cpu worker');
    const snap = await snapshot(ws);
    const r = await runCli(['delete', '--workdir', ws, '--queue', url, '--queue-name', cpuQueue, '--id', id, '--quiet']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^sisa: error: shard \d+: job failed on the queue: [^\n]*backend 'cpu'[^\n]*trained on 'wasm'[^\n]*the deletion request stays pending[^\n]*\n$/);
    // Nothing committed; the accepted request is kept for a worker that can apply it (issue 9 item 10).
    const after = await snapshot(ws);
    const kept = Object.keys(after).filter((f) => f.startsWith('manifests/pending/'));
    assert.equal(kept.length, 1, 'the accepted request stays pending');
    for (const f of kept) delete after[f];
    assert.deepEqual(after, snap, 'workspace otherwise unchanged');
    assert.equal(w.log().match(/start \S+ shard/g)?.length, 1, `tried once, not retried:\n${w.log()}`);
    w.proc.kill('SIGKILL');
  });

  it('train --queue with no worker says it is waiting, then fails after --queue-timeout with one clear line; nothing committed', async () => {
    const corpus = await makeCorpus(dir, { rows: 600, seed: 9 });
    const ws = path.join(dir, 'nobody');
    await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '2', '--slices', '1', '--quiet']);
    const snap = await snapshot(ws);
    const r = await runCli(['train', '--workdir', ws, '--queue', url, '--queue-name', `${queueName}-empty`, '--queue-timeout', '2', '--quiet']);
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.split('\n').filter(Boolean);
    assert.match(lines[0]!, /^sisa: waiting for workers \(0 seen\)/);
    assert.match(lines.at(-1)!, /^sisa: error: no worker on queue '[^']+-empty' at redis:\/\/\S+ for 2 s \(--queue-timeout\); nothing was committed/);
    assert.equal(lines.filter((l) => l.startsWith('sisa: error:')).length, 1, r.stderr);
    assert.deepEqual(await snapshot(ws), snap, 'workspace unchanged');
  });

  it('rejects a queue URL that is not redis://', async () => {
    const r = await runCli(['worker', '--queue', 'http://127.0.0.1:1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--queue must be a redis:\/\/ or rediss:\/\/ URL/);
  });
});

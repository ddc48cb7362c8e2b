/**
 * Workspaces whose blobs live in S3-compatible storage (`ingest --store`), through the real CLI and a
 * real S3 API server (s3rver) on loopback; queue tests also use a real redis-server.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { placeRecord } from '../src/data/assign.js';
import { cliJson, makeCorpus, readState, runCli, sisaBin, snapshot, tempDir } from './helpers.js';
import { startS3, useS3Env, type S3TestServer } from './s3server.js';
import { S3BlobStore, parseS3Url } from '../src/storage/s3BlobStore.js';

const BUCKET = 'sisa-cli';

/** Keys under a prefix, straight from the server. */
async function keys(url: string): Promise<string[]> {
  const store = new S3BlobStore(parseS3Url(url));
  try {
    return (await store.listKeys()).sort();
  } finally {
    store.close();
  }
}

function idsInShards(state: { config: unknown }, n: number): { ids: string[]; shards: Set<number> } {
  const ids: string[] = [];
  const shards = new Set<number>();
  for (let i = 0; ids.length < n && i < 100000; i++) {
    const p = placeRecord(`d${i}`, state.config as never);
    if (p.split === 'train' && !shards.has(p.shard)) {
      shards.add(p.shard);
      ids.push(`d${i}`);
    }
  }
  return { ids, shards };
}

describe('object-store workspaces (ingest --store) on a loopback S3 server', () => {
  let s3: S3TestServer;
  let undoEnv: () => void;
  let dir: string;
  before(async () => {
    s3 = await startS3([BUCKET]);
    undoEnv = useS3Env(s3); // CLI children inherit the endpoint and s3rver's test credentials
    dir = await tempDir();
  });
  after(async () => {
    undoEnv();
    await s3.dispose();
  });

  it('ingest/train/delete locally keep blobs in the bucket, equal a plain workspace, and leave no superseded blob', async () => {
    const corpus = await makeCorpus(dir, { rows: 1500 });
    const wsS3 = path.join(dir, 's3');
    const wsLocal = path.join(dir, 'local');
    const url = `s3://${BUCKET}/local-train`;
    const args = ['--shards', '3', '--slices', '2', '--seed', '5', '--quiet'];
    await cliJson(['ingest', corpus, '--workdir', wsS3, '--store', url, ...args]);
    await cliJson(['ingest', corpus, '--workdir', wsLocal, ...args]);
    const ingested = await readState(wsS3);
    assert.equal(ingested.store, url);
    assert.equal((await keys(url)).length, 3 + 1, 'three shard files and the test split');
    await cliJson(['train', '--workdir', wsS3, '--epochs', '3', '--quiet']);
    await cliJson(['train', '--workdir', wsLocal, '--epochs', '3', '--quiet']);
    const trained = await readState(wsS3);
    assert.deepEqual(
      trained.models.map((m: { modelHash: string }) => m.modelHash),
      (await readState(wsLocal)).models.map((m: { modelHash: string }) => m.modelHash),
    );
    assert.equal((await keys(url)).length, 4 + 3 * 2, 'plus two checkpoints per shard');
    const st = await cliJson(['status', '--workdir', wsS3]);
    assert.equal(st.store.url, url);
    const text = await runCli(['status', '--workdir', wsS3]);
    assert.match(text.stdout, new RegExp(`blobs in ${url} at ${s3.endpoint.replace(/[.]/g, '\\.')}`));
    assert.doesNotMatch(text.stdout + JSON.stringify(trained), /S3RVER/, 'no credentials in status or manifest');

    const { ids, shards } = idsInShards(trained, 1);
    const shard = [...shards][0]!;
    const before = await keys(url);
    const del = await cliJson(['delete', '--workdir', wsS3, '--id', ids[0]!, '--quiet']);
    assert.deepEqual(del.retrained.map((r: { shard: number }) => r.shard), [shard]);
    const after = await keys(url);
    const oldShard = `local-train/shard/${trained.shards[shard].sha256}`;
    assert.ok(before.includes(oldShard) && !after.includes(oldShard), 'the shard file with the deleted record is gone from the bucket');
    const v = await cliJson(['verify', '--workdir', wsS3, '--deep']);
    assert.equal(v.ok, true, JSON.stringify(v.problems));
    assert.match(v.checks.find((c: { name: string }) => c.name === 'store').detail, /nothing else under the prefix; every blob in the store matches its hash/);

    // A stray object under the prefix (e.g. a superseded blob that a crash left behind) fails verify.
    const raw = new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    await raw.send(new PutObjectCommand({ Bucket: BUCKET, Key: oldShard, Body: 'old bytes' }));
    raw.destroy();
    const bad = await runCli(['verify', '--workdir', wsS3]);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout + bad.stderr, new RegExp(`s3://${BUCKET}/${oldShard}: not referenced by the manifest`));
    await cliJson(['recover', '--workdir', wsS3]);
    assert.equal((await cliJson(['verify', '--workdir', wsS3])).ok, true, 'recover swept the stray blob');

    // The workspace's shards/ is only a cache: without it, evaluation fetches what it needs from the bucket.
    const expected = await cliJson(['evaluate', '--workdir', wsS3]);
    await fsp.rm(path.join(wsS3, 'shards'), { recursive: true });
    assert.equal(typeof expected.auc, 'number');
    assert.deepEqual(await cliJson(['evaluate', '--workdir', wsS3]), expected);
  });

  it('a missing bucket is one line naming the bucket and operation, and ingest commits nothing', async () => {
    const corpus = await makeCorpus(dir, { rows: 300, seed: 2 });
    const ws = path.join(dir, 'nobucket');
    const r = await runCli(['ingest', corpus, '--workdir', ws, '--store', 's3://no-such-bucket/x', '--shards', '2', '--quiet']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^sisa: error: S3 (list shard|head bucket): bucket 'no-such-bucket' does not exist at http:\/\/127\.0\.0\.1:\d+\n$/);
    assert.doesNotMatch(r.stderr, /S3RVER/);
    assert.deepEqual(Object.keys(await snapshot(ws)).filter((f) => !f.startsWith('manifests/')), [], 'no shard files left behind');
    const bad = await runCli(['ingest', corpus, '--workdir', ws, '--store', 'http://bucket/x']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--store must look like s3:\/\/bucket\/prefix/);
  });

  it('missing or refused credentials are one line that names no secret, and nothing is committed', async () => {
    const corpus = await makeCorpus(dir, { rows: 300, seed: 3 });
    const ws = path.join(dir, 'creds');
    const store = `s3://${BUCKET}/creds`;
    const none = await runCli(['ingest', corpus, '--workdir', ws, '--store', store, '--shards', '2', '--quiet'], {
      env: { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: '', AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'), AWS_CONFIG_FILE: path.join(dir, 'none'), AWS_EC2_METADATA_DISABLED: 'true' },
    });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^sisa: error: S3 (head|list) \S+( \S+)?: no AWS credentials found[^\n]*\n$/);
    const wrong = await runCli(['ingest', corpus, '--workdir', ws, '--store', store, '--shards', '2', '--quiet'], { env: { AWS_ACCESS_KEY_ID: 'NOTAKEY', AWS_SECRET_ACCESS_KEY: 'TOPSECRET123' } });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /^sisa: error: S3 [^\n]*bucket 'sisa-cli'[^\n]*\n$/);
    assert.doesNotMatch(wrong.stderr, /TOPSECRET123|NOTAKEY/);
    assert.equal(await fsp.access(path.join(ws, 'manifests', 'state.json')).then(() => true, () => false), false, 'nothing committed');
  });

  it('the server stopped mid-run gives a clear error and commits nothing; the retry succeeds', async () => {
    const corpus = await makeCorpus(dir, { rows: 1200, seed: 4 });
    const ws = path.join(dir, 'outage');
    const url = `s3://${BUCKET}/outage`;
    await cliJson(['ingest', corpus, '--workdir', ws, '--store', url, '--shards', '2', '--slices', '2', '--quiet']);
    const snap = await snapshot(ws);
    const run = runCli(['train', '--workdir', ws, '--epochs', '40', '--concurrency', '1'], { env: { AWS_MAX_ATTEMPTS: '2' } });
    // Stop the server while the shards train (before the checkpoints go up).
    await new Promise((r) => setTimeout(r, 300));
    await s3.stop();
    let r;
    try {
      r = await run;
    } finally {
      await s3.restart();
    }
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^sisa: error: S3 list shard on s3://${BUCKET}/outage \\(http://127\\.0\\.0\\.1:${s3.port}\\) failed after retries: ECONNREFUSED; nothing was committed\\n$`));
    assert.deepEqual((await snapshot(ws))['manifests/state.json'], snap['manifests/state.json'], 'nothing committed');
    assert.equal((await readState(ws)).models.length, 0);
    await cliJson(['train', '--workdir', ws, '--epochs', '2', '--quiet']);
    assert.equal((await readState(ws)).models.length, 2);
    assert.equal((await cliJson(['verify', '--workdir', ws])).ok, true);
  });
});

const haveRedis = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error === undefined;
const skipQueue = process.env.SISA_TEST_REDIS || haveRedis ? false : 'redis-server not installed (Debian: apt-get install redis-server; .ci/run installs it)';

describe('queue workers with no workspace (worker --cache) and an S3 store', { skip: skipQueue }, () => {
  let s3: S3TestServer;
  let undoEnv: () => void;
  let redis: ChildProcess | null = null;
  let url: string;
  let dir: string;
  const workers: ChildProcess[] = [];
  const queueName = `sisa-s3-test-${process.pid}`;

  before(async () => {
    s3 = await startS3([BUCKET]);
    undoEnv = useS3Env(s3);
    if (process.env.SISA_TEST_REDIS) url = process.env.SISA_TEST_REDIS;
    else {
      const port = 20000 + ((process.pid + 7) % 20000);
      redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      url = `redis://127.0.0.1:${port}`;
      await new Promise((r) => setTimeout(r, 400));
    }
    dir = await tempDir();
  });
  after(async () => {
    for (const w of workers) w.kill('SIGKILL');
    redis?.kill('SIGTERM');
    undoEnv();
    await s3.dispose();
  });

  /** A worker whose working directory and cache are its own folder: it never sees the workspace. */
  async function startWorker(name: string, extra: string[] = [], cache?: string): Promise<{ proc: ChildProcess; log: () => string; cache: string }> {
    const home = await tempDir(`sisa-worker-${name}-`);
    cache ??= path.join(home, 'cache');
    let log = '';
    const proc = spawn(process.execPath, [sisaBin, 'worker', '--queue', url, '--queue-name', queueName, '--concurrency', '1', '--lock-duration', '3000', '--cache', cache, ...extra], {
      cwd: home,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    workers.push(proc);
    await until(() => log.includes('worker ready'), 20000, `worker ${name}`);
    return { proc, log: () => log, cache };
  }

  async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function cachedFiles(cache: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (d: string) => {
      for (const e of await fsp.readdir(d, { withFileTypes: true }).catch(() => [])) {
        if (e.isDirectory()) await walk(path.join(d, e.name));
        else out.push(e.name);
      }
    };
    await walk(cache);
    return out;
  }

  it('two cache workers, one SIGKILLed mid-job, equal a local train; delete --queue retrains one shard and removes superseded blobs', async () => {
    const corpus = await makeCorpus(dir, { rows: 6000 });
    const ws = path.join(dir, 'queue-s3');
    const wsLocal = path.join(dir, 'local');
    const store = `s3://${BUCKET}/queue`;
    const args = ['--shards', '8', '--slices', '2', '--seed', '3', '--quiet'];
    await cliJson(['ingest', corpus, '--workdir', ws, '--store', store, ...args]);
    await cliJson(['ingest', corpus, '--workdir', wsLocal, ...args]);
    await cliJson(['train', '--workdir', wsLocal, '--epochs', '30', '--quiet']);
    // The workspace's cached shard files go: the workers can only have their inputs from the bucket.
    for (const f of await fsp.readdir(path.join(ws, 'shards'))) if (f.startsWith('shard-')) await fsp.rm(path.join(ws, 'shards', f));

    const w1 = await startWorker('w1');
    const w2 = await startWorker('w2');
    const trainRun = runCli(['train', '--workdir', ws, '--queue', url, '--queue-name', queueName, '--epochs', '30', '--json', '--quiet']);
    await until(() => /start \S+ shard \d+/.test(w1.log()), 30000, 'worker 1 to take a job');
    w1.proc.kill('SIGKILL');
    const r = await trainRun;
    assert.equal(r.code, 0, r.stderr);
    const trained = await readState(ws);
    const local = await readState(wsLocal);
    assert.deepEqual(trained.models.map((m: { modelHash: string }) => m.modelHash), local.models.map((m: { modelHash: string }) => m.modelHash), 'identical to a local train');
    const killedShard = Number(/start \S+ shard (\d+)/.exec(w1.log())![1]);
    assert.match(w2.log(), new RegExp(`done \\S+ shard ${killedShard} `), 'the surviving worker finished the killed worker’s job');
    assert.ok((await cachedFiles(w2.cache)).includes(`${trained.shards[killedShard].sha256}.arrow`), 'the worker fetched the shard into its cache');

    // One deleted id: exactly its shard is retrained on the queue; the old shard file and checkpoints leave the bucket.
    const first = idsInShards(trained, 1);
    const shard = [...first.shards][0]!;
    const del = await cliJson(['delete', '--workdir', ws, '--queue', url, '--queue-name', queueName, '--id', first.ids[0]!, '--quiet']);
    assert.deepEqual(del.retrained.map((x: { shard: number }) => x.shard), [shard]);
    const deleted = await readState(ws);
    for (let s = 0; s < 8; s++) if (s !== shard) assert.deepEqual(deleted.models[s], trained.models[s], `shard ${s} untouched`);
    const bucket = new Set(await keys(store));
    const superseded = [`queue/shard/${trained.shards[shard].sha256}`, ...trained.models[shard].checkpoints.slice(deleted.models[shard].checkpoints.findIndex((c: string, i: number) => c !== trained.models[shard].checkpoints[i])).map((c: string) => `queue/checkpoint/${c}`)];
    for (const k of superseded) assert.ok(!bucket.has(k), `${k} removed from the bucket`);
    assert.equal(bucket.size, 8 + 1 + 16, 'exactly the blobs the manifest names');
    const v = await cliJson(['verify', '--workdir', ws, '--deep']);
    assert.equal(v.ok, true, JSON.stringify(v.problems));

    // The worker drops the superseded shard file from its cache when it takes its next job.
    assert.ok((await cachedFiles(w2.cache)).includes(`${trained.shards[shard].sha256}.arrow`));
    const second = idsInShards({ config: deleted.config }, 2);
    const other = second.ids.find((id) => {
      const p = placeRecord(id, deleted.config);
      return p.split === 'train' && p.shard !== shard;
    })!;
    await cliJson(['delete', '--workdir', ws, '--queue', url, '--queue-name', queueName, '--id', other, '--quiet']);
    assert.ok(!(await cachedFiles(w2.cache)).includes(`${trained.shards[shard].sha256}.arrow`), 'dropped from the worker cache');
    assert.match(w2.log(), /dropped \d+ cached blob\(s\) no longer in s3:\/\//);
  });

  it('the S3 server stopped during a queue train: a clear error, nothing committed; then a successful retry', async () => {
    const corpus = await makeCorpus(dir, { rows: 1500, seed: 8 });
    const ws = path.join(dir, 'queue-outage');
    await cliJson(['ingest', corpus, '--workdir', ws, '--store', `s3://${BUCKET}/queue-outage`, '--shards', '2', '--slices', '2', '--quiet']);
    const snap = await snapshot(ws);
    if (!workers.some((w) => w.exitCode === null && !w.killed)) await startWorker('w4');
    const run = runCli(['train', '--workdir', ws, '--queue', url, '--queue-name', queueName, '--epochs', '40'], { env: { AWS_MAX_ATTEMPTS: '2' } });
    await new Promise((r) => setTimeout(r, 300));
    await s3.stop();
    let r;
    try {
      r = await run;
    } finally {
      await s3.restart();
    }
    assert.equal(r.code, 1, r.stderr);
    // Whichever request met the outage first (a worker's fetch or upload, or the commit's check), one line says so.
    assert.match(r.stderr, new RegExp(`^sisa: error: (shard \\d+: job failed on the queue: )?S3 [a-z]+ [^\\n]*on s3://${BUCKET}/queue-outage \\(http://127\\.0\\.0\\.1:${s3.port}\\) failed after retries: ECONNREFUSED; nothing was committed\\n$`));
    assert.deepEqual(await snapshot(ws), snap, 'workspace unchanged');
    await cliJson(['train', '--workdir', ws, '--queue', url, '--queue-name', queueName, '--epochs', '2', '--quiet']);
    assert.equal((await readState(ws)).models.length, 2);
    assert.equal((await cliJson(['verify', '--workdir', ws])).ok, true);
  });

  it('an idle worker drops cached blobs that the store no longer holds, and keeps the others', async () => {
    const corpus = await makeCorpus(dir, { rows: 600, seed: 9 });
    const ws = path.join(dir, 'sweep');
    const store = `s3://${BUCKET}/sweep`;
    await cliJson(['ingest', corpus, '--workdir', ws, '--store', store, '--shards', '2', '--quiet']);
    const st = await readState(ws);
    // A cache as an earlier run of this worker left it: one live shard blob and one the store has dropped.
    const cache = path.join(await tempDir('sisa-sweep-'), 'cache');
    const sub = path.join(cache, createHash('sha256').update(store).digest('hex').slice(0, 16));
    await fsp.mkdir(path.join(sub, 'shards'), { recursive: true });
    await fsp.writeFile(path.join(sub, 'store.url'), store);
    const live = `${st.shards[0].sha256}.arrow`;
    const gone = `${'0'.repeat(64)}.arrow`;
    await fsp.copyFile(path.join(ws, 'shards', st.shards[0].file), path.join(sub, 'shards', live));
    await fsp.writeFile(path.join(sub, 'shards', gone), 'rows of a superseded shard');
    const w = await startWorker('sweeper', ['--cache-sweep', '1'], cache);
    await until(() => /dropped 1 cached blob\(s\) no longer in s3:\/\/sisa-cli\/sweep/.test(w.log()), 15000, 'the idle sweep');
    assert.deepEqual((await fsp.readdir(path.join(sub, 'shards'))).sort(), [live]);
    w.proc.kill('SIGTERM');
    const bad = await runCli(['worker', '--queue', url, '--cache', cache, '--cache-sweep', '0']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--cache-sweep must be at least 1 second/);
  });

  it('a worker handed a corrupted blob fails the job permanently; the workspace is unchanged', async () => {
    const corpus = await makeCorpus(dir, { rows: 1200, seed: 5 });
    const ws = path.join(dir, 'corrupt');
    const store = `s3://${BUCKET}/corrupt`;
    await cliJson(['ingest', corpus, '--workdir', ws, '--store', store, '--shards', '3', '--slices', '2', '--quiet']);
    const st = await readState(ws);
    const raw = new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    await raw.send(new PutObjectCommand({ Bucket: BUCKET, Key: `corrupt/shard/${st.shards[1].sha256}`, Body: 'flipped bits' }));
    raw.destroy();
    const snap = await snapshot(ws);
    if (!workers.some((w) => w.exitCode === null && !w.killed)) await startWorker('w3');
    const r = await runCli(['train', '--workdir', ws, '--queue', url, '--queue-name', queueName, '--quiet']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^sisa: error: shard 1: job failed on the queue: shard blob [0-9a-f]{12} in s3:\/\/sisa-cli\/corrupt does not match its content hash[^\n]*\n$/);
    assert.deepEqual(await snapshot(ws), snap, 'workspace unchanged');
    const q = await cliJson(['status', '--workdir', ws, '--queue', url, '--queue-name', queueName]);
    const failed = q.queue.shards.filter((j: { state: string }) => j.state === 'failed');
    assert.deepEqual(failed.map((j: { shard: number; attempts: number }) => [j.shard, j.attempts]), [[1, 1]], 'failed once, not retried');
  });
});

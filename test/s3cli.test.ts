/**
 * Workspaces whose blobs live in S3-compatible storage (`ingest --store`), through the real CLI and a
 * real S3 API server (s3rver) on loopback; queue tests also use a real redis-server.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
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
    await s3.stop();
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

/**
 * S3BlobStore against a real S3 API server on loopback (s3rver), through the real AWS SDK client.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { S3BlobStore, parseS3Url } from '../src/storage/s3BlobStore.js';
import { BlobCorruptError } from '../src/storage/blobStore.js';
import { SisaError } from '../src/util/errors.js';
import { startS3, useS3Env, type S3TestServer } from './s3server.js';
import { tempDir } from './helpers.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('S3BlobStore on a loopback S3 server', () => {
  let s3: S3TestServer;
  let undoEnv: () => void;
  before(async () => {
    s3 = await startS3(['sisa-test']);
    undoEnv = useS3Env(s3);
  });
  after(async () => {
    undoEnv();
    await s3.dispose();
  });

  it('puts, lists, gets (hash verified) and removes blobs under the prefix', async () => {
    const store = new S3BlobStore(parseS3Url('s3://sisa-test/a/b'));
    const bytes = new TextEncoder().encode('checkpoint bytes');
    const h = await store.put('checkpoint', bytes);
    assert.equal(h, sha(bytes));
    assert.equal(await store.put('checkpoint', bytes), h, 'idempotent');
    assert.deepEqual(await store.has('checkpoint', h), { size: bytes.byteLength });
    assert.equal(await store.has('shard', h), null, 'kinds are separate');
    assert.deepEqual(await store.get('checkpoint', h), bytes);
    assert.deepEqual(await store.list(), [{ kind: 'checkpoint', sha256: h, size: bytes.byteLength }]);
    assert.deepEqual(await store.listKeys(), [`a/b/checkpoint/${h}`]);
    await store.remove([{ kind: 'checkpoint', sha256: h }, { kind: 'shard', sha256: h }]);
    assert.deepEqual(await store.list(), []);
    store.close();
  });

  it('uploads a large file in parts and refuses a file whose content does not match its hash', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'big.arrow');
    const bytes = randomBytes(11 * 1024 * 1024);
    await fsp.writeFile(file, bytes);
    const store = new S3BlobStore(parseS3Url('s3://sisa-test/big'), { partSize: 5 * 1024 * 1024 });
    await store.putFile('shard', file, sha(bytes));
    assert.equal(sha(await store.get('shard', sha(bytes))), sha(bytes));
    const wrong = 'f'.repeat(64);
    await assert.rejects(store.putFile('shard', file, wrong), /changed while it was uploaded/);
    assert.equal(await store.has('shard', wrong), null, 'the mismatching upload is not left behind');
    store.close();
  });

  it('a blob whose bytes do not match its name is a permanent BlobCorruptError', async () => {
    const store = new S3BlobStore(parseS3Url('s3://sisa-test/c'));
    const h = await store.put('shard', new TextEncoder().encode('original'));
    // Overwrite the object behind the store's back, as a broken disk or a hostile writer would.
    const raw = new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    await raw.send(new PutObjectCommand({ Bucket: 'sisa-test', Key: `c/shard/${h}`, Body: 'tampered' }));
    raw.destroy();
    await assert.rejects(store.get('shard', h), (e: unknown) => e instanceof BlobCorruptError && e.code === 'STATE' && /does not match its content hash/.test(e.message));
    store.close();
  });

  it('putFile replaces an object of the right name but the wrong size (a damaged upload) instead of skipping it', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'ckpt');
    const bytes = randomBytes(4096);
    await fsp.writeFile(file, bytes);
    const store = new S3BlobStore(parseS3Url('s3://sisa-test/e'));
    const raw = new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    await raw.send(new PutObjectCommand({ Bucket: 'sisa-test', Key: `e/checkpoint/${sha(bytes)}`, Body: bytes.subarray(0, 100) }));
    raw.destroy();
    await store.putFile('checkpoint', file, sha(bytes));
    assert.deepEqual(Buffer.from(await store.get('checkpoint', sha(bytes))), bytes);
    store.close();
  });

  it('a missing bucket is one line naming the bucket and the operation, without credentials', async () => {
    const store = new S3BlobStore(parseS3Url('s3://no-such-bucket/p'));
    await assert.rejects(store.put('checkpoint', new Uint8Array([1])), (e: unknown) => {
      assert.ok(e instanceof SisaError);
      assert.match(e.message, /^S3 (head|put) checkpoint [0-9a-f]{12}: bucket 'no-such-bucket' does not exist/);
      assert.doesNotMatch(e.message, /\n|S3RVER/);
      return true;
    });
    store.close();
  });

  it('a stopped server is a clear error after retries; the same call succeeds once it is back', async () => {
    const store = new S3BlobStore(parseS3Url('s3://sisa-test/d'), { maxAttempts: 2 });
    await s3.stop();
    try {
      await assert.rejects(store.put('checkpoint', new Uint8Array([7, 7])), (e: unknown) => {
        assert.ok(e instanceof SisaError);
        assert.match(e.message, new RegExp(`^S3 head checkpoint [0-9a-f]{12} on s3://sisa-test/d \\(${s3.endpoint.replace(/[.]/g, '\\.')}\\) failed after retries: ECONNREFUSED; nothing was committed$`));
        return true;
      });
    } finally {
      await s3.restart();
    }
    const h = await store.put('checkpoint', new Uint8Array([7, 7]));
    assert.deepEqual(await store.get('checkpoint', h), new Uint8Array([7, 7]));
    store.close();
  });

  it('refuses store URLs that are not s3://bucket/prefix', () => {
    assert.throws(() => parseS3Url('http://x/y'), /--store must look like s3:\/\/bucket\/prefix/);
    assert.throws(() => parseS3Url('s3://key:secret@bucket/p'), (e: unknown) => e instanceof SisaError && !/secret/.test(e.message));
    assert.deepEqual(parseS3Url('s3://my-bucket/a/b/'), { bucket: 'my-bucket', prefix: 'a/b' });
  });
});

/**
 * The blob seam's contract, run against both implementations: the workspace folder (FsBlobStore) and an
 * S3 API server on loopback (S3BlobStore). Shard jobs read and the coordinator checks blobs through it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BlobCorruptError, BlobMissingError, type BlobStore } from '../src/storage/blobStore.js';
import { FsBlobStore, folderOfStoreUrl, folderStoreUrl } from '../src/storage/fsBlobStore.js';
import { FsMetaStore } from '../src/storage/metaStore.js';
import { S3BlobStore, parseS3Url } from '../src/storage/s3BlobStore.js';
import { startS3, useS3Env, type S3TestServer } from './s3server.js';
import { tempDir } from './helpers.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const bytesOf = (s: string) => new TextEncoder().encode(s);
/** Implementations may return a Buffer or a plain Uint8Array: compare the bytes. */
const plain = async (b: Promise<Uint8Array>) => new Uint8Array(await b);

function contract(name: string, open: () => Promise<BlobStore>): void {
  it(`${name}: put is idempotent, get returns the bytes, has the size, list and remove agree`, async () => {
    const store = await open();
    const a = bytesOf('checkpoint A');
    const b = bytesOf('shard B, a little longer');
    const ha = await store.put('checkpoint', a);
    assert.equal(ha, sha(a));
    assert.equal(await store.put('checkpoint', a), ha, 'a second put of the same bytes is the same blob');
    const hb = await store.put('shard', b);
    assert.deepEqual(await plain(store.get('checkpoint', ha)), a);
    assert.deepEqual(await plain(store.get('shard', hb)), b);
    assert.deepEqual(await store.has('checkpoint', ha), { size: a.byteLength });
    assert.equal(await store.has('checkpoint', hb), null, 'a shard is not a checkpoint');
    const listed = (await store.list()).map((r) => `${r.kind}/${r.sha256}/${r.size}`).sort();
    assert.deepEqual(listed, [`checkpoint/${ha}/${a.byteLength}`, `shard/${hb}/${b.byteLength}`].sort());
    await store.remove([{ kind: 'checkpoint', sha256: ha }, { kind: 'checkpoint', sha256: 'e'.repeat(64) }]);
    assert.equal(await store.has('checkpoint', ha), null, 'removed');
    await assert.rejects(store.get('checkpoint', ha), (e: unknown) => e instanceof BlobMissingError && e.code === 'STATE');
    assert.deepEqual((await store.list('checkpoint')).length, 0);
  });
}

describe('the blob seam', () => {
  let s3: S3TestServer;
  let undoEnv: () => void;
  let dir: string;
  before(async () => {
    dir = await tempDir();
    s3 = await startS3(['blob-contract']);
    undoEnv = useS3Env(s3);
  });
  after(async () => {
    undoEnv();
    await s3.dispose();
  });

  let n = 0;
  contract('FsBlobStore (a workspace folder)', async () => {
    const root = path.join(dir, `fs-${++n}`);
    return new FsBlobStore({ shardsDir: path.join(root, 'shards'), checkpointsDir: path.join(root, 'shards', 'checkpoints') });
  });
  contract('S3BlobStore (an S3 API server on loopback)', async () => new S3BlobStore(parseS3Url(`s3://blob-contract/run-${++n}`)));

  it('FsBlobStore finds a shard file by the hash in its writer-given name, and refuses one whose bytes changed', async () => {
    const root = path.join(dir, 'named');
    const store = new FsBlobStore({ shardsDir: path.join(root, 'shards'), checkpointsDir: path.join(root, 'shards', 'checkpoints') });
    const bytes = bytesOf('rows of shard 3');
    const h = sha(bytes);
    await fsp.mkdir(path.join(root, 'shards'), { recursive: true });
    const file = path.join(root, 'shards', `shard-003-${h.slice(0, 12)}.arrow`);
    await fsp.writeFile(file, bytes);
    assert.equal(await store.file('shard', h), file);
    assert.deepEqual(await plain(store.get('shard', h)), bytes);
    assert.deepEqual(await store.list('shard'), [{ kind: 'shard', sha256: h, size: bytes.byteLength }]);
    await fsp.writeFile(file, bytesOf('rows of shard 3, edited'));
    await assert.rejects(store.get('shard', h), (e: unknown) => e instanceof BlobCorruptError && /does not match its content hash/.test((e as Error).message));
  });

  it('a folder store URL round-trips to the folder (what a local shard job carries instead of paths)', () => {
    const folder = path.join(dir, 'a folder with spaces', 'ws');
    const url = folderStoreUrl(folder);
    assert.match(url, /^file:\/\//);
    assert.equal(folderOfStoreUrl(url), folder);
  });
});

describe('the metadata seam (FsMetaStore over manifests/)', () => {
  it('reads null for an absent document, replaces documents whole, appends lines, lists and removes durably', async () => {
    const dir = await tempDir();
    const meta = new FsMetaStore(path.join(dir, 'manifests'));
    assert.equal(await meta.read('state.json'), null);
    assert.deepEqual(await meta.list('pending'), []);
    await meta.write('state.json', '{"revision":1}\n');
    await meta.write('state.json', '{"revision":2}\n');
    assert.equal(await meta.read('state.json'), '{"revision":2}\n');
    assert.deepEqual((await fsp.readdir(path.join(dir, 'manifests'))).sort(), ['state.json'], 'no temporary file left behind');
    await meta.append('journal.jsonl', '{"seq":1}');
    await meta.append('journal.jsonl', '{"seq":2}\n');
    assert.equal(await meta.read('journal.jsonl'), '{"seq":1}\n{"seq":2}\n');
    await meta.write('pending/000002.json', '{}\n');
    await meta.write('pending/000001.json', '{}\n');
    assert.deepEqual(await meta.list('pending'), ['000001.json', '000002.json']);
    await meta.remove('pending/000001.json');
    await meta.remove('pending/000009.json');
    assert.deepEqual(await meta.list('pending'), ['000002.json']);
    assert.equal(meta.where('deletions/000001.json'), path.join(dir, 'manifests', 'deletions', '000001.json'));
  });

  it('a read error other than absence is raised, not taken for an absent document', async () => {
    const dir = await tempDir();
    const meta = new FsMetaStore(path.join(dir, 'manifests'));
    await fsp.mkdir(path.join(dir, 'manifests', 'state.json'), { recursive: true }); // a folder where a file should be
    await assert.rejects(meta.read('state.json'), /EISDIR/);
  });
});

/** `sisa status` shows what a workspace costs: its folder's size by kind, and its blobs' in an object store. */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliJson, makeCorpus, runCli, tempDir } from './helpers.js';
import { startS3, useS3Env, type S3TestServer } from './s3server.js';

/** Sizes of every file under a folder, summed here independently of sisa. */
async function sizes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += (await fsp.stat(path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name))).size;
  }
  return n;
}

describe('status: workspace size', () => {
  let dir: string;
  let corpus: string;
  before(async () => {
    dir = await tempDir();
    corpus = await makeCorpus(dir, { rows: 600 });
  });

  it('adds up every file of the workspace, by kind, in JSON and in words', async () => {
    const ws = path.join(dir, 'ws');
    await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '2', '--slices', '2', '--quiet']);
    const ingested = (await cliJson(['status', '--workdir', ws])).disk;
    assert.equal(ingested.checkpoints, 0);
    assert.equal(ingested.data, await sizes(path.join(ws, 'shards')));
    await cliJson(['train', '--workdir', ws, '--quiet']);
    await fsp.writeFile(path.join(ws, 'notes.txt'), 'x'.repeat(1234));
    const s = (await cliJson(['status', '--workdir', ws])).disk;
    assert.equal(s.bytes, await sizes(ws));
    assert.equal(s.checkpoints, await sizes(path.join(ws, 'shards', 'checkpoints')));
    assert.equal(s.data + s.checkpoints, await sizes(path.join(ws, 'shards')));
    assert.equal(s.manifests, await sizes(path.join(ws, 'manifests')));
    assert.equal(s.other, 1234);
    assert.equal(s.data + s.checkpoints + s.manifests + s.other, s.bytes);
    const human = await runCli(['status', '--workdir', ws]);
    assert.match(human.stdout, /^size \d+(\.\d+)? (kB|MB) on disk \(data .* checkpoints .* manifests .* other 1\.23 kB\)$/m);
  });

  describe('with an object store', () => {
    let s3: S3TestServer;
    let undoEnv: () => void;
    before(async () => {
      s3 = await startS3(['sizes']);
      undoEnv = useS3Env(s3);
    });
    after(async () => {
      undoEnv();
      await s3.dispose();
    });

    it("also shows the blobs' size in the bucket, and still answers when the store is down", async () => {
      const ws = path.join(dir, 'ws-s3');
      await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '2', '--slices', '2', '--store', 's3://sizes/team', '--quiet']);
      await cliJson(['train', '--workdir', ws, '--quiet']);
      const s = await cliJson(['status', '--workdir', ws]);
      // Every blob is in the local cache too right after training: the same files, the same bytes.
      assert.equal(s.store.size.bytes, s.disk.data + s.disk.checkpoints);
      assert.equal(s.store.size.blobs, (await fsp.readdir(path.join(ws, 'shards'), { recursive: true })).filter((f) => /\.(arrow|ckpt)$/.test(String(f))).length);
      assert.match((await runCli(['status', '--workdir', ws])).stdout, /^store size \d+(\.\d+)? (kB|MB) in \d+ blob\(s\)$/m);
      await s3.stop();
      try {
        const down = await runCli(['status', '--workdir', ws, '--json'], { env: { AWS_MAX_ATTEMPTS: '1' } });
        assert.equal(down.code, 0, down.stderr);
        const j = JSON.parse(down.stdout);
        assert.equal(j.store.size.bytes, null);
        assert.match(j.store.size.error, /sizes/);
        assert.equal(j.disk.bytes, s.disk.bytes);
      } finally {
        await s3.restart();
      }
    });
  });
});

/**
 * Exactness is pinned to the runtime that trained the models: a retrain on another backend gives other
 * weights, so it is refused with one line naming both, and nothing is written.
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { placeRecord } from '../src/data/assign.js';
import { generateCorpus } from '../src/demo/corpus.js';
import { decodeCheckpoint } from '../src/models/checkpoint.js';
import { cliJson, makeCorpus, nothingPending, readState, runCli, snapshot, tempDir } from './helpers.js';

describe('runtime pinning', () => {
  let ws: string;
  let victim: string;

  before(async () => {
    const dir = await tempDir();
    const corpus = await makeCorpus(dir, { rows: 600 });
    ws = path.join(dir, 'ws');
    await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '2', '--slices', '2', '--quiet']);
    await cliJson(['train', '--workdir', ws, '--backend', 'wasm', '--quiet']);
    const state = await readState(ws);
    assert.equal(state.training.backend, 'wasm');
    victim = [...generateCorpus({ rows: 600, seed: 11 })].find((r) => placeRecord(r.id, state.config).split === 'train')!.id;
  });

  it('delete --backend cpu on a wasm-trained workspace is refused and changes nothing', async () => {
    const snap = await snapshot(ws);
    const r = await runCli(['delete', '--workdir', ws, '--id', victim, '--backend', 'cpu']);
    assert.notEqual(r.code, 0, 'a retrain on another backend must not commit');
    assert.match(r.stderr, /^sisa: error: [^\n]+\n$/, `one-line error, got: ${r.stderr}`);
    assert.match(r.stderr, /'wasm'/);
    assert.match(r.stderr, /'cpu'/);
    assert.deepEqual(await snapshot(ws), snap, 'workspace unchanged');
    assert.ok(await nothingPending(ws), 'no operation left pending');
  });

  it('delete --backend wasm (the trained one) still works', async () => {
    const r = await cliJson(['delete', '--workdir', ws, '--id', victim, '--backend', 'wasm', '--quiet']);
    assert.deepEqual(r.deleted, [victim]);
  });
});

describe('runtime versions (tfjs release, wasm build) are pinned too', () => {
  let dir: string;
  let trained: string;
  let victim: string;
  const copy = async (from: string, to: string) => (await fsp.cp(from, to, { recursive: true }), to);

  before(async () => {
    dir = await tempDir();
    const corpus = await makeCorpus(dir, { rows: 600 });
    trained = path.join(dir, 'trained');
    await cliJson(['ingest', corpus, '--workdir', trained, '--shards', '2', '--slices', '2', '--quiet']);
    await cliJson(['train', '--workdir', trained, '--backend', 'wasm', '--quiet']);
    const state = await readState(trained);
    victim = [...generateCorpus({ rows: 600, seed: 11 })].find((r) => { const p = placeRecord(r.id, state.config); return p.split === 'train' && p.slice === 1; })!.id;
  });

  it('every model records its runtime: tfjs version and the wasm build', async () => {
    const state = await readState(trained);
    for (const m of state.models) {
      assert.equal(m.runtime.backend, 'wasm');
      assert.match(m.runtime.versions.tfjs, /^\d+\.\d+\.\d+/);
      assert.match(m.runtime.versions.wasm, /^\d+\.\d+\.\d+ (simd|nosimd) (threads|nothreads)$/);
    }
    assert.deepEqual(state.training.runtime, state.models[0].runtime);
    for (const m of state.models)
      for (const sha of m.checkpoints) {
        const ckpt = decodeCheckpoint(new Uint8Array(await fsp.readFile(path.join(trained, 'shards', 'checkpoints', `${sha}.ckpt`))));
        assert.deepEqual(ckpt.meta.runtime, m.runtime, 'every checkpoint carries its runtime');
      }
  });

  it('a model from another tfjs release: delete refuses naming both; --full-retrain retrains the shard from scratch, exactly', async () => {
    const reference = await copy(trained, path.join(dir, 'reference'));
    await cliJson(['delete', '--workdir', reference, '--id', victim, '--quiet']);
    const expected = (await readState(reference)).models.map((m: { modelHash: string }) => m.modelHash);

    const ws = await copy(trained, path.join(dir, 'old-tfjs'));
    const statePath = path.join(ws, 'manifests', 'state.json');
    const state = await readState(ws);
    const real = state.models[0].runtime.versions.tfjs;
    for (const m of state.models) m.runtime.versions.tfjs = '0.0.1-old';
    state.training.runtime.versions.tfjs = '0.0.1-old';
    await fsp.writeFile(statePath, JSON.stringify(state, null, 2) + '\n');
    const snap = await snapshot(ws);

    const r = await runCli(['delete', '--workdir', ws, '--id', victim]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^sisa: error: [^\n]+\n$/, `one line: ${r.stderr}`);
    assert.ok(r.stderr.includes('tfjs 0.0.1-old') && r.stderr.includes(`tfjs ${real}`), `names both runtimes: ${r.stderr}`);
    assert.match(r.stderr, /--full-retrain/);
    assert.deepEqual(await snapshot(ws), snap, 'nothing written');

    const full = await cliJson(['delete', '--workdir', ws, '--id', victim, '--full-retrain', '--quiet']);
    assert.deepEqual(full.deleted, [victim]);
    assert.equal(full.retrained.length, 1);
    assert.equal(full.retrained[0].fromSlice, 0, 'retrained from scratch');
    const after = await readState(ws);
    const shard = full.retrained[0].shard;
    assert.equal(after.models[shard].modelHash, expected[shard], 'equals the deletion from the checkpoint on the original runtime');
    assert.equal(after.models[shard].runtime.versions.tfjs, real, 'the retrained model records this runtime');
    assert.equal(after.models[1 - shard].runtime.versions.tfjs, '0.0.1-old', 'the other shard is untouched');
  });
});

describe('returned checkpoints are verified before the commit', () => {
  for (const [fault, pattern] of [
    ['SISA_LOSE_OUTPUT_AT', /is not in .*; nothing was committed/],
    ['SISA_DAMAGE_OUTPUT_AT', /does not match its hash .*; nothing was committed/],
  ] as const) {
    it(`${fault}: a lost or damaged checkpoint fails train with one line and leaves the workspace as it was`, async () => {
      const dir = await tempDir();
      const corpus = await makeCorpus(dir, { rows: 600 });
      const ws = path.join(dir, 'ws');
      await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '2', '--slices', '2', '--quiet']);
      const snap = await snapshot(ws);
      const r = await runCli(['train', '--workdir', ws, '--quiet'], { env: { [fault]: 'job:checkpoint-stored@2' } });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^sisa: error: shard \d+: checkpoint [0-9a-f]{12} returned by the runner [^\n]*\n$/);
      assert.match(r.stderr, pattern);
      assert.deepEqual(await snapshot(ws), snap, 'workspace unchanged');
      assert.ok(await nothingPending(ws), 'no operation left pending');
    });
  }
});

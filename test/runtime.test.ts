/**
 * Exactness is pinned to the runtime that trained the models: a retrain on another backend gives other
 * weights, so it is refused with one line naming both, and nothing is written.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { placeRecord } from '../src/data/assign.js';
import { generateCorpus } from '../src/demo/corpus.js';
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

/** Smoke test of `sisa bench` on a tiny data set: it completes and its JSON has every field. No timing assertions. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cliJson } from './helpers.js';

describe('sisa bench', () => {
  it('runs on a tiny synthetic set and reports every measurement', async () => {
    const r = await cliJson(['bench', '--synthetic', '1500', '--shards', '2', '--slices', '2', '--repeat', '1', '--quiet']);
    assert.equal(typeof r.train.examplesPerSec, 'number');
    assert.ok(r.train.examplesPerSec > 0);
    for (const peer of ['sklearn', 'fasttext']) {
      const p = r.peers[peer];
      assert.ok(p, peer);
      if (p.examplesPerSec === null) assert.equal(typeof p.reason, 'string', `${peer} absent says why`);
      else {
        assert.equal(typeof p.examplesPerSec, 'number');
        assert.equal(typeof p.auc, 'number');
      }
    }
    assert.equal(typeof r.sisaAuc, 'number');
    for (const k of ['speedup', 'ideal', 'ratio']) assert.equal(typeof r.unlearning[k], 'number', `unlearning.${k}`);
    assert.equal(r.unlearning.ideal, (2 * 2 * 2) / 3);
    for (const k of ['locate', 'rewrite', 'startWorkers', 'restore', 'retrain', 'save', 'commit', 'refit', 'processStartAndExit']) assert.equal(typeof r.unlearning.breakdown[k], 'number', k);
    assert.equal(typeof r.unlearning.batch100.seconds, 'number');
    assert.equal(typeof r.ingest.rowsPerSec, 'number');
    assert.equal(typeof r.ingest.peakRssBytes, 'number');
    assert.ok(r.ingest.peakRssBytes > 0);
    assert.equal(typeof r.predict.rowsPerSec, 'number');
    assert.equal(typeof r.predict.rowsPerSecS32, 'number');
    for (const k of ['featuriseRowsPerSecOneCore', 'scoreRowsPerSecOneCore', 'scoreRowsPerSecOneCoreS32']) assert.ok(r.predict[k] > 0, `predict.${k}`);
    assert.ok(Array.isArray(r.verdicts) && r.verdicts.length >= 4);
  });
});

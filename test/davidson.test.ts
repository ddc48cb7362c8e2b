/**
 * Acceptance on real data (../shared/data/davidson): 8 shards × 4 slices, 20% test, seed 7, through the
 * CLI. Skipped, saying why, where the shared data folder is absent (a user's machine).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { placeRecord } from '../src/data/assign.js';
import { cliJson, readState, sharedData, tempDir } from './helpers.js';

const davidson = path.join(sharedData, 'davidson', 'labeled_data.csv');
const skip = existsSync(davidson) ? false : `shared data not found at ${davidson}`;

describe('Davidson hate-speech data', { skip }, () => {
  it('reaches AUC ≥ 0.975 and accuracy ≥ 0.925, and forgets one id and a batch of 50', async () => {
    const ws = path.join(await tempDir(), 'ws');
    const ing = await cliJson(['ingest', davidson, '--workdir', ws, '--label-col', 'class', '--positive-values', '0,1', '--shards', '8', '--slices', '4', '--test', '0.2', '--seed', '7', '--quiet']);
    assert.equal(ing.accepted, 24783);
    assert.equal(ing.columns.text, 'tweet');
    await cliJson(['train', '--workdir', ws, '--quiet']);
    const ev = await cliJson(['evaluate', '--workdir', ws, '--aggregate', 'mean']);
    assert.ok(ev.auc >= 0.975, `test AUC ${ev.auc}`);
    assert.ok(ev.accuracy >= 0.925, `test accuracy ${ev.accuracy}`);

    const state = await readState(ws);
    const trainIds = Array.from({ length: 24783 }, (_, i) => String(i)).filter((id) => placeRecord(id, state.config).split === 'train');
    const one = await cliJson(['delete', '--workdir', ws, '--id', trainIds[0]!, '--quiet']);
    assert.deepEqual(one.deleted, [trainIds[0]]);
    assert.equal(one.retrained.length, 1);
    const idsFile = path.join(path.dirname(ws), 'batch.txt');
    await fsp.writeFile(idsFile, trainIds.slice(1, 51).join('\n'));
    const batch = await cliJson(['delete', '--workdir', ws, '--ids-file', idsFile, '--quiet']);
    assert.equal(batch.deleted.length, 50);
    assert.ok(batch.retrained.length <= 8);
    const st = await cliJson(['status', '--workdir', ws]);
    assert.equal(st.deletions.records, 51);
    assert.equal(st.shards.reduce((s: number, x: { rows: number }) => s + x.rows, 0), ing.shards.reduce((s: number, x: { rows: number }) => s + x.rows, 0) - 51);
    const after = await cliJson(['evaluate', '--workdir', ws, '--aggregate', 'mean']);
    assert.ok(after.auc >= 0.97, `AUC after deletions ${after.auc}`);
  });

  it('FairSISA: votes meets equalized odds on calibration and, over 10 re-splits, is fairer than the plain ensemble at ≤ 3 points of accuracy', async () => {
    const ws = path.join(await tempDir(), 'ws');
    const ing = await cliJson(['ingest', davidson, '--workdir', ws, '--label-col', 'class', '--positive-values', '0,1', '--group-terms', 'builtin', '--shards', '8', '--slices', '4', '--test', '0.2', '--calibration', '0.2', '--seed', '7', '--quiet']);
    assert.ok(ing.groups.any > 1000);
    await cliJson(['train', '--workdir', ws, '--quiet']);
    const wiki = path.join(sharedData, 'wiki-toxicity', 'toxicity_nonfuzzed_testset.csv');
    const r = await cliJson(['report', '--workdir', ws, '--resplits', '10', '--baseline', '--resamples', '200', '--eval', wiki, '--eval-text-col', 'comment', '--eval-label-col', 'toxic']);
    const names = new Set(r.methods.map((m: { name: string }) => m.name));
    assert.deepEqual(names, new Set(['monolithic', 'sisa', 'per-model', 'ensemble', 'votes']));
    const splits = new Set(r.methods.map((m: { split: string }) => m.split));
    assert.deepEqual(splits, new Set(['calibration', 'test', 'eval:toxicity_nonfuzzed_testset.csv']));
    const votesCal = r.methods.find((m: any) => m.name === 'votes' && m.split === 'calibration');
    assert.ok(votesCal.expected.eoDifference < 1e-6, `calibration EO ${votesCal.expected.eoDifference}`);
    assert.equal(r.resplits.count, 10);
    const mean = (n: string) => r.resplits.methods.find((m: { name: string }) => m.name === n);
    assert.ok(mean('votes').meanEoDifference < mean('sisa').meanEoDifference, `votes ${mean('votes').meanEoDifference} vs sisa ${mean('sisa').meanEoDifference}`);
    assert.ok(mean('sisa').meanAccuracy - mean('votes').meanAccuracy <= 0.03, 'accuracy cost at most 3 points');
  });
});

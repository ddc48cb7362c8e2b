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
});

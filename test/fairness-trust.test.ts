/**
 * Issue 9 items 8 and 9: the stored fairness fit (what `predict --fair` uses in production) changes only
 * through `sisa fairness fit` (or the refit after train/delete), and a fit made before a change to the
 * calibration data is never used as if it were current.
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { placeRecord } from '../src/data/assign.js';
import { generateCorpus } from '../src/demo/corpus.js';
import { readState, runCli, tempDir, trainedFairWorkspace } from './helpers.js';

describe('the stored fairness fit', () => {
  let dir: string;
  let ws: string;
  let newCsv: string;
  const fitPath = () => path.join(ws, 'manifests', 'fairness.json');

  before(async () => {
    dir = await tempDir();
    ws = await trainedFairWorkspace(dir);
    newCsv = path.join(dir, 'new.csv');
    const texts = [...generateCorpus({ rows: 200, seed: 99, groupRate: 0.5 })];
    await fsp.writeFile(newCsv, 'id,text\n' + texts.map((r, i) => `n${i},"${r.text.replace(/"/g, '""')}"`).join('\n') + '\n');
  });

  it('a report for another tolerance or attribute fits in memory and leaves production unchanged', async () => {
    const fitBefore = await fsp.readFile(fitPath());
    const predictBefore = await runCli(['predict', newCsv, '--workdir', ws, '--fair', 'votes', '--json']);
    assert.equal(predictBefore.code, 0, predictBefore.stderr);
    const state = await readState(ws);
    const attributes: string[] = state.config.groups.map((g: { name: string }) => g.name);
    const other = attributes.find((a) => a !== 'any');
    const variants = [['--eo-tolerance', '0.1'], ...(other ? [['--attribute', other]] : [])];
    for (const extra of variants) {
      const r = await runCli(['report', '--workdir', ws, '--out', path.join(dir, `report-${extra[1]}`), '--resamples', '20', '--quiet', ...extra]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await fsp.readFile(fitPath()), fitBefore, `report ${extra.join(' ')} rewrote manifests/fairness.json`);
    }
    const predictAfter = await runCli(['predict', newCsv, '--workdir', ws, '--fair', 'votes', '--json']);
    assert.equal(predictAfter.stdout, predictBefore.stdout, 'predict --fair changed after a report');
  });

  it('a deletion of calibration rows only makes the old fit stale; a crash before the refit is repaired by recover', async () => {
    const state = await readState(ws);
    const victim = [...generateCorpus({ rows: 3000, seed: 5, groupRate: 0.3, annotatorBias: 0.3 })]
      .map((r) => r.id)
      .find((id) => placeRecord(id, state.config).split === 'calibration')!;
    const fitBefore = JSON.parse(await fsp.readFile(fitPath(), 'utf8'));
    const oldFitBytes = await fsp.readFile(fitPath());

    const crashed = await runCli(['delete', '--workdir', ws, '--id', victim, '--quiet'], { env: { SISA_CRASH_AT: 'fairness:before-write' } });
    assert.notEqual(crashed.code, 0, 'the crash point fired');
    const rec = await runCli(['recover', '--workdir', ws, '--json']);
    assert.equal(rec.code, 0, rec.stderr);
    const fitAfter = JSON.parse(await fsp.readFile(fitPath(), 'utf8'));
    assert.equal(fitAfter.calibrationRows, fitBefore.calibrationRows - 1, 'recover refitted without the deleted calibration row');
    const ok = await runCli(['predict', newCsv, '--workdir', ws, '--fair', 'votes', '--json']);
    assert.equal(ok.code, 0, ok.stderr);

    // The fit from before the deletion, put back (a restored backup, say), is refused, not used.
    await fsp.writeFile(fitPath(), oldFitBytes);
    const stale = await runCli(['predict', newCsv, '--workdir', ws, '--fair', 'votes']);
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /fairness.*(fitted|stale).*sisa fairness fit/);
    assert.equal(stale.stderr.trim().split('\n').length, 1);
  });
});

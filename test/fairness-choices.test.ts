/**
 * Issue 11 through the CLI: the constraint, objective and minimum group size a user picks are fitted,
 * recorded and shown; bad values are one-line usage errors that leave the stored fit as it was.
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { generateCorpus } from '../src/demo/corpus.js';
import { cliJson, runCli, tempDir, trainedFairWorkspace } from './helpers.js';

describe("fairness fit: the user's constraint, objective and minimum group", () => {
  let dir: string;
  let ws: string;
  const fitPath = () => path.join(ws, 'manifests', 'fairness.json');
  const texts = [...generateCorpus({ rows: 300, seed: 99, groupRate: 0.5 })].map((r) => r.text);
  const csv = (rows: [string, string][]) => 'id,text\n' + rows.map(([id, t]) => `${id},"${t.replace(/"/g, '""')}"`).join('\n') + '\n';

  before(async () => {
    dir = await tempDir();
    ws = await trainedFairWorkspace(dir);
  });

  it('fpr-parity at a cost with --min-group 1000 leaves every small group out, says why, and records the choices', async () => {
    const r = await runCli(['fairness', 'fit', '--workdir', ws, '--constraint', 'fpr-parity', '--objective', 'cost', '--fn-cost', '5', '--fp-cost', '1', '--min-group', '1000']);
    assert.equal(r.code, 0, r.stderr);
    // 600 calibration rows: no group has 1000 negatives.
    assert.match(r.stdout, /fpr-parity within 0, minimising cost \(missed toxic 5, false flag 1\)/);
    assert.match(r.stdout, /warning: group 'other' is not constrained: \d+ negatives < --min-group 1000/);
    assert.match(r.stdout, /warning: group 'any' is not constrained: \d+ negatives < --min-group 1000/);
    const fit = await cliJson(['fairness', 'show', '--workdir', ws]);
    assert.equal(fit.constraint, 'fpr-parity');
    assert.equal(fit.objective, 'cost');
    assert.deepEqual([fit.fnCost, fit.fpCost, fit.minGroup], [5, 1, 1000]);
    assert.deepEqual(fit.groups.map((g: any) => [g.name, g.constrained]), [['other', false], ['any', false]]);
    assert.equal(fit.groups.reduce((s: number, g: any) => s + g.positives + g.negatives, 0), fit.calibrationRows);
    for (const m of fit.methods) assert.equal(typeof m.calibrationGap, 'number');
  });

  it('a fit by hand keeps each choice it is not given, as the refit does (README: sisa fairness fit)', async () => {
    await cliJson(['fairness', 'fit', '--workdir', ws, '--eo-tolerance', '0.05', '--decision', 'threshold']);
    const fit = await cliJson(['fairness', 'show', '--workdir', ws]);
    // From the fit of the test before: fpr-parity, cost 5 / 1, --min-group 1000.
    assert.deepEqual([fit.constraint, fit.objective, fit.fnCost, fit.fpCost, fit.minGroup], ['fpr-parity', 'cost', 5, 1, 1000]);
    assert.deepEqual([fit.tolerance, fit.decision], [0.05, 'threshold']);
  });

  it('the refit after a deletion keeps the choices; older fits without them read as equalized odds for accuracy', async () => {
    await cliJson(['fairness', 'fit', '--workdir', ws, '--constraint', 'equal-opportunity', '--objective', 'balanced-accuracy', '--min-group', '5']);
    const del = await cliJson(['delete', '--workdir', ws, '--id', 'd11', '--id', 'd12', '--id', 'd13', '--quiet']);
    assert.deepEqual(del.fairness, { refitted: true });
    const fit = await cliJson(['fairness', 'show', '--workdir', ws]);
    assert.deepEqual([fit.constraint, fit.objective, fit.minGroup, fit.stale], ['equal-opportunity', 'balanced-accuracy', 5, false]);
    const stored = JSON.parse(await fsp.readFile(fitPath(), 'utf8'));
    for (const k of ['constraint', 'objective', 'fnCost', 'fpCost', 'minGroup', 'groups']) delete stored[k];
    for (const m of stored.methods) delete m.calibrationGap;
    await fsp.writeFile(fitPath(), JSON.stringify(stored) + '\n');
    const old = await cliJson(['fairness', 'show', '--workdir', ws]);
    assert.deepEqual([old.constraint, old.objective, old.stale], ['equalized-odds', 'accuracy', false]);
    const text = await runCli(['fairness', 'show', '--workdir', ws]);
    assert.match(text.stdout, /calibration group counts: not recorded/);
  });

  it('bad values are one-line usage errors naming the flag, and the stored fit stays as it was', async () => {
    await cliJson(['fairness', 'fit', '--workdir', ws]);
    const before = await fsp.readFile(fitPath());
    const cases: [string[], RegExp][] = [
      [['--constraint', 'parity'], /constraint.*parity/],
      [['--objective', 'recall'], /objective.*recall/],
      [['--objective', 'cost', '--fn-cost', '5'], /--objective cost needs both --fn-cost and --fp-cost/],
      [['--objective', 'cost', '--fn-cost', '0', '--fp-cost', '1'], /--fn-cost must be a number > 0, got 0/],
      [['--objective', 'cost', '--fn-cost', '2', '--fp-cost', '-1'], /--fp-cost must be a number > 0, got -1/],
      [['--fn-cost', '2', '--fp-cost', '1', '--objective', 'accuracy'], /--fn-cost and --fp-cost apply only to --objective cost/],
      [['--min-group', '2.5'], /--min-group must be a whole number >= 0, got 2.5/],
      [['--eo-tolerance', '2'], /--eo-tolerance must be in \[0, 1\], got 2/],
    ];
    for (const [flags, message] of cases) {
      const r = await runCli(['fairness', 'fit', '--workdir', ws, ...flags]);
      assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.deepEqual(await fsp.readFile(fitPath()), before, `${flags.join(' ')} left the fit as it was`);
    }
  });

  it('--decision threshold: 0/1 tables, the constraint met on calibration, labels that do not depend on ids or order', async () => {
    const fit = await cliJson(['fairness', 'fit', '--workdir', ws, '--decision', 'threshold', '--eo-tolerance', '0.1', '--min-group', '0']);
    assert.equal(fit.decision, 'threshold');
    for (const m of fit.methods) {
      for (const table of m.tables) for (const row of table) assert.ok(row.every((x: number) => x === 0 || x === 1), `${m.method}: ${JSON.stringify(row)}`);
      // per-model thresholds each model, so only the single-table methods are held to ε as a whole.
      if (m.method !== 'per-model') assert.ok(m.calibrationGap <= 0.1 + 1e-9, `${m.method} gap ${m.calibrationGap}`);
    }
    const show = await runCli(['fairness', 'show', '--workdir', ws]);
    assert.match(show.stdout, /threshold decisions/);
    assert.match(show.stdout, /votes threshold for 'any': (flag at \d+ or more of \d+ votes|always flag|never flag)/);
    const a = path.join(dir, 'a.csv');
    const b = path.join(dir, 'b.csv');
    await fsp.writeFile(a, csv(texts.map((t, i) => [`a${i}`, t])));
    // The same texts under other ids, in reverse order.
    await fsp.writeFile(b, csv(texts.map((t, i) => [`zz-${(i * 7919) % 100003}`, t] as [string, string]).reverse()));
    const first = await cliJson(['predict', a, '--workdir', ws, '--fair', 'votes']);
    assert.deepEqual(await cliJson(['predict', a, '--workdir', ws, '--fair', 'votes']), first, 'the same output on every run');
    const other = await cliJson(['predict', b, '--workdir', ws, '--fair', 'votes']);
    const byText = (r: any, ids: string[]) => new Map(r.predictions.map((p: any, i: number) => [ids[i], p.label]));
    const la = byText(first, texts);
    const lb = byText(other, [...texts].reverse());
    assert.deepEqual([...lb.entries()].sort(), [...la.entries()].sort());
    for (const method of ['ensemble', 'per-model']) {
      const x = await cliJson(['predict', a, '--workdir', ws, '--fair', method]);
      const y = await cliJson(['predict', b, '--workdir', ws, '--fair', method]);
      assert.deepEqual(x.predictions.map((p: any) => p.label), y.predictions.map((p: any) => p.label).reverse(), method);
    }
  });

  it('predict --fair says per row what decided the label: votes, group, flag probability, method (JSON and CSV)', async () => {
    await cliJson(['fairness', 'fit', '--workdir', ws, '--decision', 'randomized', '--eo-tolerance', '0', '--min-group', '0']);
    const fit = await cliJson(['fairness', 'show', '--workdir', ws]);
    const f = path.join(dir, 'why.csv');
    await fsp.writeFile(f, csv(texts.slice(0, 120).map((t, i) => [`w${i}`, t])));
    const plain = await cliJson(['predict', f, '--workdir', ws]);
    const S = fit.models.length;
    for (const method of ['votes', 'ensemble', 'per-model']) {
      const r = await cliJson(['predict', f, '--workdir', ws, '--fair', method]);
      const table = fit.methods.find((m: any) => m.method === method).tables;
      r.predictions.forEach((p: any, i: number) => {
        assert.deepEqual(Object.keys(p), ['id', 'score', 'votes', 'group', 'flagProbability', 'label', 'method']);
        assert.equal(p.method, method);
        assert.equal(p.score, plain.predictions[i].score, 'the score is the plain vote share');
        assert.ok(Math.abs(p.votes / S - p.score) < 1e-12, 'score = votes / S');
        const g = fit.groups.findIndex((x: any) => x.name === p.group);
        assert.ok(g >= 0, `group ${p.group}`);
        if (method === 'votes') assert.equal(p.flagProbability, table[0][g][p.votes]);
        if (method === 'ensemble') assert.equal(p.flagProbability, table[0][g][2 * p.votes >= S ? 1 : 0]);
        if (p.flagProbability === 0) assert.equal(p.label, 0);
        if (p.flagProbability === 1) assert.equal(p.label, 1);
      });
      const text = await runCli(['predict', f, '--workdir', ws, '--fair', method]);
      assert.equal(text.code, 0, text.stderr);
      const lines = text.stdout.trim().split('\n');
      assert.equal(lines[0], 'id,score,votes,group,flagProbability,label,method');
      const cells = lines[1]!.split(',');
      const p0 = r.predictions[0];
      assert.deepEqual(cells, [p0.id, p0.score.toFixed(6), String(p0.votes), p0.group, p0.flagProbability.toFixed(6), String(p0.label), method]);
    }
    // Without --fair the output is as before.
    const text = await runCli(['predict', f, '--workdir', ws]);
    assert.equal(text.stdout.split('\n')[0], 'id,score,label');
  });

  it('--cv 5 and --eo-tolerance auto: out-of-fold rows per method and ε, the same on every run, ε chosen by the stated rule', async () => {
    const fit = await cliJson(['fairness', 'fit', '--workdir', ws, '--decision', 'randomized', '--cv', '5', '--eo-tolerance', 'auto', '--min-group', '0']);
    assert.equal(fit.cv.folds, 5);
    assert.deepEqual([...new Set(fit.cv.rows.map((r: any) => r.tolerance))], [0, 0.02, 0.05, 0.1]);
    assert.deepEqual([...new Set(fit.cv.rows.map((r: any) => r.method))].sort(), ['ensemble', 'per-model', 'votes']);
    const votes = fit.cv.rows.filter((r: any) => r.method === 'votes');
    const expected = (votes.find((r: any) => r.violation <= r.noise) ?? votes[votes.length - 1]).tolerance;
    assert.equal(fit.cv.chosenTolerance, expected);
    assert.equal(fit.tolerance, expected, 'the fit uses the chosen ε');
    const again = await cliJson(['fairness', 'fit', '--workdir', ws]);
    assert.deepEqual(again.cv, fit.cv, 'a refit with the same seed cross-fits to the same numbers');
    const text = await runCli(['fairness', 'show', '--workdir', ws]);
    assert.match(text.stdout, /cross-fitted on the calibration split, 5 folds/);
    assert.match(text.stdout, /--eo-tolerance auto chose ε = /);
    const before = await fsp.readFile(fitPath());
    for (const [flags, message] of [[['--cv', '1'], /--cv must be a whole number of folds >= 2, got 1/], [['--eo-tolerance', 'loose'], /--eo-tolerance must be a number in \[0, 1\] or 'auto', got 'loose'/]] as [string[], RegExp][]) {
      const r = await runCli(['fairness', 'fit', '--workdir', ws, ...flags]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    }
    assert.deepEqual(await fsp.readFile(fitPath()), before);
  });
});


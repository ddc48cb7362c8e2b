/** FairSISA through the CLI on the generated biased-annotator corpus: fit, predict --fair, report, refit after delete. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { before, describe, it } from 'node:test';
import { cliJson, makeCorpus, readState, runCli, tempDir } from './helpers.js';

const run = promisify(execFile);
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

describe('FairSISA through the CLI', () => {
  let dir: string;
  let ws: string;
  let corpus: string;

  before(async () => {
    dir = await tempDir();
    // ≥ 20k rows, 30% mention an identity term, annotators over-label those mentions as toxic.
    corpus = await makeCorpus(dir, { rows: 20000, seed: 7, groupRate: 0.3, annotatorBias: 0.3 });
    ws = path.join(dir, 'ws');
    const ing = await cliJson(['ingest', corpus, '--workdir', ws, '--group-terms', 'builtin', '--test', '0.2', '--calibration', '0.2', '--seed', '7', '--quiet']);
    assert.ok(ing.groups.any / ing.accepted >= 0.25, `group share ${ing.groups.any / ing.accepted}`);
    const tr = await cliJson(['train', '--workdir', ws, '--quiet']);
    assert.deepEqual(tr.fairness, { refitted: true }, 'post-processors are fitted automatically after train');
  });

  it('the votes post-processor at least halves the equalized-odds difference, and meets the constraint on calibration', async () => {
    const out = path.join(dir, 'report');
    const r = await cliJson(['report', '--workdir', ws, '--out', out, '--resamples', '100']);
    assert.equal(r.sensitive, 'any');
    const get = (name: string, split: string) => r.methods.find((m: any) => m.name === name && m.split === split);
    for (const split of ['calibration', 'test'])
      for (const name of ['sisa', 'per-model', 'ensemble', 'votes']) {
        const m = get(name, split);
        assert.ok(m, `${name} on ${split}`);
        for (const k of ['accuracy', 'eoDifference']) assert.equal(typeof m[k], 'number');
        assert.equal(m.eoDifferenceCI.length, 2);
        assert.ok(m.eoDifferenceCI[0] <= m.eoDifferenceCI[1]);
        for (const k of ['tpr', 'fpr']) for (const g of ['sensitive', 'other']) assert.equal(typeof m[k][g], 'number');
      }
    const plain = get('sisa', 'test');
    const votes = get('votes', 'test');
    assert.ok(votes.eoDifference <= plain.eoDifference / 2, `votes ${votes.eoDifference} vs plain ${plain.eoDifference}`);
    assert.ok(get('votes', 'calibration').expected.eoDifference < 1e-6, 'equalized odds on calibration to LP precision');
    assert.ok(get('votes', 'calibration').expected.accuracy >= get('ensemble', 'calibration').expected.accuracy - 1e-9);
    for (const f of ['report.json', 'report.md', 'report.html']) assert.ok(existsSync(path.join(out, f)), f);
    const md = await fsp.readFile(path.join(out, 'report.md'), 'utf8');
    assert.match(md, /\| votes \|/);
    assert.match(md, new RegExp(r.reproduce.datasetFingerprint));
  });

  it('predict --fair applies the fitted post-processor, reproducibly', async () => {
    const f = path.join(dir, 'new.csv');
    await fsp.writeFile(f, 'id,text\na,"as a muslim i think so"\nb,"you worthless idiot"\nc,"lovely weather today"\n');
    const first = await cliJson(['predict', f, '--workdir', ws, '--fair', 'votes']);
    const second = await cliJson(['predict', f, '--workdir', ws, '--fair', 'votes']);
    assert.deepEqual(first, second);
    assert.equal(first.predictions.length, 3);
    assert.equal(first.predictions[1].label, 1);
    const bad = await runCli(['predict', f, '--workdir', ws, '--fair', 'magic']);
    assert.equal(bad.code, 2);
  });

  it('refits after a deletion and records how fairness moved', async () => {
    const state = await readState(ws);
    const del = await cliJson(['delete', '--workdir', ws, '--id', 'd5', '--id', 'd6', '--id', 'd7', '--quiet']);
    assert.deepEqual(del.fairness, { refitted: true });
    const show = await cliJson(['fairness', 'show', '--workdir', ws]);
    assert.equal(show.stale, false);
    const after = await readState(ws);
    assert.ok(after.revision > state.revision);
    const history = JSON.parse(await fsp.readFile(path.join(ws, 'manifests', 'fairness-history.json'), 'utf8'));
    assert.equal(history.length, 2);
    assert.equal(history[1].deletedRecords, del.deleted.length);
  });

  it('the HTML report renders its charts in headless Chromium', { skip: CHROMIUM ? false : 'Debian chromium is not installed (.ci/run installs it)' }, async () => {
    const out = path.join(dir, 'report-html');
    await cliJson(['report', '--workdir', ws, '--out', out, '--resamples', '50']);
    const html = path.join(out, 'report.html');
    const profile = await fsp.mkdtemp(path.join(dir, 'chromium-'));
    const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`];
    const dom = (await run(CHROMIUM!, [...flags, '--dump-dom', `file://${html}`], { maxBuffer: 64 << 20 })).stdout;
    const svgs = dom.match(/<svg[\s>]/g) ?? [];
    assert.ok(svgs.length >= 6, `charts rendered as SVG in the page: ${svgs.length}`);
    assert.match(dom, /equalized-odds difference/);
    assert.match(dom, /<path|<circle|<symbol/);
    const png = path.join(out, 'report.png');
    await run(CHROMIUM!, [...flags, `--screenshot=${png}`, '--window-size=1300,1800', `file://${html}`]);
    const bytes = await fsp.readFile(png);
    assert.equal(bytes.subarray(1, 4).toString(), 'PNG');
    assert.ok(bytes.length > 20000, `a screenshot with content: ${bytes.length} bytes`);
  });
});

describe('sensitive groups from a column', () => {
  it('are used by predict --fair, and a file without that column is refused', async () => {
    const dir = await tempDir();
    const rows = Array.from({ length: 600 }, (_, i) => {
      const member = i % 3 === 0 ? 1 : 0;
      const toxic = i % 2;
      return `g${i},"${toxic ? 'you idiot' : 'nice day'} word${i % 17}",${toxic},${member}`;
    });
    const data = path.join(dir, 'data.csv');
    await fsp.writeFile(data, 'id,text,label,minority\n' + rows.join('\n') + '\n');
    const ws = path.join(dir, 'ws');
    const ing = await cliJson(['ingest', data, '--workdir', ws, '--group-col', 'minority', '--calibration', '0.2', '--shards', '2', '--slices', '2', '--quiet']);
    assert.equal(ing.groups.minority, 200);
    assert.equal(ing.groups.any, 200);
    await cliJson(['train', '--workdir', ws, '--quiet']);
    const withCol = path.join(dir, 'with.csv');
    await fsp.writeFile(withCol, 'id,text,minority\na,nice day,1\nb,you idiot,0\n');
    const p = await cliJson(['predict', withCol, '--workdir', ws, '--fair', 'votes']);
    assert.equal(p.predictions.length, 2);
    const without = path.join(dir, 'without.csv');
    await fsp.writeFile(without, 'id,text\na,nice day\n');
    const r = await runCli(['predict', without, '--workdir', ws, '--fair', 'votes']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /without\.csv: sensitive-group column 'minority' not found; fairness needs it/);
  });
});

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

  it('the JSON report has a verdict computed from its own numbers, data sizes and all-groups metrics', async () => {
    const r = await cliJson(['report', '--workdir', ws, '--out', path.join(dir, 'report-verdict'), '--resamples', '100']);
    assert.equal(r.criterion.name, 'equalized-odds');
    const test = r.methods.filter((m: any) => m.split === 'test');
    const sisa = test.find((m: any) => m.name === 'sisa');
    const chosen = test.find((m: any) => m.name === r.verdict.method);
    assert.ok(chosen, `verdict names a method of the table: ${r.verdict.method}`);
    assert.equal(r.verdict.from, sisa.eoDifference);
    assert.equal(r.verdict.to, chosen.eoDifference);
    for (const x of [sisa.eoDifference, chosen.eoDifference]) assert.ok(r.verdict.text.includes(x.toFixed(3)), `${x.toFixed(3)} in: ${r.verdict.text}`);
    assert.ok(r.verdict.text.includes(`${((sisa.accuracy - chosen.accuracy) * 100).toFixed(1)} accuracy points`), r.verdict.text);
    // The corpus is built so that votes clearly helps: the verdict must say so, not hedge.
    assert.equal(r.verdict.lowersGap, true);
    assert.equal(r.verdict.withinInterval, false);
    // Data sizes add up, per split and per group.
    const sizes = r.data.find((d: any) => d.split === 'test');
    assert.equal(sizes.rows, sisa.rows);
    assert.equal(sizes.positives + sizes.negatives, sizes.rows);
    assert.equal(sizes.byGroup.reduce((s: number, g: any) => s + g.rows, 0), sizes.rows);
    assert.deepEqual(sizes.byGroup.map((g: any) => g.group), r.groupNames);
    // Per-group rows, ROC AUC included, for every group; the differences are max − min over them.
    for (const m of test) {
      assert.equal(m.byGroup.length, r.groupNames.length);
      for (const g of m.byGroup) assert.ok(g.auc > 0.5 && g.auc <= 1, `${m.name} ${g.group} AUC ${g.auc}`);
      const spread = (k: string) => Math.max(...m.byGroup.map((g: any) => g[k])) - Math.min(...m.byGroup.map((g: any) => g[k]));
      assert.ok(Math.abs(m.fprDifference - spread('fpr')) < 1e-12);
      assert.ok(Math.abs(m.eqOppDifference - spread('tpr')) < 1e-12);
      assert.ok(Math.abs(m.dpDifference - spread('selectionRate')) < 1e-12);
      assert.ok(Math.abs(m.aucDifference - spread('auc')) < 1e-12);
      assert.ok(m.fprDifferenceCI[0] <= m.fprDifferenceCI[1]);
    }
  });

  it('the HTML report reads top-down in headless Chromium at 1280 px: verdict and methods table on the first screen, one colour per method, readable axes', { skip: CHROMIUM ? false : 'Debian chromium is not installed (.ci/run installs it)' }, async () => {
    const out = path.join(dir, 'report-html');
    await cliJson(['report', '--workdir', ws, '--out', out, '--resamples', '50']);
    const html = path.join(out, 'report.html');
    const page = await fsp.readFile(html, 'utf8');
    const profile = await fsp.mkdtemp(path.join(dir, 'chromium-'));
    const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`];
    // A copy of the page with a probe that writes, after layout, where the verdict, the table and the charts are.
    const probe = `<script>(() => { const at = (s) => { const e = document.querySelector(s); if (!e) return null; const b = e.getBoundingClientRect(); return { top: b.top, bottom: b.bottom }; };
      document.body.setAttribute('data-layout', JSON.stringify({ width: innerWidth, height: innerHeight, verdict: at('#verdict'), methods: at('#methods'), charts: at('#charts') })); })();</script>`;
    const probed = path.join(out, 'probe.html');
    await fsp.writeFile(probed, page.replace('</body>', `${probe}</body>`));
    const dom = (await run(CHROMIUM!, [...flags, '--window-size=1280,800', '--dump-dom', `file://${probed}`], { maxBuffer: 64 << 20 })).stdout;
    const layout = JSON.parse((dom.match(/data-layout="([^"]*)"/)?.[1] ?? 'null').replace(/&quot;/g, '"'));
    assert.ok(layout, 'the probe ran');
    assert.equal(layout.width, 1280);
    for (const k of ['verdict', 'methods', 'charts']) assert.ok(layout[k], `#${k} on the page`);
    assert.ok(layout.verdict.bottom <= layout.height, `verdict within the first screen: ${JSON.stringify(layout)}`);
    assert.ok(layout.methods.bottom <= layout.height, `methods table within the first screen: ${JSON.stringify(layout)}`);
    assert.ok(layout.verdict.top < layout.methods.top && layout.methods.bottom <= layout.charts.top, `verdict, table, then charts: ${JSON.stringify(layout)}`);

    const svgs = dom.match(/<svg[\s>]/g) ?? [];
    assert.ok(svgs.length >= 6, `charts rendered as SVG in the page: ${svgs.length}`);
    assert.match(dom, /<path|<circle|<symbol/);
    // Each chart carries a one-line caption.
    const figures = page.match(/<figure class="chart"[\s\S]*?<\/figure>/g) ?? [];
    assert.equal(figures.length, svgs.length);
    for (const f of figures) assert.match(f, /<figcaption>[^<]{20,}<\/figcaption>/);

    // One colour per method in every chart, read from the Vega-Lite specs embedded next to each chart.
    const specs = [...page.matchAll(/<script type="application\/json" class="vega-spec"[^>]*>([\s\S]*?)<\/script>/g)].map((m) => JSON.parse(m[1]!));
    assert.equal(specs.length, figures.length);
    const colourOf = new Map<string, string>();
    let coloured = 0;
    const walk = (node: any, chart: number) => {
      if (!node || typeof node !== 'object') return;
      if (node.color?.field === 'method') {
        const { domain, range } = node.color.scale ?? {};
        assert.ok(Array.isArray(domain) && Array.isArray(range) && domain.length === range.length, `chart ${chart}: method colours come from a fixed scale`);
        domain.forEach((m: string, i: number) => {
          assert.equal(colourOf.get(m) ?? range[i], range[i], `chart ${chart}: ${m} is ${range[i]} here but ${colourOf.get(m)} elsewhere`);
          colourOf.set(m, range[i]);
        });
        coloured++;
      }
      for (const v of Object.values(node)) walk(v, chart);
    };
    specs.forEach((s, i) => walk(s, i));
    assert.ok(coloured >= 5, `method colour encodings checked: ${coloured}`);
    assert.equal(new Set(colourOf.values()).size, colourOf.size, `distinct methods, distinct colours: ${JSON.stringify([...colourOf])}`);
    for (const m of ['sisa', 'per-model', 'ensemble', 'votes']) assert.ok(colourOf.has(m), m);

    // Axis titles a person reads (no Vega "a, b" merged field titles), and the records-deleted axis has integer ticks.
    const axes = [...dom.matchAll(/aria-label="([XY])-axis titled '([^']*)'/g)].map((m) => m[2]!);
    assert.ok(axes.length >= 8, `titled axes: ${axes.length}`);
    for (const t of axes) assert.doesNotMatch(t, /,/, `axis title ${t}`);
    const history = dom.split(/aria-roledescription="axis"/).find((part) => part.startsWith(` aria-label="X-axis titled 'records deleted'`));
    assert.ok(history, 'the history chart has a records-deleted axis');
    const ticks = [...history.split(/role-axis-title/)[0]!.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);
    assert.ok(ticks.length >= 2, `tick labels: ${ticks}`);
    for (const t of ticks) assert.match(t, /^\d[\d,]*$/, `records deleted ticks are integers: ${ticks}`);

    const png = path.join(out, 'report.png');
    await run(CHROMIUM!, [...flags, `--screenshot=${png}`, '--window-size=1280,800', `file://${html}`]);
    const bytes = await fsp.readFile(png);
    assert.equal(bytes.subarray(1, 4).toString(), 'PNG');
    assert.ok(bytes.length > 20000, `a screenshot with content: ${bytes.length} bytes`);
  });

  it('the report says how the post-processors were fitted, shows their cross-fit, and lists the groups --min-group left unconstrained, with the reason', async () => {
    // Last in this suite: it replaces the stored fit.
    const report0 = await cliJson(['report', '--workdir', ws, '--out', path.join(dir, 'report-no-cv'), '--resamples', '20']);
    assert.equal(report0.crossFit, null, 'no cross-fit without --cv');
    await cliJson(['fairness', 'fit', '--workdir', ws, '--min-group', '100000', '--decision', 'threshold', '--cv', '3', '--quiet']);
    const out = path.join(dir, 'report-min-group');
    const r = await cliJson(['report', '--workdir', ws, '--out', out, '--resamples', '20']);
    assert.equal(r.fit.decision, 'threshold');
    assert.equal(r.fit.minGroup, 100000);
    assert.deepEqual(r.fit.unconstrained.map((u: any) => u.group), r.groupNames);
    for (const u of r.fit.unconstrained) assert.match(u.reason, /^\d+ positives and \d+ negatives < --min-group 100000$/);
    assert.equal(r.crossFit.folds, 3);
    assert.ok(r.crossFit.rows.length >= 3 && r.crossFit.rows.every((x: any) => typeof x.accuracy === 'number' && typeof x.gap === 'number'));
    for (const f of ['report.md', 'report.html']) {
      const text = (await fsp.readFile(path.join(out, f), 'utf8')).replace(/&lt;/g, '<');
      assert.match(text, /threshold decisions/, f);
      assert.match(text, /Cross-fitted on the calibration split \(3 folds\)/, f);
      for (const x of r.crossFit.rows) assert.ok(text.includes(x.gap.toFixed(3)), `${f}: cross-fit gap ${x.gap.toFixed(3)} of ${x.method} at ε ${x.tolerance}`);
      assert.match(text, new RegExp(`Not constrained by the fit .*‘${r.groupNames[1]}’ \\(\\d+ positives and \\d+ negatives < --min-group 100000\\)`), f);
    }
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

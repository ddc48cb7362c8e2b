/**
 * Many-valued sensitive attributes (issue 11): a column whose values are the groups (`--group-values`), and
 * the topics of `--group-terms` as values of one attribute (`--overlap intersect|first`), through the CLI:
 * ingest, fit, predict --fair, report, and a deletion that keeps every record's group.
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { groupFlagger } from '../src/data/groups.js';
import type { GroupSpec } from '../src/state/manifest.js';
import { cliJson, makeCorpus, readState, runCli, tempDir } from './helpers.js';

/** Adds a `region` column: north and south for most rows, islands for about 1 in 10 (by the id's hash). */
async function withRegions(corpus: string, out: string): Promise<string> {
  const lines = (await fsp.readFile(corpus, 'utf8')).trimEnd().split('\n');
  const region = (id: string) => {
    let h = 0;
    for (const c of id) h = (h * 31 + c.charCodeAt(0)) % 1000;
    return h % 10 === 0 ? 'islands' : h % 2 === 0 ? 'north' : 'south';
  };
  // The generated corpus has one record per line with the id first, so a column can be appended.
  const rows = [`${lines[0]},region`, ...lines.slice(1).map((l) => `${l},${region(l.slice(0, l.indexOf(',')))}`)];
  await fsp.writeFile(out, rows.join('\n') + '\n');
  return out;
}

describe('many-valued sensitive attributes', () => {
  let dir: string;
  let ws: string;
  let csv: string;
  let ingested: any;

  before(async () => {
    dir = await tempDir();
    csv = await withRegions(await makeCorpus(dir, { rows: 3000, annotatorBias: 0.3 }), path.join(dir, 'regions.csv'));
    ws = path.join(dir, 'ws');
    ingested = await cliJson(['ingest', csv, '--workdir', ws, '--group-values', 'region', '--group-terms', 'builtin', '--overlap', 'first', '--calibration', '0.3', '--shards', '4', '--slices', '2', '--quiet']);
    await cliJson(['train', '--workdir', ws, '--quiet']);
  });

  it('ingest stores each value as a group, counts the rows per value, and keeps the values in the manifest', async () => {
    const regions = ingested.groupValues.region;
    assert.deepEqual(Object.keys(regions).sort(), ['islands', 'north', 'south']);
    assert.equal(Object.values(regions as Record<string, number>).reduce((s, n) => s + n, 0), ingested.accepted);
    assert.ok(regions.islands < regions.north / 3, `islands is the small group: ${JSON.stringify(regions)}`);
    const spec = (await readState(ws)).config.groups.find((g: { name: string }) => g.name === 'region');
    assert.equal(spec.kind, 'values');
    assert.deepEqual([...spec.values].sort(), ['islands', 'north', 'south']);
    assert.equal(ingested.groupValues.topic.none > 0, true, 'texts that mention no topic');
  });

  it('fairness fit on three groups holds the constraint between every pair, and --min-group leaves the small group out', async () => {
    const fit = await cliJson(['fairness', 'fit', '--workdir', ws, '--attribute', 'region', '--min-group', '10']);
    assert.deepEqual(fit.groups.map((g: { name: string }) => g.name).sort(), ['islands', 'north', 'south']);
    assert.ok(fit.groups.every((g: { constrained: boolean }) => g.constrained));
    const votes = fit.methods.find((m: { method: string }) => m.method === 'votes');
    assert.ok(votes.calibrationGap < 1e-6, `exact equalized odds over the three groups on calibration: ${votes.calibrationGap}`);
    const islands = fit.groups.find((g: { name: string }) => g.name === 'islands');
    const minGroup = Math.min(islands.positives, islands.negatives) + 1;
    const partial = await cliJson(['fairness', 'fit', '--workdir', ws, '--attribute', 'region', '--min-group', String(minGroup)]);
    const left = partial.groups.filter((g: { constrained: boolean }) => !g.constrained).map((g: { name: string }) => g.name);
    assert.ok(left.includes('islands'), `islands (${islands.positives}+/${islands.negatives}-) is below --min-group ${minGroup}: ${JSON.stringify(partial.groups)}`);
    const show = await runCli(['fairness', 'show', '--workdir', ws]);
    assert.match(show.stdout, /warning: group 'islands' is not constrained/);
  });

  it('predict --fair names each row group by its value; a value never seen at ingest is one clear line', async () => {
    await cliJson(['fairness', 'fit', '--workdir', ws, '--attribute', 'region', '--min-group', '10']);
    const some = (await fsp.readFile(csv, 'utf8')).split('\n').slice(0, 40).join('\n') + '\n';
    await fsp.writeFile(path.join(dir, 'some.csv'), some);
    const preds = (await cliJson(['predict', path.join(dir, 'some.csv'), '--workdir', ws, '--fair', 'votes'])).predictions;
    const groups = new Set(preds.map((p: { group: string }) => p.group));
    assert.ok([...groups].every((g) => ['north', 'south', 'islands'].includes(g as string)), [...groups].join(','));
    assert.ok(groups.size >= 2);
    await fsp.writeFile(path.join(dir, 'mars.csv'), 'id,text,label,region\nx1,hello there,0,mars\n');
    const bad = await runCli(['predict', path.join(dir, 'mars.csv'), '--workdir', ws, '--fair', 'votes']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^sisa: error: .*mars\.csv: row 1 \(line 2\): column 'region': value 'mars' was not seen at ingest[^\n]*\n$/);
    const plain = await runCli(['predict', path.join(dir, 'mars.csv'), '--workdir', ws]);
    assert.equal(plain.code, 0, `without --fair the group column is not needed: ${plain.stderr}`);
  });

  it('the report covers all three groups, and a deletion keeps every remaining record in its group', async () => {
    const out = path.join(dir, 'report');
    await cliJson(['report', '--workdir', ws, '--attribute', 'region', '--out', out]);
    const report = JSON.parse(await fsp.readFile(path.join(out, 'report.json'), 'utf8'));
    assert.deepEqual([...report.groupNames].sort(), ['islands', 'north', 'south']);
    const state = await readState(ws);
    const victim = 'd7';
    await cliJson(['delete', '--workdir', ws, '--id', victim, '--quiet']);
    const after = await readState(ws);
    assert.deepEqual(after.config.groups, state.config.groups, 'the value lists do not change');
    const fit = await cliJson(['fairness', 'show', '--workdir', ws]);
    assert.equal(fit.stale, false, 'refitted after the deletion');
    assert.equal(fit.attribute, 'region');
    const rows = fit.groups.reduce((s: number, g: { positives: number; negatives: number }) => s + g.positives + g.negatives, 0);
    assert.equal(rows, fit.calibrationRows);
  });

  it('plain predict does not compute many-valued groups: a topic combination never seen at ingest is no error', async () => {
    const ws2 = path.join(dir, 'intersect');
    await cliJson(['ingest', csv, '--workdir', ws2, '--group-terms', 'builtin', '--overlap', 'intersect', '--shards', '2', '--slices', '1', '--quiet']);
    await cliJson(['train', '--workdir', ws2, '--quiet']);
    const file = path.join(dir, 'combo.csv');
    await fsp.writeFile(file, 'id,text\nz1,a muslim and a black man and an old disabled gay woman\n');
    const r = await runCli(['predict', file, '--workdir', ws2]);
    assert.equal(r.code, 0, r.stderr);
  });

  it('--overlap puts a text that mentions several topics into the combination, or into the first topic', () => {
    const specs = (overlap: 'intersect' | 'first'): GroupSpec[] => [
      { kind: 'terms', name: 'pets', source: 'test', terms: ['cat'] },
      { kind: 'terms', name: 'farm', source: 'test', terms: ['cow'] },
      { kind: 'values', name: 'topic', topics: ['pets', 'farm'], overlap, values: ['none'] },
    ];
    const inter = specs('intersect');
    const flag = groupFlagger(inter, { grow: true });
    const codes = ['a cat and a cow', 'only a cow', 'nothing', 'a cat'].map((t) => flag(t, {}).topic!);
    const values = (inter[2] as { values: string[] }).values;
    assert.deepEqual(codes.map((c) => values[c]), ['pets+farm', 'farm', 'none', 'pets']);
    const first = specs('first');
    const flagFirst = groupFlagger(first, { grow: true });
    const firstValues = (first[2] as { values: string[] }).values;
    assert.deepEqual(['a cat and a cow', 'only a cow'].map((t) => firstValues[flagFirst(t, {}).topic!]), ['pets', 'farm']);
    assert.throws(() => groupFlagger(specs('first'))('a cat', {}), /value 'pets' was not seen at ingest/, 'outside ingest, no new group appears');
  });

  it('--overlap needs two topics, and a column with too many values is refused in one line', async () => {
    const one = await runCli(['ingest', csv, '--workdir', path.join(dir, 'one'), '--group-terms', 'builtin:religion', '--overlap', 'first']);
    assert.equal(one.code, 2);
    assert.match(one.stderr, /--overlap needs two topics or more/);
    const many = path.join(dir, 'many.csv');
    await fsp.writeFile(many, ['id,text,label,user', ...Array.from({ length: 400 }, (_, i) => `u${i},text number ${i},${i % 2},user${i}`)].join('\n') + '\n');
    const r = await runCli(['ingest', many, '--workdir', path.join(dir, 'many'), '--group-values', 'user']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^sisa: error: [^\n]*column 'user' has more than 256 distinct values[^\n]*\n$/);
  });
});

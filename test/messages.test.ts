/** Messages that point at the fix, through the real CLI (first-use note §3). */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { cliJson, nothingPending, runCli, snapshot, tempDir } from './helpers.js';

describe('messages', () => {
  let dir: string;
  let tiny: string;

  before(async () => {
    dir = await tempDir();
    tiny = path.join(dir, 'tiny');
    await fsp.writeFile(path.join(dir, 'two.csv'), 'text,label\nyou are an idiot,1\nhave a nice day,0\n');
  });

  it('a 2-row data set into 8 shards warns at ingest about the empty shards and the empty test split', async () => {
    const r = await runCli(['ingest', path.join(dir, 'two.csv'), '--workdir', tiny]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^sisa: warning: 6 of 8 shards have no training rows \(2 in all\);.*fewer --shards/m);
    assert.match(r.stderr, /^sisa: warning: the held-out test split is empty/m);
    const s = await cliJson(['status', '--workdir', tiny]);
    assert.equal(s.shards.filter((x: { rows: number }) => x.rows === 0).length, 6);
  });

  it('--json carries the same warnings', async () => {
    const ws = path.join(dir, 'tiny-json');
    const r = await cliJson(['ingest', path.join(dir, 'two.csv'), '--workdir', ws, '--quiet']);
    assert.equal(r.warnings.length, 2);
    assert.match(r.warnings[0], /6 of 8 shards have no training rows/);
  });

  it('a data set that fills its shards has no warnings', async () => {
    const rows = ['text,label', ...Array.from({ length: 400 }, (_, i) => `comment number ${i} ${i % 2 ? 'you idiot' : 'thanks'},${i % 2}`)];
    await fsp.writeFile(path.join(dir, 'enough.csv'), rows.join('\n') + '\n');
    const r = await runCli(['ingest', path.join(dir, 'enough.csv'), '--workdir', path.join(dir, 'enough'), '--shards', '2', '--slices', '2']);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /warning/);
  });

  it('evaluate on an empty held-out split says there are no rows instead of printing zeros', async () => {
    await cliJson(['train', '--workdir', tiny, '--quiet']);
    const snap = await snapshot(tiny);
    const r = await runCli(['evaluate', '--workdir', tiny]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^sisa: error: held-out test split: no rows to evaluate on \(.*\)\n$/);
    assert.deepEqual(await snapshot(tiny), snap);
  });

  it('an empty ids file says that it is empty, and nothing is deleted', async () => {
    const ids = path.join(dir, 'requests.txt');
    await fsp.writeFile(ids, '\n  \r\n');
    const snap = await snapshot(tiny);
    const r = await runCli(['delete', '--ids-file', ids, '--workdir', tiny]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `sisa: error: ${ids}: the ids file is empty (expected one id per line); nothing was deleted\n`);
    assert.deepEqual(await snapshot(tiny), snap);
    assert.ok(await nothingPending(tiny));
  });

  it('columns: id= names where ids come from, never a blank', async () => {
    const rowNumbers = await runCli(['ingest', path.join(dir, 'two.csv'), '--workdir', path.join(dir, 'c1'), '--shards', '1', '--slices', '1', '--quiet']);
    assert.match(rowNumbers.stdout, /^columns: id=\(row number\) text=text label=label$/m);
    // Davidson et al.'s file: the first column is a pandas index with an empty name.
    await fsp.writeFile(path.join(dir, 'davidson.csv'), ',count,class,tweet\n0,3,1,you are an idiot\n1,3,0,have a nice day\n2,3,0,see you soon\n');
    const unnamed = await runCli(['ingest', path.join(dir, 'davidson.csv'), '--workdir', path.join(dir, 'c2'), '--shards', '1', '--slices', '1', '--label-col', 'class', '--quiet']);
    assert.equal(unnamed.code, 0, unnamed.stderr);
    assert.match(unnamed.stdout, /^columns: id=\(unnamed column\) text=tweet label=class$/m);
    assert.doesNotMatch(unnamed.stdout, /id= /);
  });
});

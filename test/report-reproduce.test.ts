/**
 * The report's "Reproduce" line is a command a reader runs to get the same report again: run as printed,
 * it must give the same numbers, whatever flags the first run was given (an --eval file with its own
 * column names, a path with a space, a non-default number of bootstrap resamples).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { before, describe, it } from 'node:test';
import { generateCorpus } from '../src/demo/corpus.js';
import { cliJson, repoRoot, runCli, sisaBin, tempDir, trainedFairWorkspace } from './helpers.js';

const run = promisify(execFile);

describe("the report's reproduce command", () => {
  let dir: string;
  let ws: string;
  let evalFile: string;

  before(async () => {
    dir = await tempDir();
    ws = await trainedFairWorkspace(dir);
    // Column names sisa would not guess, labels that need --eval-positive-values, a path with a space and a quote.
    await fsp.mkdir(path.join(dir, "held out"));
    evalFile = path.join(dir, "held out", "it's new.csv");
    const rows = [...generateCorpus({ rows: 400, seed: 31, groupRate: 0.4, annotatorBias: 0.3 })];
    await fsp.writeFile(evalFile, 'msg,verdict\n' + rows.map((r) => `"${r.text.replace(/"/g, '""')}",${r.label ? 'bad' : 'ok'}`).join('\n') + '\n');
  });

  it('run as printed, gives the same report', async () => {
    // The eval file named relative to the folder the report is made in; the command is run from another.
    const made = await runCli(
      [
        'report', '--workdir', ws, '--out', path.join(dir, 'r1'), '--resamples', '40', '--eo-tolerance', '0.05', '--quiet', '--json',
        '--eval', path.relative(dir, evalFile), '--eval-text-col', 'msg', '--eval-label-col', 'verdict', '--eval-positive-values', 'bad',
      ],
      { cwd: dir },
    );
    assert.equal(made.code, 0, made.stderr);
    const first = JSON.parse(made.stdout);
    const command: string = first.reproduce.command;
    assert.match(command, /^sisa report /);
    assert.ok(first.methods.some((m: { split: string }) => m.split.startsWith('eval:')), 'the first report has the --eval split');
    // As a reader would run it, from a shell, in the workspace's folder (where the report lives).
    const { stdout } = await run('sh', ['-c', `${command.replace(/^sisa /, `"${process.execPath}" "${sisaBin}" `)} --workdir "$WS" --out "$OUT" --json --quiet`], {
      cwd: repoRoot,
      env: { ...process.env, WS: ws, OUT: path.join(dir, 'r2') },
      maxBuffer: 64 << 20,
    });
    const second = JSON.parse(stdout);
    for (const key of ['methods', 'verdict', 'data', 'fit', 'crossFit', 'resplits', 'reproduce'])
      assert.deepEqual(second[key], first[key], `report.${key} differs when the reproduce command is run`);
  });

  it("an --eval file's column or label problem names report's own --eval-… flags, which fix it", async () => {
    const report = (...extra: string[]) => runCli(['report', '--workdir', ws, '--out', path.join(dir, 'r3'), '--resamples', '20', '--quiet', '--eval', evalFile, ...extra]);
    const noText = await report('--eval-label-col', 'verdict', '--eval-positive-values', 'bad');
    assert.equal(noText.code, 1);
    assert.match(noText.stderr, /no text column found; pass --eval-text-col \(columns: 'msg', 'verdict'\)\n$/);
    const notBinary = await report('--eval-text-col', 'msg', '--eval-label-col', 'verdict');
    assert.equal(notBinary.code, 1);
    assert.match(notBinary.stderr, /non-binary label 'ok' \(use --eval-positive-values or --eval-label-threshold to map it\)\n$/);
    const notNumeric = await report('--eval-text-col', 'msg', '--eval-label-col', 'verdict', '--eval-label-threshold', '0.5');
    assert.equal(notNumeric.code, 1);
    assert.match(notNumeric.stderr, /label 'ok' is not a number \(--eval-label-threshold needs numeric labels\)\n$/);
    // The hints taken: the same file now reports.
    const fixed = await report('--eval-text-col', 'msg', '--eval-label-col', 'verdict', '--eval-positive-values', 'bad');
    assert.equal(fixed.code, 0, fixed.stderr);
  });

  it('sisa evaluate --data keeps naming its own flags', async () => {
    const r = await runCli(['evaluate', '--workdir', ws, '--data', evalFile, '--text-col', 'msg', '--label-col', 'verdict']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /non-binary label 'ok' \(use --positive-values or --label-threshold to map it\)\n$/);
  });
});

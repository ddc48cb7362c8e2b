/** Bad input through the CLI: a one-line error, a non-zero exit code, and the workspace as it was. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { cliJson, makeCorpus, nothingPending, runCli, snapshot, tempDir } from './helpers.js';

async function expectFailure(args: string[], ws: string, pattern: RegExp): Promise<void> {
  const snap = await snapshot(ws);
  const r = await runCli(args);
  assert.notEqual(r.code, 0, `expected failure of: sisa ${args.join(' ')}`);
  assert.match(r.stderr, /^sisa: error: [^\n]+\n$/, `one-line error, got: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.deepEqual(await snapshot(ws), snap, 'workspace unchanged');
  assert.ok(await nothingPending(ws), 'no operation left pending');
}

describe('bad input', () => {
  let dir: string;
  let ws: string;
  let corpus: string;

  before(async () => {
    dir = await tempDir();
    corpus = await makeCorpus(dir, { rows: 800 });
    ws = path.join(dir, 'ws');
    await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '2', '--slices', '2', '--quiet']);
  });

  it('delete before train', async () => {
    await expectFailure(['delete', '--workdir', ws, '--id', 'd1'], ws, /run 'sisa train' first/);
  });

  it('a command on a folder that is not a workspace', async () => {
    const empty = await tempDir();
    await expectFailure(['status', '--workdir', empty], empty, /no sisa workspace/);
  });

  it('--chars beyond 16 (its character grams grow with the square of a word\'s length), or 1 or 2 (character grams start at 3: they would silently be none): a usage error, the workspace as it was', async () => {
    for (const bad of ['100000', '17', '2.5', '-1', '1', '2'])
      await expectFailure(['ingest', corpus, '--workdir', ws, '--force', '--chars', bad], ws, new RegExp(`--chars must be 0 \\(no character grams\\) or a whole number from 3 to 16, got ${bad.replace('.', '\\.')}`));
  });

  it('a workspace path that is a file, a journal that is a folder, a lock that is a file: one line naming the path, exit 1, not an internal error', async () => {
    // --workdir naming a file is refused at the door, for every command that takes it.
    for (const command of [['ingest', corpus], ['status'], ['verify'], ['delete', '--id', 'd1']]) {
      const r = await runCli([...command, '--workdir', corpus]);
      assert.equal(r.code, 2, `${command[0]}: ${r.stderr}`);
      assert.equal(r.stderr, `sisa: error: --workdir ${corpus} is a file, not a folder\n`);
    }
    // A path that cannot be looked at is not a file: the command reports it, in one line, not as a crash.
    const loop = path.join(dir, 'loop');
    await fsp.symlink(loop, loop);
    const looped = await runCli(['status', '--workdir', loop]);
    assert.equal(looped.code, 1, looped.stderr);
    assert.match(looped.stderr, /^sisa: error: [^\n]+\n$/);
    const journalDir = path.join(dir, 'ws-journal-dir');
    await fsp.cp(ws, journalDir, { recursive: true });
    await fsp.rm(path.join(journalDir, 'manifests', 'journal.jsonl'));
    await fsp.mkdir(path.join(journalDir, 'manifests', 'journal.jsonl'));
    await expectFailure(['train', '--workdir', journalDir], journalDir, /a folder where a file was expected \(.*manifests\/journal\.jsonl\)/);
    const lockFile = path.join(dir, 'ws-lock-file');
    await fsp.cp(ws, lockFile, { recursive: true });
    await fsp.writeFile(path.join(lockFile, 'manifests', 'lock'), 'x');
    const old = new Date(Date.now() - 5 * 60_000);
    await fsp.utimes(path.join(lockFile, 'manifests', 'lock'), old, old);
    await expectFailure(['train', '--workdir', lockFile], lockFile, /a file where a folder was expected \(.*manifests\/lock\)/);
  });

  it('a number flag given a word: a usage error naming the flag and the word (yargs reads it as NaN)', async () => {
    const r = await runCli(['ingest', corpus, '--workdir', ws, '--force', '--label-threshold', 'abc']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, "sisa: error: --label-threshold must be a number, got 'abc'\n");
    const r2 = await runCli(['train', '--workdir', ws, '--learning-rate=fast']);
    assert.equal(r2.code, 2);
    assert.equal(r2.stderr, "sisa: error: --learning-rate must be a number, got 'fast'\n");
    // yargs reads 'Infinity' as a number; no flag means it (it too ended as 'single class').
    const r3 = await runCli(['ingest', corpus, '--workdir', ws, '--force', '--label-threshold', 'Infinity']);
    assert.equal(r3.code, 2);
    assert.equal(r3.stderr, "sisa: error: --label-threshold must be a finite number, got 'Infinity'\n");
  });

  it('a learning rate so large that training diverges: refused, naming the shard and the flag, and no model is committed', async () => {
    const copy = path.join(dir, 'ws-diverge');
    await fsp.cp(ws, copy, { recursive: true });
    await expectFailure(['train', '--workdir', copy, '--learning-rate', '1e308'], copy, /shard \d+: training diverged \(the model's weights are not finite numbers\); lower --learning-rate \(1e\+308\)/);
  });

  it('a deletion goes through on a workspace whose retrain diverges (models committed by a version without the check): forgetting is never refused for the model\'s quality', async () => {
    const copy = path.join(dir, 'ws-diverged');
    await fsp.cp(ws, copy, { recursive: true });
    const trained = await runCli(['train', '--workdir', copy, '--quiet']);
    assert.equal(trained.code, 0, trained.stderr);
    // The learning rate such a version trained with: a retrain from scratch now diverges as that run did.
    const state = JSON.parse(await fsp.readFile(path.join(copy, 'manifests', 'state.json'), 'utf8'));
    state.training.learner.learningRate = 1e308;
    await fsp.writeFile(path.join(copy, 'manifests', 'state.json'), JSON.stringify(state, null, 2));
    const ids = Array.from({ length: 20 }, (_, i) => `d${i + 1}`);
    const del = await runCli(['delete', '--workdir', copy, ...ids.flatMap((id) => ['--id', id]), '--full-retrain', '--json', '--quiet']);
    assert.equal(del.code, 0, del.stderr);
    const r = JSON.parse(del.stdout);
    assert.equal(r.deleted.length, 20);
    assert.ok(r.retrained.length >= 1, 'a shard was retrained');
  });

  it('--hidden too large for the buckets: a usage error saying the largest that fits, before any training', async () => {
    for (const h of ['1e9', '300'])
      await expectFailure(['train', '--workdir', ws, '--hidden', h], ws, new RegExp(`--hidden ${h.replace('1e9', '1000000000')} is too large for 262144 hashing buckets: at most 256 hidden units \\(the embedding holds buckets × units weights, at most 2\\^26\\)`));
  });

  it('an input that is not a regular file (a named pipe) is refused at once, as predict refuses it; ingest used to wait for a writer', async () => {
    const fifo = path.join(dir, 'pipe.csv');
    execFileSync('mkfifo', [fifo]);
    const copy = path.join(dir, 'ws-fifo');
    await fsp.cp(ws, copy, { recursive: true });
    const waited = new Promise<'waited'>((resolve) => setTimeout(() => resolve('waited'), 20_000).unref());
    const done = expectFailure(['ingest', fifo, '--workdir', copy, '--force'], copy, /pipe\.csv: cannot read input file \(not a regular file\)/).then(() => 'refused' as const);
    const outcome = await Promise.race([done, waited]);
    // An ingest still waiting is released (a writer opens the pipe and closes it), so the test file can end.
    if (outcome === 'waited') await fsp.writeFile(fifo, '').catch(() => undefined);
    assert.equal(outcome, 'refused', 'ingest waited 20 s for a writer on the pipe');
  });

  it('a missing column', async () => {
    await expectFailure(['ingest', corpus, '--workdir', ws, '--force', '--text-col', 'body'], ws, /text column 'body' not found.*'id', 'text', 'label'/);
  });

  it('a non-binary label', async () => {
    const f = path.join(dir, 'nonbinary.csv');
    await fsp.writeFile(f, 'id,text,label\n1,hello there,0\n2,you idiot,1\n3,what,2\n');
    await expectFailure(['ingest', f, '--workdir', ws, '--force'], ws, /label column 'label' is not binary \(values: '0' ×1, '1' ×1, '2' ×1\); name the values that mean toxic with --positive-values/);
  });

  it('duplicate ids, empty text and missing labels are reported with row numbers', async () => {
    const f = path.join(dir, 'dups.csv');
    await fsp.writeFile(f, 'id,text,label\n1,hello,0\n2,you idiot,1\n1,again,0\n4,,1\n5,no label,\n6,"fine, thanks",0\n');
    await expectFailure(['ingest', f, '--workdir', ws, '--force'], ws, /3 invalid rows \(row 3 \(line 4\): duplicate id '1' \(first seen at row 1\); row 4 \(line 5\): empty text; row 5 \(line 6\): missing label\); fix them or pass --skip-invalid/);
  });

  it('--skip-invalid skips and counts them', async () => {
    const f = path.join(dir, 'dups2.csv');
    await fsp.writeFile(f, 'id,text,label\n1,hello,0\n2,you idiot,1\n1,again,0\n4,,1\n5,ok then,0\n6,stupid,1\n');
    const other = path.join(dir, 'ws-skip');
    const r = await cliJson(['ingest', f, '--workdir', other, '--skip-invalid', '--shards', '1', '--slices', '1', '--test', '0.2']);
    assert.equal(r.skipped, 2);
    assert.equal(r.accepted, 4);
    assert.deepEqual(r.invalid.map((x: { row: number }) => x.row), [3, 4]);
  });

  it('a truncated Arrow input file', async () => {
    // Produce a valid Arrow file from the workspace's own shard, then cut it short.
    const shards = (await fsp.readdir(path.join(ws, 'shards'))).filter((f) => f.startsWith('shard-'));
    const bytes = await fsp.readFile(path.join(ws, 'shards', shards[0]!));
    const f = path.join(dir, 'truncated.arrow');
    await fsp.writeFile(f, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await expectFailure(['ingest', f, '--workdir', ws, '--force'], ws, /truncated\.arrow: not a valid Arrow IPC file, or truncated/);
  });

  it('an unknown --backend', async () => {
    await expectFailure(['train', '--workdir', ws, '--backend', 'quantum'], ws, /--backend must be one of auto, fused, tensorflow, wasm, cpu, got 'quantum'/);
  });

  it('--backend tensorflow without the native package installed', async () => {
    await expectFailure(['train', '--workdir', ws, '--backend', 'tensorflow'], ws, /needs '@tensorflow\/tfjs-node-gpu' or '@tensorflow\/tfjs-node'/);
  });

  it('a re-ingest without --force', async () => {
    await expectFailure(['ingest', corpus, '--workdir', ws], ws, /already holds an ingested data set.*--force/);
  });

  it('an input file that does not exist, and bad numeric flags', async () => {
    await expectFailure(['ingest', path.join(dir, 'nope.csv'), '--workdir', ws, '--force'], ws, /nope\.csv: cannot read input file/);
    await expectFailure(['ingest', corpus, '--workdir', ws, '--force', '--shards', '0'], ws, /--shards must be an integer from 1 to 4096/);
    await expectFailure(['ingest', corpus, '--workdir', ws, '--force', '--test', '1.5'], ws, /--test must be a fraction/);
  });

  it('a manifest edited into invalid JSON is detected, not trusted', async () => {
    const copy = path.join(dir, 'ws-bad');
    await fsp.cp(ws, copy, { recursive: true });
    await fsp.writeFile(path.join(copy, 'manifests', 'state.json'), '{ "formatVersion": 1, ');
    await expectFailure(['status', '--workdir', copy], copy, /state\.json: not valid JSON/);
    await fsp.writeFile(path.join(copy, 'manifests', 'state.json'), '{ "formatVersion": 1 }');
    await expectFailure(['status', '--workdir', copy], copy, /state\.json: invalid manifest at 'dataset'/);
  });

  it('an unknown command or flag is a usage error (exit 2)', async () => {
    const r = await runCli(['frobnicate']);
    assert.equal(r.code, 2);
    const r2 = await runCli(['status', '--workdir', ws, '--no-such-flag']);
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /unknown option --no-such-flag; see sisa status --help/);
  });
});

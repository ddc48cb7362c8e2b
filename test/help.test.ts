/**
 * Help a person can read, through the real CLI: every command's --help, unwrapped into a pipe and
 * wrapped at 60, 80 and 120 columns on a real terminal (a pseudo-terminal from util-linux `script`).
 * No word may be cut or glued to its neighbour: wrapping changes only whitespace, so the words of a
 * wrapped screen are exactly the words of the unwrapped one. Every option says what it does, and
 * every command shows an example. Plus the usage messages that point at the fix.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { repoRoot, runCli, sisaBin } from './helpers.js';

const haveScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const noPty = haveScript ? false : "util-linux 'script' not installed (Debian: bsdutils, an essential package), so no terminal to wrap at";

/** `sisa ARGS --help` on a terminal COLUMNS wide. */
function helpOnTerminal(args: string[], columns: number): Promise<string> {
  const quoted = [process.execPath, sisaBin, ...args, '--help'].map((a) => `'${a}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-q', '-e', '-c', `stty cols ${columns} rows 200; ${quoted}`, '/dev/null'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out.replace(/\r/g, '')) : reject(new Error(`script exited ${code}: ${out}`))));
  });
}

async function helpInPipe(args: string[]): Promise<string> {
  const r = await runCli([...args, '--help']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

const words = (text: string) => text.split(/\s+/).filter(Boolean).sort();

/** The lines of a section ("Options:", "Positionals:", "Examples:") up to the next blank line. */
function section(text: string, title: string): string[] {
  const lines = text.split('\n');
  const start = lines.indexOf(title);
  if (start < 0) return [];
  const end = lines.findIndex((l, i) => i > start && l.trim() === '');
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

const pipeTop = await helpInPipe([]);
const COMMANDS = section(pipeTop, 'Commands:').flatMap((l) => /^\s+sisa (\S+)/.exec(l)?.[1] ?? []);

describe('help', () => {
  it("--version prints sisa's version from any folder (not another project's, not 'unknown')", async () => {
    const { version } = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    const elsewhere = await fsp.mkdtemp(path.join(os.tmpdir(), 'sisa-version-'));
    try {
      await fsp.writeFile(path.join(elsewhere, 'package.json'), JSON.stringify({ name: 'someone-else', version: '9.9.9' }));
      for (const cwd of [repoRoot, elsewhere]) {
        const r = await runCli(['--version'], { cwd });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), version, `from ${cwd}`);
      }
    } finally {
      await fsp.rm(elsewhere, { recursive: true, force: true });
    }
  });

  it('lists every command', () => {
    assert.deepEqual(COMMANDS, ['ingest', 'train', 'predict', 'evaluate', 'delete', 'fairness', 'report', 'serve', 'worker', 'recover', 'verify', 'bench', 'status', 'demo']);
  });

  for (const command of ['', ...COMMANDS]) {
    const args = command ? [command] : [];
    const name = `sisa ${command}`.trim();

    it(`${name} --help: every option described, one line each in a pipe, with examples`, async () => {
      const text = await helpInPipe(args);
      for (const title of ['Options:', 'Positionals:']) {
        for (const line of section(text, title)) {
          // Unwrapped: a flag or positional, its description, then its [tags], all on one line.
          const m = /^ {2}(-{0,2}[a-z][\w-]*)(?:, -{1,2}[\w-]+)* {2,}(.*)$/.exec(line);
          assert.ok(m, `${name}: '${line}' is not one option on one line`);
          const description = m[2]!.replace(/ {2}\[[^\]]*\].*$/, '').replace(/^\[.*$/, '').trim();
          assert.ok(/[a-z]{3}/i.test(description), `${name}: ${m[1]} has no description: '${line}'`);
        }
      }
      assert.ok(section(text, 'Options:').length > 0, `${name}: no options section`);
      const examples = section(text, 'Examples:');
      assert.ok(examples.length > 0, `${name}: no Examples section`);
      for (const e of examples) assert.match(e, /^ {2}sisa \S.* {2,}\S/, `${name}: example without an explanation: '${e}'`);
      if (command) assert.ok(examples.every((e) => e.trimStart().startsWith(`sisa ${command}`)), `${name}: examples of another command`);
    });

    it(`${name} --help on terminals 60, 80 and 120 wide: no word cut or glued`, { skip: noPty }, async () => {
      const reference = words(await helpInPipe(args));
      for (const columns of [60, 80, 120]) {
        const text = await helpOnTerminal(args, columns);
        const long = text.split('\n').filter((l) => [...l].length > columns);
        assert.deepEqual(long, [], `${name} at ${columns} columns: lines wider than the terminal`);
        const got = words(text);
        const extra = got.filter((w) => !reference.includes(w));
        assert.deepEqual(extra, [], `${name} at ${columns} columns: word pieces that are not words of the help`);
        assert.deepEqual(got, reference, `${name} at ${columns} columns: the words differ from the unwrapped help`);
      }
    });
  }

  it("status --queue says that it lists the workspace's jobs", async () => {
    const line = section(await helpInPipe(['status']), 'Options:').find((l) => l.trimStart().startsWith('--queue '));
    assert.ok(line, 'status has --queue');
    assert.match(line, /queued, active and failed/);
    assert.doesNotMatch(line, /instead of locally/);
    assert.ok(!section(await helpInPipe(['status']), 'Options:').some((l) => l.includes('--queue-timeout')), 'status does not wait for workers');
  });
});

describe('usage messages that point at the fix', () => {
  const cases: [string[], RegExp][] = [
    [['ingest', 'x.csv', '--shard', '8'], /^sisa: error: unknown option --shard \(did you mean --shards\?\); see sisa ingest --help\n$/],
    [['ingest', 'x.csv', '--slice', '2'], /did you mean --slices\?/],
    [['train', '--epoch', '3'], /did you mean --epochs\?/],
    [['train', '--queue-nam', 'q'], /^sisa: error: unknown option --queue-nam \(did you mean --queue-name\?\); see sisa train --help\n$/],
    [['delete', '--ids', 'f.txt'], /did you mean --ids-file\?/],
    [['train', '--xyzzy', '1'], /^sisa: error: unknown option --xyzzy; see sisa train --help\n$/],
    [['fairness'], /^sisa: error: name an action: 'sisa fairness fit' .*'sisa fairness show'/],
    [['ingest'], /^sisa: error: name the labelled data file: sisa ingest FILE\n$/],
    [['trian'], /^sisa: error: unknown command 'trian' \(did you mean train\?\); see sisa --help\n$/],
    [['status', 'extra'], /^sisa: error: unknown argument 'extra'; see sisa status --help\n$/],
  ];
  for (const [args, pattern] of cases) {
    it(`sisa ${args.join(' ')}`, async () => {
      const r = await runCli(args);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, pattern);
    });
  }
});

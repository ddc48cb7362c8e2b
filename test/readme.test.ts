/**
 * The README's commands are tested: every ```sh block is run, in order, as a new user would run it, in a
 * temporary folder that has `../shared/data` beside it (a link to the real data, which is read-only) and the
 * package installed as `node_modules/sisa`, so `npx sisa …` resolves to this build and never to the registry.
 *
 * Conventions (stated in the README's Development section):
 * - ```sh blocks run; ```sh illustration blocks are examples that need things a test cannot have (another
 *   host, cloud credentials, an editor) and are not run. Every block is one or the other.
 * - A trailing comment that quotes a number next to a word, `# AUC 0.977, accuracy 0.941`, is checked against the
 *   command's output: the output must show the same word followed by a number that rounds to the quoted one at
 *   the quoted precision. A quoted number that drifts fails the test.
 * - `npm install` and `npm test` are what CI runs around this test, so they are not run again here;
 *   `npm run demo` is run in the repository, as the README says.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { repoRoot, sharedData, tempDir } from './helpers.js';

export interface ShBlock {
  /** 1-based line of the opening fence. */
  line: number;
  heading: string;
  runnable: boolean;
  code: string;
}

/** Every fenced block whose info string starts with `sh`, with the heading it sits under. */
export function shBlocks(markdown: string): ShBlock[] {
  const lines = markdown.split('\n');
  const out: ShBlock[] = [];
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (/^#{1,6} /.test(l)) heading = l.replace(/^#+ /, '');
    const fence = /^```(\S*)\s*(.*)$/.exec(l);
    if (!fence) continue;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !lines[j]!.startsWith('```')) body.push(lines[j++]!);
    if (fence[1] === 'sh') out.push({ line: i + 1, heading, runnable: fence[2]!.trim() !== 'illustration', code: body.join('\n') });
    i = j;
  }
  return out;
}

export interface Command {
  text: string;
  /** The trailing `# …` comment of the command's last line, if any. */
  comment: string;
}

/** Splits a shell block into commands: joins `\` continuations, keeps here-documents whole, drops comment lines. */
export function commands(code: string): Command[] {
  const lines = code.split('\n');
  const out: Command[] = [];
  for (let i = 0; i < lines.length; i++) {
    let l = lines[i]!;
    if (!l.trim() || l.trim().startsWith('#')) continue;
    const parts: string[] = [];
    while (l.trimEnd().endsWith('\\') && i + 1 < lines.length) {
      parts.push(l.trimEnd().slice(0, -1));
      l = lines[++i]!;
    }
    parts.push(l);
    let text = parts.join(' ');
    const here = /<<-?\s*'?(\w+)'?/.exec(text);
    if (here) {
      const body: string[] = [];
      while (i + 1 < lines.length && lines[i + 1] !== here[1]) body.push(lines[++i]!);
      i++; // the terminator
      text = `${text}\n${body.join('\n')}\n${here[1]}`;
      out.push({ text, comment: '' });
      continue;
    }
    const hash = text.search(/\s#\s/);
    out.push(hash >= 0 ? { text: text.slice(0, hash).trim(), comment: text.slice(hash).replace(/^\s*#\s*/, '') } : { text: text.trim(), comment: '' });
  }
  return out;
}

/** `word number` pairs quoted in a comment, e.g. "AUC 0.977, accuracy 0.941" → [[AUC, 0.977], [accuracy, 0.941]]. */
export function quotedNumbers(comment: string): { word: string; quoted: string }[] {
  return [...comment.matchAll(/([A-Za-z][\w-]*)\s+(\d+\.\d+)/g)].map((m) => ({ word: m[1]!, quoted: m[2]! }));
}

/** Checks each quoted number against the first `word number` in the output; returns the problems. */
export function checkQuoted(comment: string, output: string): string[] {
  const problems: string[] = [];
  for (const { word, quoted } of quotedNumbers(comment)) {
    const m = new RegExp(`\\b${word}\\s+(-?\\d+(?:\\.\\d+)?)`).exec(output);
    if (!m) {
      problems.push(`the README quotes "${word} ${quoted}" but the output has no "${word} <number>"`);
      continue;
    }
    const decimals = quoted.split('.')[1]!.length;
    const shown = Number(m[1]).toFixed(decimals);
    if (shown !== quoted) problems.push(`the README quotes "${word} ${quoted}" but the command prints ${word} ${m[1]} (${shown} at that precision)`);
  }
  return problems;
}

function sh(command: string, cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-eo', 'pipefail', '-c', command], { cwd, env: { ...process.env, npm_config_yes: 'false', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

const NOT_RERUN = new Set(['npm install', 'npm test', 'npm ci', 'bash .ci/run']);

describe('README', async () => {
  const readme = await fsp.readFile(path.join(repoRoot, 'README.md'), 'utf8');
  const blocks = shBlocks(readme);

  test('the parser understands the conventions (continuations, here-documents, quoted numbers)', () => {
    const cmds = commands("a \\\n  b   # AUC 0.977\n# a comment\ncat > f.txt <<'EOF'\nx # not a comment\nEOF\nc");
    assert.deepEqual(cmds.map((c) => c.text.split('\n')[0]), ['a    b', "cat > f.txt <<'EOF'", 'c']);
    assert.equal(cmds[0]!.comment, 'AUC 0.977');
    assert.match(cmds[1]!.text, /x # not a comment\nEOF$/);
    assert.deepEqual(checkQuoted('AUC 0.977, accuracy 0.94', 'AUC 0.9766  accuracy 0.9409'), []);
    assert.equal(checkQuoted('AUC 0.976', 'AUC 0.9766').length, 1, 'a drifted number is caught');
    assert.equal(checkQuoted('recall 0.5', 'AUC 0.9766').length, 1, 'a number the output does not show is caught');
  });

  test('every sh block is marked runnable or illustration, and the walkthroughs have runnable blocks', () => {
    assert.ok(blocks.length > 0);
    assert.ok(blocks.filter((b) => b.runnable).length >= 3, 'Quick start, the fairness walkthrough and the incident check run');
  });

  const runnable = blocks.filter((b) => b.runnable);
  const haveData = await fsp.stat(path.join(sharedData, 'davidson', 'labeled_data.csv')).then(
    () => true,
    () => false,
  );

  test('every runnable sh block runs as written, and every number it quotes still holds', { skip: haveData ? false : 'README walkthroughs use ../shared/data, which is absent here' }, async () => {
    // <tmp>/shared/data → the real data; <tmp>/work is where the user types, as the README's ../shared paths expect.
    const root = await tempDir('sisa-readme-');
    await fsp.mkdir(path.join(root, 'shared'));
    await fsp.symlink(sharedData, path.join(root, 'shared', 'data'));
    const cwd = path.join(root, 'work');
    await fsp.mkdir(path.join(cwd, 'node_modules', '.bin'), { recursive: true });
    await fsp.symlink(repoRoot, path.join(cwd, 'node_modules', 'sisa'));
    await fsp.symlink(path.join(repoRoot, 'bin', 'sisa.js'), path.join(cwd, 'node_modules', '.bin', 'sisa'));
    await fsp.writeFile(path.join(cwd, 'package.json'), JSON.stringify({ name: 'readme-walkthrough', private: true, type: 'module' }));
    for (const block of runnable) {
      for (const c of commands(block.code)) {
        const parts = c.text.split('&&').map((s) => s.trim());
        const toRun = parts.filter((p) => !NOT_RERUN.has(p));
        if (toRun.length === 0) continue;
        const demo = toRun.length === 1 && toRun[0] === 'npm run demo';
        const r = await sh(toRun.join(' && '), demo ? repoRoot : cwd);
        const where = `README.md:${block.line} (${block.heading}): ${c.text.split('\n')[0]}`;
        assert.equal(r.code, 0, `${where}\nexited ${r.code}:\n${r.out.slice(-2000)}`);
        const problems = checkQuoted(c.comment, r.out);
        assert.deepEqual(problems, [], `${where}\n${problems.join('\n')}`);
      }
    }
  });
});

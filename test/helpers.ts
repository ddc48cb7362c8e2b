/** Shared test helpers: run the real CLI in a subprocess, make temporary workspaces and corpora. */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeCorpusCsv, type CorpusOptions } from '../src/demo/corpus.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const sisaBin = path.join(repoRoot, 'bin', 'sisa.js');
export const sharedData = path.resolve(repoRoot, '..', 'shared', 'data');

export interface CliResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { cwd?: string; input?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [sisaBin, ...args], { cwd: opts.cwd ?? repoRoot, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? -1, signal, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs the CLI with --json and parses stdout; fails loudly with stderr when the command failed. */
export async function cliJson<T = any>(args: string[]): Promise<T> {
  const r = await runCli([...args, '--json']);
  if (r.code !== 0) throw new Error(`sisa ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

const createdDirs: string[] = [];

/**
 * A new folder under the system's temporary folder, removed when this test process exits (each test file
 * runs in its own process): workspaces of large corpora are hundreds of MB, and thousands of runs filled
 * a disk. SISA_KEEP_TEST_DIRS=1 keeps them for a post-mortem.
 */
export async function tempDir(prefix = 'sisa-test-'): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  if (createdDirs.push(dir) === 1) process.once('exit', removeTempDirs);
  return dir;
}

function removeTempDirs(): void {
  if (process.env.SISA_KEEP_TEST_DIRS) return;
  for (const dir of createdDirs) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
    } catch {
      // A folder that cannot be removed is left behind; the exit code stays the tests' own.
    }
  }
}

export async function makeCorpus(dir: string, o: Partial<CorpusOptions> = {}): Promise<string> {
  const file = path.join(dir, 'corpus.csv');
  await writeCorpusCsv(file, { rows: 3000, seed: 11, ...o });
  return file;
}

/**
 * A small trained workspace ready for fairness: 3,000 generated rows (30% mention an identity term,
 * annotators biased), builtin topic groups, test and calibration splits of 20%, 4 shards × 2 slices.
 */
export async function trainedFairWorkspace(dir: string): Promise<string> {
  const corpus = await makeCorpus(dir, { rows: 3000, seed: 5, groupRate: 0.3, annotatorBias: 0.3 });
  const ws = path.join(dir, 'ws');
  await cliJson(['ingest', corpus, '--workdir', ws, '--group-terms', 'builtin', '--test', '0.2', '--calibration', '0.2', '--seed', '5', '--shards', '4', '--slices', '2', '--quiet']);
  await cliJson(['train', '--workdir', ws, '--quiet', '--epochs', '2']);
  return ws;
}

/**
 * sha256 of every file under a folder, keyed by relative path: a snapshot to compare before/after.
 * The operation journal and the lock files are left out: a failed command appends begin/abort to the
 * journal by design (tests check separately that nothing is left pending).
 */
export async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(d: string): Promise<void> {
    let entries;
    try {
      entries = await fsp.readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      if (/(^|\/)manifests\/(journal\.jsonl|lock\.pid|lock\.owner|lock)$/.test(rel) || /(^|\/)manifests\/lock(\/|$)/.test(rel)) continue;
      if (e.isDirectory()) await walk(p);
      else out[rel] = createHash('sha256').update(await fsp.readFile(p)).digest('hex');
    }
  }
  await walk(dir);
  return out;
}

export async function readState(workdir: string): Promise<any> {
  return JSON.parse(await fsp.readFile(path.join(workdir, 'manifests', 'state.json'), 'utf8'));
}

/** True when the workspace journal has no operation left unfinished. */
export async function nothingPending(workdir: string): Promise<boolean> {
  let text = '';
  try {
    text = await fsp.readFile(path.join(workdir, 'manifests', 'journal.jsonl'), 'utf8');
  } catch {
    return true;
  }
  const open = new Set<number>();
  for (const line of text.split('\n').filter(Boolean)) {
    const l = JSON.parse(line) as { seq: number; phase: string };
    if (l.phase === 'begin') open.add(l.seq);
    else open.delete(l.seq);
  }
  return open.size === 0;
}

/** Starts the CLI paused at `point`; resolves once it is waiting there (or fails if it ended first). */
export async function startPaused(args: string[], point: string, pauseDir: string): Promise<{ pid: number; go: () => Promise<void>; done: Promise<CliResult> }> {
  await fsp.mkdir(pauseDir, { recursive: true });
  let ended: CliResult | null = null;
  const done = runCli(args, { env: { SISA_PAUSE_AT: point, SISA_PAUSE_DIR: pauseDir } }).then((r) => (ended = r));
  const marker = path.join(pauseDir, point.replace(/[^a-z0-9-]/gi, '_'));
  for (;;) {
    const pid = await fsp.readFile(`${marker}.paused`, 'utf8').catch(() => null);
    if (pid) return { pid: Number(pid), go: () => fsp.writeFile(`${marker}.go`, ''), done };
    if (ended) throw new Error(`sisa ${args[0]} ended without reaching ${point}: ${(ended as CliResult).stderr}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// A broken installation is said as such. sisa's WebAssembly kernels are built next to the modules that
// load them; one that is missing must not be reported as a damaged shard file (which sends a user to
// `sisa verify` and their backups), and must leave the workspace as it was.
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readRowsFile } from '../src/data/shardFile.js';
import { cliJson, makeCorpus, readState, repoRoot, tempDir } from './helpers.js';

/** A copy of the installed package (bin, dist/src, package.json, node_modules linked) without one file. */
async function installWithout(dir: string, missing: string): Promise<string> {
  const root = path.join(dir, 'install');
  await fsp.cp(path.join(repoRoot, 'bin'), path.join(root, 'bin'), { recursive: true });
  await fsp.cp(path.join(repoRoot, 'dist', 'src'), path.join(root, 'dist', 'src'), { recursive: true });
  await fsp.copyFile(path.join(repoRoot, 'package.json'), path.join(root, 'package.json'));
  await fsp.symlink(path.join(repoRoot, 'node_modules'), path.join(root, 'node_modules'));
  await fsp.rm(path.join(root, missing));
  return path.join(root, 'bin', 'sisa.js');
}

/** A file of 9,000 rows to predict: more than two batches, so they are hashed and scored on worker threads. */
async function manyRows(dir: string): Promise<string> {
  const file = path.join(dir, 'many.csv');
  await fsp.writeFile(file, 'id,text\n' + Array.from({ length: 9000 }, (_, i) => `r${i},some words ${i}`).join('\n') + '\n');
  return file;
}

function run(bin: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

describe('installation', () => {
  it('a missing featurisation kernel is an installation error naming the file, not a damaged shard, and nothing changes', async () => {
    const dir = await tempDir();
    const corpus = await makeCorpus(dir, { rows: 600 });
    const ws = path.join(dir, 'ws');
    await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '2', '--slices', '2']);
    await cliJson(['train', '--workdir', ws, '--epochs', '1']);
    const before = await readState(ws);
    const id = (await readRowsFile(path.join(ws, 'shards', before.shards[0].file), undefined, { skipFeatures: true })).ids[0]!;
    const bin = await installWithout(dir, path.join('dist', 'src', 'features', 'hashing.wasm'));
    const many = await manyRows(dir);
    for (const args of [['delete', '--id', id, '--workdir', ws], ['predict', corpus, '--workdir', ws], ['predict', many, '--workdir', ws], ['evaluate', '--workdir', ws]]) {
      const r = await run(bin, args);
      assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${args[0]}: one line, got ${r.stderr}`);
      assert.match(lines[0]!, /featurisation kernel .*hashing\.wasm is missing or damaged .*npm run build/);
      assert.doesNotMatch(lines[0]!, /shard file|sisa verify/);
    }
    assert.deepEqual(await readState(ws), before);
  });

  it('a missing scoring kernel is an installation error naming the file, for predict (on this thread and on workers) and evaluate', async () => {
    const dir = await tempDir();
    const corpus = await makeCorpus(dir, { rows: 600 });
    const ws = path.join(dir, 'ws');
    await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '2', '--slices', '2']);
    await cliJson(['train', '--workdir', ws, '--epochs', '1']);
    const bin = await installWithout(dir, path.join('dist', 'src', 'models', 'linearScore.wasm'));
    const many = await manyRows(dir);
    for (const args of [['predict', corpus, '--workdir', ws], ['predict', many, '--workdir', ws], ['evaluate', '--workdir', ws]]) {
      const r = await run(bin, args);
      assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, `${args[0]}: one line, got ${r.stderr}`);
      assert.match(r.stderr, /scoring kernel .*linearScore\.wasm is missing or damaged .*npm run build/);
    }
  });

  it('a missing training kernel is an installation error naming the file, and train commits nothing', async () => {
    const dir = await tempDir();
    const corpus = await makeCorpus(dir, { rows: 600 });
    const ws = path.join(dir, 'ws');
    await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '2', '--slices', '2']);
    const before = await readState(ws);
    const bin = await installWithout(dir, path.join('dist', 'src', 'models', 'fusedStep.wasm'));
    const r = await run(bin, ['train', '--workdir', ws, '--epochs', '1']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /training kernel .*fusedStep\.wasm is missing or damaged .*npm run build/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.deepEqual(await readState(ws), before);
  });
});

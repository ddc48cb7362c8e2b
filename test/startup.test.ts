// Deletion fixed cost (issue 10): what `sisa delete` loads. A deletion's latency includes the start of a
// Node process, and every module it loads is paid on every request; the heavy libraries it does not
// need for a fused-kernel retrain must stay unloaded. The loader hooks record each ES module the
// process loads (CommonJS requires are not seen, which is how the single-file Arrow build gets in).
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { before, describe, it } from 'node:test';
import { cliJson, makeCorpus, readState, runCli, tempDir } from './helpers.js';

/** Runs the CLI with hooks that append every loaded module's URL to a file; returns those URLs. */
async function loadedModules(dir: string, args: string[]): Promise<{ code: number; stderr: string; modules: string[] }> {
  const log = path.join(dir, `loads-${Date.now()}.txt`);
  const hooks = path.join(dir, 'hooks.mjs');
  const register = path.join(dir, 'register.mjs');
  await fsp.writeFile(
    hooks,
    `import { appendFileSync } from 'node:fs';\nexport async function load(url, ctx, next) { appendFileSync(${JSON.stringify(log)}, url + '\\n'); return next(url, ctx); }\n`,
  );
  await fsp.writeFile(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  const r = await runCli(args, { env: { NODE_OPTIONS: `--import ${pathToFileURL(register).href}` } });
  const modules = (await fsp.readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean);
  return { code: r.code, stderr: r.stderr, modules };
}

/** Runs the CLI with fs/promises' readFile wrapped to append each path it reads to a file; returns those paths. */
async function filesRead(dir: string, args: string[]): Promise<{ code: number; stderr: string; files: string[] }> {
  const log = path.join(dir, `reads-${Date.now()}.txt`);
  const preload = path.join(dir, 'reads.mjs');
  await fsp.writeFile(
    preload,
    [
      `import { appendFileSync } from 'node:fs';`,
      `import { createRequire, syncBuiltinESMExports } from 'node:module';`,
      `const fsp = createRequire(import.meta.url)('node:fs/promises');`,
      `const readFile = fsp.readFile;`,
      `fsp.readFile = function (file, ...rest) { appendFileSync(${JSON.stringify(log)}, String(file) + '\\n'); return readFile.call(this, file, ...rest); };`,
      `syncBuiltinESMExports();`,
    ].join('\n') + '\n',
  );
  const r = await runCli(args, { env: { NODE_OPTIONS: `--import ${pathToFileURL(preload).href}` } });
  const files = (await fsp.readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean);
  return { code: r.code, stderr: r.stderr, files };
}

/** The packages (node_modules/<name>) among loaded module URLs. */
function packagesOf(modules: string[]): Set<string> {
  const out = new Set<string>();
  for (const m of modules) {
    const hit = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(m);
    if (hit) out.add(hit[1]!);
  }
  return out;
}

describe('what a deletion loads', () => {
  let dir: string;
  let ws: string;
  let trainId: string;
  before(async () => {
    dir = await tempDir();
    const csv = await makeCorpus(dir, { rows: 600 });
    ws = path.join(dir, 'ws');
    await cliJson(['ingest', csv, '--workdir', ws, '--shards', '2', '--slices', '2']);
    await cliJson(['train', '--workdir', ws]);
    const state = await readState(ws);
    const { readRowsFile } = await import('../src/data/shardFile.js');
    trainId = (await readRowsFile(path.join(ws, 'shards', state.shards[0].file))).ids[0]!;
  });

  it('delete --id with the fused kernel loads no tfjs, no module-per-file Arrow build, no queue, S3, chart or LP library, no zod 4, no other command', async () => {
    const r = await loadedModules(dir, ['delete', '--id', trainId, '--workdir', ws, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.modules.some((m) => m.endsWith('/src/app/delete.js')), 'the hooks saw the deletion');
    // Also none of the fairness LP solver and statistics (no calibration split here: nothing to refit), the
    // worker pool's queue, or the terminal progress bar (stdout is a pipe).
    const heavy = [...packagesOf(r.modules)].filter((p) => /^(apache-arrow|@tensorflow\/|@aws-sdk\/|bullmq|ioredis|vega|vega-lite|highs|simple-statistics|p-queue|cli-progress)$/.test(p));
    assert.deepEqual(heavy, [], `loaded: ${heavy.join(', ')}`);
    // The state files are validated with zod's zod-3 API, which loads in a fraction of zod 4's time.
    const zod4 = r.modules.filter((m) => /node_modules\/zod\/(?!v3\/)/.test(m));
    assert.deepEqual(zod4, [], 'zod 4 API loaded');
    // Only the command being run is loaded, and no fairness module without post-processors to refit.
    const others = r.modules.filter((m) => /\/src\/cli\/commands\/(?!(delete|text)\.js$)/.test(m) || /\/src\/(fairness\/|app\/fairnessFit\.js)/.test(m));
    assert.deepEqual(others, [], 'modules of other commands or of fairness loaded');
    // The shard really was retrained in this process (the models changed version).
    const state = await readState(ws);
    assert.equal(state.models[0].version, 2);
  });

  it('delete --id reads the shard file once: the in-process retrain starts from the rows the deletion located the id in', async () => {
    const before = await readState(ws);
    const shard = 1; // the first test retrained shard 0
    const { readRowsFile } = await import('../src/data/shardFile.js');
    const id = (await readRowsFile(path.join(ws, 'shards', before.shards[shard].file))).ids[0]!;
    const r = await filesRead(dir, ['delete', '--id', id, '--workdir', ws, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const shardReads = r.files.filter((f) => /\.arrow$/.test(f));
    assert.deepEqual(shardReads, [path.join(ws, 'shards', before.shards[shard].file)], `read: ${shardReads.join(', ')}`);
    const after = await readState(ws);
    assert.equal(after.models[shard].version, before.models[shard].version + 1, 'the shard was retrained');
    // Exact all the same: verify --deep retrains every shard from its file and compares the weights.
    const v = await runCli(['verify', '--deep', '--workdir', ws]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });
});

describe('what predict and train load', () => {
  let dir: string;
  let ws: string;
  let csv: string;
  before(async () => {
    dir = await tempDir();
    csv = await makeCorpus(dir, { rows: 400 });
    ws = path.join(dir, 'ws');
    await cliJson(['ingest', csv, '--workdir', ws, '--shards', '2', '--slices', '2']);
  });

  // Every module is paid on every call; the Parquet and Arrow readers, the fairness module (zod 4, the LP
  // solver, statistics) were most of a plain predict's start-up (~0.25 s of ~0.35 s of imports).
  const notNeeded = (modules: string[]) => [
    ...[...packagesOf(modules)].filter((p) => /^(apache-arrow|hyparquet|@tensorflow\/|highs|simple-statistics)$/.test(p)),
    ...modules.filter((m) => /node_modules\/zod\/(?!v3\/)/.test(m)).slice(0, 1),
    ...modules.filter((m) => /\/src\/app\/fairnessFit\.js$/.test(m)),
  ];

  it('train without a calibration split loads no fairness module, LP solver or zod 4 on its main thread', async () => {
    const r = await loadedModules(dir, ['train', '--workdir', ws, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.modules.some((m) => m.endsWith('/src/app/train.js')), 'the hooks saw the training');
    assert.deepEqual(notNeeded(r.modules), []);
  });

  it('predict on a CSV file loads no Parquet or Arrow reader, no fairness module, LP solver or zod 4', async () => {
    const r = await loadedModules(dir, ['predict', csv, '--workdir', ws, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.modules.some((m) => m.endsWith('/src/app/predictFile.js')), 'the hooks saw the prediction');
    assert.deepEqual(notNeeded(r.modules), []);
  });
});

/**
 * sisa as a library, as a user gets it: `npm pack`, installed into a fresh ESM project and a fresh
 * TypeScript project, the README's library example run there. Plus the promises the library makes at
 * its door: every option documented, a wrong option a one-line error naming it, before any file is
 * read or written.
 *
 * Installing: `npm install --offline` of the tarball, which works wherever the npm cache holds the
 * dependencies (CI after `npm ci`). Where it does not (a checkout whose node_modules came from
 * elsewhere), the tarball is unpacked as node_modules/sisa and only its declared dependencies are
 * linked beside it from this checkout, so a missing dependency or a file left out of the package
 * still fails here.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { before, describe, it } from 'node:test';
import ts from 'typescript';
import { repoRoot, tempDir } from './helpers.js';
import { writeCorpusCsv } from '../src/demo/corpus.js';
import * as sisa from '../src/index.js';

const run = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

async function exists(p: string): Promise<boolean> {
  return fsp.access(p).then(
    () => true,
    () => false,
  );
}

/** Installs the tarball into `project`; says how. */
async function installTarball(project: string, tarball: string): Promise<'npm' | 'unpacked'> {
  try {
    await run(npm, ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', tarball], { cwd: project });
    return 'npm';
  } catch (err) {
    if (!/ENOTCACHED/.test(String((err as { stderr?: string }).stderr ?? err))) throw err;
  }
  const modules = path.join(project, 'node_modules');
  await fsp.mkdir(modules, { recursive: true });
  await run('tar', ['xzf', tarball, '-C', modules]);
  await fsp.rename(path.join(modules, 'package'), path.join(modules, 'sisa'));
  const manifest = JSON.parse(await fsp.readFile(path.join(modules, 'sisa', 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  for (const dep of Object.keys(manifest.dependencies)) await link(project, dep);
  return 'unpacked';
}

/** A package of this checkout, linked into the project's node_modules. */
async function link(project: string, name: string): Promise<void> {
  const target = path.join(project, 'node_modules', name);
  if (await exists(target)) return;
  await fsp.mkdir(path.dirname(target), { recursive: true });
  await fsp.symlink(path.join(repoRoot, 'node_modules', name), target, 'dir');
}

/** The README's library example: the first ```js block under "## Library", run as written. */
function readmeLibraryExample(): string {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Library\n'));
  const match = /\n```js\n([\s\S]*?)\n```\n/.exec(section);
  if (!match) throw new Error('README.md has no ```js block under "## Library"');
  return match[1]! + '\n';
}

describe('the packed library', () => {
  let dir: string;
  let tarball: string;
  let project: string;
  let how: string;

  before(async () => {
    dir = await tempDir('sisa-pack-');
    // dist/ is built by `npm test` (tsc) before the tests run; packing must not rebuild it meanwhile.
    const { stdout } = await run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: repoRoot });
    const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    tarball = path.join(dir, packed!.filename);
    const files = packed!.files.map((f) => f.path);
    assert.ok(files.includes('dist/src/index.js') && files.includes('dist/src/index.d.ts'), 'the package has the library and its types');
    assert.ok(!files.some((f) => f.startsWith('dist/test/') || f.startsWith('test/') || f.startsWith('src/')), 'no tests or sources in the package');
    project = path.join(dir, 'project');
    await fsp.mkdir(project);
    await fsp.writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'uses-sisa', version: '1.0.0', private: true, type: 'module' }, null, 2));
    how = await installTarball(project, tarball);
  });

  it("runs the README's library example in an ESM project", async (t) => {
    t.diagnostic(`installed with: ${how}`);
    await writeCorpusCsv(path.join(project, 'data.csv'), { rows: 3000, seed: 11 });
    await fsp.writeFile(path.join(project, 'new.csv'), 'id,text\nn1,thank you for the help\nn2,you are a stupid idiot\n');
    await fsp.writeFile(path.join(project, 'example.mjs'), readmeLibraryExample());
    const { stdout, stderr } = await run(process.execPath, ['example.mjs'], { cwd: project });
    assert.equal(stderr, '');
    const lines = stdout.trim().split('\n');
    assert.match(lines[0]!, /^ingested \d+ rows; \d+ mention an identity term$/);
    assert.match(stdout, /^trained 8 shards on \S+$/m);
    assert.match(stdout, /^test AUC 0\.\d{3}, accuracy 0\.\d{3}$/m);
    assert.match(stdout, /^n1: score [01]\.\d{3}, label [01]$/m);
    assert.match(stdout, /^n2: score [01]\.\d{3}, label [01]$/m);
    const flagged = [...stdout.matchAll(/^resident predictor, call [12]: (\d+) of 10000 flagged$/gm)].map((m) => m[1]);
    assert.equal(flagged.length, 2, 'two calls of the resident predictor');
    assert.equal(flagged[0], flagged[1], 'the same labels on both calls');
    assert.match(stdout, /^deleted d42; not found: no-such-id$/m);
    assert.match(stdout, /^report: report\.json, report\.md, report\.html$/m);
    assert.match(stdout, /^verify: ok$/m);
    assert.match(stdout, /^recover: none$/m);
    assert.equal(lines.at(-1), `error: ingest: option 'positiveValues' must be an array of strings, got a string ("1")`);
    assert.ok(!(await exists(path.join(project, 'ws2'))), 'the refused ingest created nothing');
  });

  // skipLibCheck as `tsc --init` sets it: tfjs-core's own declarations name a type they do not import
  // (Long). The @ts-expect-error lines fail if sisa's types did not resolve (an unresolved type is any).
  it('resolves its types in a TypeScript project (tsc --noEmit)', async () => {
    const tsProject = path.join(dir, 'ts-project');
    await fsp.mkdir(tsProject);
    await fsp.cp(path.join(project, 'node_modules'), path.join(tsProject, 'node_modules'), { recursive: true, verbatimSymlinks: true });
    await link(tsProject, '@types/node');
    await fsp.writeFile(path.join(tsProject, 'package.json'), JSON.stringify({ name: 'uses-sisa-ts', version: '1.0.0', private: true, type: 'module' }));
    await fsp.writeFile(
      path.join(tsProject, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] }, include: ['main.ts'] }),
    );
    await fsp.writeFile(
      path.join(tsProject, 'main.ts'),
      `import { ingest, train, deleteRecords, predictFile, fitFairness, writeReport, recover, verify, status, SisaError, type IngestOptions, type PredictOptions, type Prediction, type StatusResult } from 'sisa';
const o: IngestOptions = { input: 'data.csv', workdir: 'ws', positiveValues: ['0', '1'] };
await ingest(o);
await train({ workdir: 'ws', learner: { epochs: 3 } });
const p: PredictOptions = { workdir: 'ws', file: 'new.csv', aggregate: 'mean' };
const preds: Prediction[] = await predictFile(p);
const scores: number[] = preds.map((x) => x.score);
const d = await deleteRecords({ workdir: 'ws', ids: ['1'] });
const notFound: string[] = d.notFound;
await fitFairness({ workdir: 'ws' });
const { files } = await writeReport({ workdir: 'ws' });
const ok: boolean = (await verify({ workdir: 'ws', deep: false })).ok;
const r = await recover({ workdir: 'ws' });
const s: StatusResult = await status({ workdir: 'ws' });
const bytes: number = s.disk.bytes;
// @ts-expect-error positiveValues is a list, not the CLI's comma-separated string
await ingest({ input: 'data.csv', workdir: 'ws', positiveValues: '0,1' });
// @ts-expect-error predictFile takes one options object
await predictFile('ws', 'new.csv');
console.log(scores, notFound, files, ok, r.action, bytes, SisaError);
`,
    );
    const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: tsProject }).catch((err: { stdout: string }) => err);
    assert.equal(result.stdout, '', 'tsc reports no errors');
  });
});

describe('options at the door', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir();
  });

  const wrong: [string, () => Promise<unknown>, RegExp][] = [
    ['ingest', () => sisa.ingest({ input: 'missing.csv', workdir: 'W', positiveValues: '0,1' as never }), /^ingest: option 'positiveValues' must be an array of strings, got a string \("0,1"\)$/],
    ['ingest', () => sisa.ingest({ input: 'missing.csv', workdir: 'W', shards: '8' as never }), /^ingest: option 'shards' must be a number, got a string \("8"\)$/],
    ['ingest', () => sisa.ingest({ input: 'missing.csv', workdir: 'W', labelColumn: 'class' } as never), /^ingest: unknown option 'labelColumn' \(did you mean 'labelCol'\?\)$/],
    ['ingest', () => sisa.ingest({ workdir: 'W' } as never), /^ingest: option 'input' is required \(a string\)$/],
    ['ingest', () => sisa.ingest({ input: 'missing.csv', workdir: 'W', labelThreshold: Number('abc') }), /^ingest: option 'labelThreshold' must be a number, got NaN$/],
    ['ingest', () => sisa.ingest({ input: 'missing.csv', workdir: 'W', features: { buckets: 1024, ngrams: '2', signed: true } as never }), /^ingest: option 'features\.ngrams' must be a number/],
    ['train', () => sisa.train({ workdir: 'W', learner: { optimiser: 'sgd' } as never }), /^train: unknown option 'learner\.optimiser' \(did you mean 'learner\.optimizer'\?\)$/],
    ['train', () => sisa.train({ workdir: 'W', learner: { optimizer: 'adam' as never } }), /^train: option 'learner\.optimizer' must be one of 'adagrad', 'sgd', got a string \("adam"\)$/],
    ['deleteRecords', () => sisa.deleteRecords({ workdir: 'W', ids: '1234' as never }), /^deleteRecords: option 'ids' must be an array of strings, got a string \("1234"\)$/],
    ['predictFile', () => sisa.predictFile({ workdir: 'W', file: 'new.csv', fair: 'fair' as never }), /^predictFile: option 'fair' must be one of 'per-model', 'ensemble', 'votes'/],
    ['predictFile', () => (sisa.predictFile as (...a: unknown[]) => Promise<unknown>)('W', 'new.csv', 'vote'), /^predictFile: expects an options object, got a string \("W"\)$/],
    ['evaluate', () => sisa.evaluate({ workdir: 'W', split: 'train' as never }), /^evaluate: option 'split' must be one of 'test', 'calibration'/],
    ['fitFairness', () => sisa.fitFairness({ workdir: 'W', tolerance: '0.1' as never }), /^fitFairness: option 'tolerance' must be a number/],
    ['writeReport', () => sisa.writeReport({ workdir: 'W', evalColumns: { positiveValues: 'yes' as never } }), /^writeReport: option 'evalColumns\.positiveValues' must be an array of strings/],
    ['verify', () => sisa.verify({ workdir: 'W', deep: 'yes' as never }), /^verify: option 'deep' must be true or false/],
    ['recover', () => sisa.recover({ workdir: 42 as never }), /^recover: option 'workdir' must be a string, got a number \(42\)$/],
    ['status', () => sisa.status({ workdir: 'W', json: true } as never), /^status: unknown option 'json'$/],
  ];
  for (const [name, call, message] of wrong) {
    it(message.source.slice(1, 70).replace(/\\/g, ''), async () => {
      const workdir = path.join(dir, `${name}-${wrong.findIndex((w) => w[2] === message)}`);
      const cwd = process.cwd();
      await fsp.mkdir(workdir);
      process.chdir(workdir); // relative paths in the options point here: nothing may appear
      try {
        await assert.rejects(call(), (err: unknown) => {
          assert.ok(err instanceof sisa.SisaError, `a SisaError, got ${String(err)}`);
          assert.equal(err.code, 'USAGE');
          assert.match(err.message, message);
          assert.ok(!err.message.includes('\n'));
          return true;
        });
      } finally {
        process.chdir(cwd);
      }
      assert.deepEqual(await fsp.readdir(workdir), [], 'no file read or written');
    });
  }

  it('every option of every use case has a TSDoc comment', () => {
    const appDir = path.join(repoRoot, 'src', 'app');
    const missing: string[] = [];
    let checked = 0;
    for (const name of readdirSync(appDir).filter((f) => f.endsWith('.ts'))) {
      const file = ts.createSourceFile(name, readFileSync(path.join(appDir, name), 'utf8'), ts.ScriptTarget.ES2022, true);
      file.forEachChild((node) => {
        if (!ts.isInterfaceDeclaration(node) || !/(Options|FileColumns)$/.test(node.name.text)) return;
        if (!node.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) return;
        for (const member of node.members) {
          checked++;
          const docs = ts.getJSDocCommentsAndTags(member);
          if (docs.length === 0) missing.push(`${name}: ${node.name.text}.${member.name?.getText(file)}`);
        }
      });
    }
    assert.ok(checked > 60, `checked ${checked} options`);
    assert.deepEqual(missing, []);
  });
});

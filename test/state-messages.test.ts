/**
 * The words of a damaged manifest's error, through the CLI. The state files are validated with a schema
 * library whose own messages a person reads ("invalid manifest at 'config.shards': …"); these are the
 * messages users have seen so far, pinned so that a change of validator (or of its version) cannot
 * change them unnoticed. Each case damages one field of a trained workspace's state.json.
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { cliJson, makeCorpus, runCli, snapshot, tempDir } from './helpers.js';

type State = any;
const CASES: [string, (s: State) => State | void, string, string][] = [
  ['a number as text', (s) => void (s.config.shards = '8'), 'config.shards', 'Invalid input: expected number, received string'],
  ['zero where positive', (s) => void (s.config.shards = 0), 'config.shards', 'Too small: expected number to be >0'],
  ['a fraction where an integer', (s) => void (s.config.shards = 1.5), 'config.shards', 'Invalid input: expected int, received number'],
  ['a bound that is excluded', (s) => void (s.config.test = 1), 'config.test', 'Too big: expected number to be <1'],
  ['a negative fraction', (s) => void (s.config.test = -0.1), 'config.test', 'Too small: expected number to be >=0'],
  ['another format version', (s) => void (s.formatVersion = 2), 'formatVersion', 'Invalid input: expected 1'],
  ['an unknown input format', (s) => void (s.dataset.format = 'xls'), 'dataset.format', 'Invalid option: expected one of "csv"|"jsonl"|"parquet"|"arrow"'],
  ['a short hash', (s) => void (s.shards[0].sha256 = 'abc'), 'shards.0.sha256', 'Invalid string: must match pattern /^[0-9a-f]{64}$/'],
  ['a missing field', (s) => void delete s.dataset.rows, 'dataset.rows', 'Invalid input: expected number, received undefined'],
  ['an unknown label rule', (s) => void (s.config.labelRule = { kind: 'nope' }), 'config.labelRule.kind', "Invalid discriminator value. Expected 'auto' | 'positive-values' | 'threshold'"],
  ['a list where a record', (s) => void (s.training.runtime = { backend: 'x', versions: [] }), 'training.runtime.versions', 'Invalid input: expected record, received array'],
  ['an infinite number', (s) => void (s.models[0].seconds = 'INFINITE'), 'models.0.seconds', 'Invalid input: expected number, received Infinity'],
  ['a store that is not s3', (s) => void (s.store = 'http://x'), 'store', 'Invalid string: must match pattern /^s3:\\/\\/[^/@]+(\\/.*)?$/'],
  ['a number where a nullable file', (s) => void (s.heldout.calibration = 5), 'heldout.calibration', 'Invalid input: expected object, received number'],
  ['a list for the whole state', () => [], '', 'Invalid input: expected object, received array'],
];

describe('damaged manifest messages', () => {
  let dir: string;
  let ws: string;
  let state: State;
  before(async () => {
    dir = await tempDir();
    const csv = await makeCorpus(dir, { rows: 300 });
    ws = path.join(dir, 'ws');
    await cliJson(['ingest', csv, '--workdir', ws, '--shards', '2', '--slices', '2']);
    await cliJson(['train', '--workdir', ws]);
    state = JSON.parse(await fsp.readFile(path.join(ws, 'manifests', 'state.json'), 'utf8'));
    assert.ok(state.training, 'trained');
  });

  for (const [name, damage, at, message] of CASES) {
    it(`${name}: invalid manifest at '${at}'`, async () => {
      const copy = path.join(dir, `ws-${name.replace(/\W+/g, '-')}`);
      await fsp.cp(ws, copy, { recursive: true });
      const s = structuredClone(state);
      const replaced = damage(s);
      // JSON has no Infinity: a number too large for a double is read as one.
      const text = JSON.stringify(replaced ?? s, null, 2).replace('"INFINITE"', '1e400');
      await fsp.writeFile(path.join(copy, 'manifests', 'state.json'), text);
      const r = await runCli(['status', '--workdir', copy]);
      assert.equal(r.code !== 0, true, 'refused');
      assert.equal(r.stderr, `sisa: error: ${path.join(copy, 'manifests', 'state.json')}: invalid manifest at '${at}': ${message}\n`);
    });
  }

  it('a data file name that is not its role and hash (a damaged or edited manifest) is refused: train does not collect the real file as stray', async () => {
    const real: string = state.shards[1].file;
    const hash12: string = state.shards[1].sha256.slice(0, 12);
    // The real file is then referenced by no entry, and the garbage collector of train (and recover)
    // removed it, the only copy of that shard's data: one hex digit of the name changed, or the name of
    // another role with the same hash.
    for (const [name, wrong] of [
      ['a digit of the hash', real.replace(/([0-9a-f])\.arrow$/, (_: string, d: string) => `${d === '0' ? '1' : '0'}.arrow`)],
      ['another shard', `shard-002-${hash12}.arrow`],
      ['a held-out role', `test-${hash12}.arrow`],
    ] as const) {
      const copy = path.join(dir, `ws-renamed-${name.replace(/\W+/g, '-')}`);
      await fsp.cp(ws, copy, { recursive: true });
      const s = structuredClone(state);
      s.shards[1].file = wrong;
      await fsp.writeFile(path.join(copy, 'manifests', 'state.json'), JSON.stringify(s, null, 2));
      const before = await snapshot(copy);
      for (const command of [['train'], ['recover'], ['delete', '--id', 'd3'], ['verify']]) {
        const r = await runCli([...command, '--workdir', copy]);
        assert.equal(r.code, 1, `${name}, ${command[0]}: ${r.stderr}`);
        // verify lists it among its problems ('verify found 1 problem(s): manifest: …'); the others fail on it.
        assert.match(r.stderr, /^sisa: error: [^\n]+\n$/, 'one line');
        assert.ok(
          r.stderr.endsWith(`${path.join(copy, 'manifests', 'state.json')}: invalid manifest at 'shards.1.file': Invalid file name: expected '${real}' (its role and hash), got '${wrong}'\n`),
          r.stderr,
        );
        assert.deepEqual(await snapshot(copy), before, `${name}: ${command[0]} left the workspace as it was`);
      }
    }
    const copy = path.join(dir, 'ws-renamed-outside');
    await fsp.cp(ws, copy, { recursive: true });
    const s = structuredClone(state);
    // A name that leaves the shards folder is refused the same way, before any file is read.
    s.heldout.test.file = '../../../../etc/passwd';
    await fsp.writeFile(path.join(copy, 'manifests', 'state.json'), JSON.stringify(s, null, 2));
    const r = await runCli(['verify', '--workdir', copy]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /invalid manifest at 'heldout\.test\.file': Invalid file name: .* got '\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd'\n$/);
  });

  it('learner settings out of range are refused in the same words', async () => {
    for (const [flag, key, message] of [
      ['--epochs=0', 'epochs', 'Too small: expected number to be >0'],
      ['--epochs=1.5', 'epochs', 'Invalid input: expected int, received number'],
      ['--l2=-1', 'l2', 'Too small: expected number to be >=0'],
    ] as const) {
      const r = await runCli(['train', '--workdir', ws, flag]);
      assert.equal(r.stderr, `sisa: error: invalid learner setting --${key}: ${message}\n`);
    }
  });
});

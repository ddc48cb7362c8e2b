/**
 * Crash safety, locking and audit through the CLI: SIGKILL at many points, then recover and verify;
 * two deletions at once; verify catching tampering.
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { cliJson, makeCorpus, readState, runCli, tempDir } from './helpers.js';

const INGEST = ['--shards', '3', '--slices', '3', '--test', '0.2', '--calibration', '0.2', '--group-terms', 'builtin', '--seed', '9', '--quiet'];
const modelHashes = async (ws: string) => (await readState(ws)).models.map((m: { modelHash: string }) => m.modelHash);

async function copy(from: string, to: string): Promise<string> {
  await fsp.cp(from, to, { recursive: true });
  return to;
}

async function recoverAndVerify(ws: string): Promise<any> {
  const rec = await cliJson(['recover', '--workdir', ws]);
  const ver = await runCli(['verify', '--workdir', ws, '--json']);
  assert.equal(ver.code, 0, `verify after recover: ${ver.stdout}${ver.stderr}`);
  return rec;
}

describe('crash safety (SIGKILL at many points, then recover and verify)', () => {
  let dir: string;
  let corpus: string;
  let ingested: string;
  let trained: string;
  let trainedHashes: string[];
  let deletedHashes: string[];
  const victims = ['d10', 'd11', 'd12', 'd13', 'd14', 'd15'];

  before(async () => {
    dir = await tempDir();
    corpus = await makeCorpus(dir, { rows: 1500, annotatorBias: 0.3 });
    ingested = path.join(dir, 'ingested');
    await cliJson(['ingest', corpus, '--workdir', ingested, ...INGEST]);
    trained = await copy(ingested, path.join(dir, 'trained'));
    await cliJson(['train', '--workdir', trained, '--quiet']);
    trainedHashes = await modelHashes(trained);
    const ref = await copy(trained, path.join(dir, 'reference'));
    await cliJson(['delete', '--workdir', ref, ...victims.flatMap((v) => ['--id', v]), '--quiet']);
    deletedHashes = await modelHashes(ref);
  });

  const trainPoints = ['checkpoint:stored@1', 'checkpoint:stored@5', 'write:before-rename@3', 'write:after-rename@4', 'train:jobs-done', 'train:committed', 'fairness:before-write'];
  const deletePoints = [
    'delete:request-accepted',
    'shard:before-rename@1',
    'delete:files-rewritten',
    'checkpoint:stored@1',
    'checkpoint:stored@2',
    'write:before-rename@2',
    'write:after-rename@2',
    'delete:retrained',
    'delete:receipt-written',
    'delete:committed',
    'gc:removed-file@1',
    'delete:collected',
    'fairness:before-write',
  ];
  const ingestPoints = ['shard:before-rename@2', 'ingest:files-written', 'ingest:committed'];

  it(`train killed at ${trainPoints.length} points: recover, verify, retrain gives the uninterrupted models`, async () => {
    for (const point of trainPoints) {
      const ws = await copy(ingested, path.join(dir, `train-${point.replace(/[:@]/g, '-')}`));
      const r = await runCli(['train', '--workdir', ws, '--quiet'], { env: { SISA_CRASH_AT: point } });
      assert.equal(r.signal, 'SIGKILL', `${point}: process was killed (${r.stderr})`);
      const refused = await runCli(['train', '--workdir', ws, '--quiet']);
      assert.equal(refused.code, 1, `${point}: writers refuse until recovered`);
      assert.match(refused.stderr, /interrupted 'train'.*sisa recover/);
      const read = await runCli(['status', '--workdir', ws]);
      assert.equal(read.code, 0, `${point}: status answers from the last committed state`);
      assert.match(read.stderr, /^sisa: warning: an interrupted 'train'/);
      await recoverAndVerify(ws);
      if (point === 'train:committed' || point === 'fairness:before-write') assert.deepEqual(await modelHashes(ws), trainedHashes, `${point}: the committed training survived`);
      await cliJson(['train', '--workdir', ws, '--quiet']);
      assert.deepEqual(await modelHashes(ws), trainedHashes, `${point}: models equal an uninterrupted run`);
    }
  });

  it(`delete killed at ${deletePoints.length} points: the accepted request is completed by recover`, async () => {
    for (const point of deletePoints) {
      const ws = await copy(trained, path.join(dir, `delete-${point.replace(/[:@]/g, '-')}`));
      const r = await runCli(['delete', '--workdir', ws, ...victims.flatMap((v) => ['--id', v]), '--quiet'], { env: { SISA_CRASH_AT: point } });
      assert.equal(r.signal, 'SIGKILL', `${point}: process was killed (${r.stderr})`);
      const rec = await recoverAndVerify(ws);
      assert.equal(rec.interrupted?.op, 'delete', `${point}: the interrupted deletion was found`);
      assert.equal(rec.action, 'completed', `${point}: an accepted deletion is completed, never lost`);
      assert.deepEqual(await modelHashes(ws), deletedHashes, `${point}: models equal an uninterrupted deletion`);
      const again = await cliJson(['delete', '--workdir', ws, ...victims.flatMap((v) => ['--id', v]), '--quiet']);
      assert.deepEqual(new Set(again.alreadyDeleted.map((x: { id: string }) => x.id)), new Set(victims), `${point}: the records are gone`);
      assert.deepEqual(again.notFound, [], `${point}: and their receipt names them`);
      const st = await cliJson(['status', '--workdir', ws]);
      assert.equal(st.deletions.batches, 1, `${point}: exactly one receipt`);
    }
  });

  it(`ingest --force killed at ${ingestPoints.length} points: rolled back or committed, never half-written`, async () => {
    for (const point of ingestPoints) {
      const ws = await copy(trained, path.join(dir, `ingest-${point.replace(/[:@]/g, '-')}`));
      const r = await runCli(['ingest', corpus, '--workdir', ws, '--force', ...INGEST], { env: { SISA_CRASH_AT: point } });
      assert.equal(r.signal, 'SIGKILL', `${point}: process was killed (${r.stderr})`);
      const rec = await recoverAndVerify(ws);
      assert.equal(rec.interrupted?.op, 'ingest');
      if (point === 'ingest:committed') assert.equal((await readState(ws)).models.length, 0, 'the committed re-ingest stands (models discarded)');
      else assert.deepEqual(await modelHashes(ws), trainedHashes, `${point}: rolled back to the trained workspace`);
    }
  });

  it('a simulated full disk fails cleanly and leaves the workspace intact', async () => {
    const ws = await copy(trained, path.join(dir, 'full-disk'));
    const before = await readState(ws);
    for (const point of ['write:before-rename@2', 'shard:before-rename@1', 'checkpoint:stored@1']) {
      const r = await runCli(['delete', '--workdir', ws, '--id', 'd10', '--quiet'], { env: { SISA_DISK_FULL_AT: point } });
      assert.equal(r.code, 1, `${point}: ${r.stderr}`);
      assert.match(r.stderr, /^sisa: error: .*no space left on device[^\n]*\n$/);
      assert.deepEqual(await readState(ws), before, `${point}: manifest unchanged`);
      // Everything verifies except that the accepted request is still waiting (issue 9 item 10).
      const ver = JSON.parse((await runCli(['verify', '--workdir', ws, '--json'])).stdout);
      assert.deepEqual(ver.checks.filter((c: { ok: boolean }) => !c.ok).map((c: { name: string }) => c.name), ['pending'], `${point}: ${JSON.stringify(ver.problems)}`);
    }
    const rec = await cliJson(['recover', '--workdir', ws]);
    assert.equal(rec.action, 'completed');
    assert.equal((await cliJson(['verify', '--workdir', ws])).ok, true);
    assert.equal((await cliJson(['status', '--workdir', ws])).deletions.records, 1, 'd10 deleted once, by the first kept request');
  });
});

describe('locking and audit', () => {
  let dir: string;
  let ws: string;

  before(async () => {
    dir = await tempDir();
    const corpus = await makeCorpus(dir, { rows: 1500 });
    ws = path.join(dir, 'ws');
    await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '3', '--slices', '2', '--quiet']);
    await cliJson(['train', '--workdir', ws, '--quiet']);
  });

  it('two deletions started at once are both applied (--wait), and verify passes', async () => {
    const [a, b] = await Promise.all([
      runCli(['delete', '--workdir', ws, '--id', 'd20', '--id', 'd21', '--wait', '--json', '--quiet']),
      runCli(['delete', '--workdir', ws, '--id', 'd30', '--id', 'd31', '--wait', '--json', '--quiet']),
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const deleted = [...JSON.parse(a.stdout).deleted, ...JSON.parse(b.stdout).deleted];
    assert.deepEqual(new Set(deleted), new Set(['d20', 'd21', 'd30', 'd31']));
    const ver = await cliJson(['verify', '--workdir', ws]);
    assert.equal(ver.ok, true);
    assert.equal((await cliJson(['status', '--workdir', ws])).deletions.batches, 2);
  });

  it('without --wait, a second writer fails at once with a clear message', async () => {
    const results = await Promise.all([
      runCli(['delete', '--workdir', ws, '--id', 'd40', '--quiet']),
      runCli(['delete', '--workdir', ws, '--id', 'd41', '--quiet']),
      runCli(['delete', '--workdir', ws, '--id', 'd42', '--quiet']),
    ]);
    for (const r of results) if (r.code !== 0) assert.match(r.stderr, /^sisa: error: workspace .* is locked by another sisa process \(pid \d+\); pass --wait to wait for it\n$/);
    assert.ok(results.some((r) => r.code === 0));
    assert.equal((await cliJson(['verify', '--workdir', ws])).ok, true);
  });

  it('receipts chain; --hash-ids keeps ids out of the receipt; verify catches tampering', async () => {
    const oldShards = path.join(dir, 'old-shards');
    await fsp.cp(path.join(ws, 'shards'), oldShards, { recursive: true });
    const del = await cliJson(['delete', '--workdir', ws, '--id', 'd50', '--hash-ids', '--quiet']);
    const entry = JSON.parse(await fsp.readFile(path.join(ws, 'manifests', 'deletions', String(del.logEntry).padStart(6, '0') + '.json'), 'utf8'));
    assert.equal(entry.idsHashed, true);
    assert.ok(!JSON.stringify(entry).includes('"d50"'), 'the raw id is not in the receipt');
    assert.match(entry.deleted[0], /^[0-9a-f]{64}$/);
    assert.match(entry.prevSha256, /^[0-9a-f]{64}$/);
    for (const k of ['shardSha256Before', 'shardSha256After', 'fromCheckpoint', 'modelVersion', 'modelHash']) assert.ok(k in entry.shards[0], k);
    assert.equal((await cliJson(['verify', '--workdir', ws])).ok, true);

    // Tamper with an earlier receipt: the chain breaks.
    const tampered = await copy(ws, path.join(dir, 'tampered'));
    const first = path.join(tampered, 'manifests', 'deletions', '000001.json');
    await fsp.writeFile(first, (await fsp.readFile(first, 'utf8')).replace('"requested": 2', '"requested": 3'));
    const v1 = await runCli(['verify', '--workdir', tampered]);
    assert.equal(v1.code, 1);
    assert.match(v1.stdout, /FAIL receipts: entry 2: does not chain to entry 1/);

    // Put the pre-deletion shard file back beside the current ones: verify finds the deleted record.
    const leaked = await copy(ws, path.join(dir, 'leaked'));
    for (const f of await fsp.readdir(oldShards)) if (f.endsWith('.arrow')) await fsp.copyFile(path.join(oldShards, f), path.join(leaked, 'shards', f));
    const v2 = await runCli(['verify', '--workdir', leaked]);
    assert.equal(v2.code, 1);
    assert.match(v2.stdout, /FAIL files: shards\/shard-\d+-[0-9a-f]+\.arrow: not referenced by the manifest/);
    assert.match(v2.stdout, /FAIL deleted records: shards\/shard-\d+-[0-9a-f]+\.arrow still holds 1 deleted record/);
    // recover removes such stray files, after which verify passes.
    await cliJson(['recover', '--workdir', leaked]);
    assert.equal((await cliJson(['verify', '--workdir', leaked])).ok, true);

    // A model file edited on disk: its hash no longer matches its name.
    const edited = await copy(ws, path.join(dir, 'edited'));
    const ck = (await readState(edited)).models[0].checkpoints.at(-1);
    const ckFile = path.join(edited, 'shards', 'checkpoints', `${ck}.ckpt`);
    const bytes = await fsp.readFile(ckFile);
    bytes[bytes.length - 1] ^= 0xff;
    await fsp.writeFile(ckFile, bytes);
    const v3 = await runCli(['verify', '--workdir', edited]);
    assert.equal(v3.code, 1);
    assert.match(v3.stdout, /content does not match its name/);
  });

  it('verify --deep retrains every shard and finds the same weights', async () => {
    const r = await cliJson(['verify', '--workdir', ws, '--deep']);
    assert.equal(r.ok, true);
    assert.ok(r.checks.some((c: { name: string; ok: boolean }) => c.name === 'deep retrain' && c.ok));
  });
});

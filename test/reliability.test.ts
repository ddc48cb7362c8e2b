/**
 * Crash safety, locking and audit through the CLI: SIGKILL at many points, then recover and verify;
 * two deletions at once; verify catching tampering.
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { cliJson, makeCorpus, nothingPending, readState, runCli, snapshot, tempDir } from './helpers.js';
import { copy, crashSafetySuite } from './crash-suite.js';

crashSafetySuite({ powerLoss: false });


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
    // sisa predict reads the file while the models load: the damaged model is still what it reports, also
    // when the file is bad too (a row that does not parse, a format it cannot tell from the extension, no
    // file at all); with the models intact, each of these files gets its own error.
    const badRow = path.join(dir, 'bad-row.csv');
    await fsp.writeFile(badRow, 'id,text\n1,"fine"\n2,"never closed\n');
    const badExt = path.join(dir, 'scores.xyz');
    await fsp.writeFile(badExt, 'x');
    for (const file of [badRow, badExt, path.join(dir, 'absent.csv')]) {
      const p = await runCli(['predict', file, '--workdir', edited]);
      assert.equal(p.code, 1, p.stderr);
      assert.match(p.stderr, /^sisa: error: .*\.ckpt: checkpoint content does not match its hash; it was modified or truncated\n$/, path.basename(file));
      assert.equal(p.stdout, '');
      const intact = await runCli(['predict', file, '--workdir', ws]);
      assert.equal(intact.code, 1, intact.stderr);
      assert.match(intact.stderr, /^sisa: error: .*(row 2 \(line 3\)|cannot tell the format from the extension|cannot read input file).*\n$/, path.basename(file));
    }
  });

  it('the newest receipt is anchored in the manifest: verify catches an edit of it, and delete does not chain onto a damaged or edited one', async () => {
    const state = await readState(ws);
    assert.ok(state.deletions >= 2, 'deletions made by the tests before');
    const newest = (w: string) => path.join(w, 'manifests', 'deletions', String(state.deletions).padStart(6, '0') + '.json');
    const refused = async (w: string, pattern: RegExp) => {
      const before = await snapshot(w);
      const r = await runCli(['delete', '--workdir', w, '--id', 'd60', '--quiet']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^sisa: error: [^\n]+\n$/, 'one line');
      assert.match(r.stderr, pattern);
      assert.deepEqual(await snapshot(w), before, 'nothing written (no new receipt, shard or model)');
      assert.ok(await nothingPending(w), 'the request is refused, not kept pending');
    };

    // Edited: still valid JSON, so only the hash the manifest recorded with it can tell.
    const edited = await copy(ws, path.join(dir, 'newest-edited'));
    await fsp.writeFile(newest(edited), (await fsp.readFile(newest(edited), 'utf8')).replace(/"requested": (\d+)/, (_, n) => `"requested": ${Number(n) + 1}`));
    const v = await runCli(['verify', '--workdir', edited]);
    assert.equal(v.code, 1);
    assert.match(v.stdout, new RegExp(`FAIL receipts: entry ${state.deletions}: changed after its commit \\(its sha256 is not the one the manifest recorded\\)`));
    await refused(edited, new RegExp(`deletions/0+${state.deletions}\\.json: deletion log entry ${state.deletions} was changed after its commit .*restore it from a backup`));
    // recover applying a kept request stops the same way, before it rewrites or retrains anything.
    await fsp.mkdir(path.join(edited, 'manifests', 'pending'), { recursive: true });
    await fsp.writeFile(path.join(edited, 'manifests', 'pending', '000090.json'), JSON.stringify({ ids: ['d61'], strict: false, hashIds: false, requestedAt: new Date().toISOString() }));
    const beforeRecover = await snapshot(edited);
    const rec = await runCli(['recover', '--workdir', edited, '--quiet']);
    assert.equal(rec.code, 1, rec.stderr);
    assert.match(rec.stderr, /^sisa: error: [^\n]*was changed after its commit[^\n]*\n$/);
    assert.deepEqual(await snapshot(edited), beforeRecover, 'no stray shard file or checkpoint, the request kept');

    // Damaged (emptied), and in a manifest written before the anchor existed: the entry itself is checked.
    const emptied = await copy(ws, path.join(dir, 'newest-emptied'));
    await fsp.writeFile(newest(emptied), '');
    const s = JSON.parse(await fsp.readFile(path.join(emptied, 'manifests', 'state.json'), 'utf8'));
    delete s.lastReceiptSha256;
    await fsp.writeFile(path.join(emptied, 'manifests', 'state.json'), JSON.stringify(s, null, 2));
    await refused(emptied, new RegExp(`deletions/0+${state.deletions}\\.json: deletion log entry is missing or damaged`));
  });

  it('a torn last journal line (a crash mid-append) does not hide the next operation: a deletion killed after it is seen as interrupted and completed by recover', async () => {
    const w = await copy(ws, path.join(dir, 'torn-journal'));
    const journal = path.join(w, 'manifests', 'journal.jsonl');
    await fsp.appendFile(journal, '{"seq":99,"op":"de');
    const before = (await cliJson(['status', '--workdir', w])).deletions.records;
    const killed = await runCli(['delete', '--workdir', w, '--id', 'd70', '--quiet'], { env: { SISA_CRASH_AT: 'delete:retrained' } });
    assert.equal(killed.signal, 'SIGKILL');
    // Each line of the journal after the torn one is whole; the deletion's begin is one of them.
    const lines = (await fsp.readFile(journal, 'utf8')).split('\n');
    const torn = lines.indexOf('{"seq":99,"op":"de');
    assert.ok(torn >= 0, 'the torn line stays as it was');
    const after = lines.slice(torn + 1).filter((l) => l !== '').map((l) => JSON.parse(l));
    assert.ok(after.some((l) => l.op === 'delete' && l.phase === 'begin'), 'the begin line is a line of its own');
    const blocked = await runCli(['delete', '--workdir', w, '--id', 'd71', '--quiet']);
    assert.equal(blocked.code, 1);
    assert.match(blocked.stderr, /an interrupted 'delete' .* must be recovered first: run 'sisa recover'/);
    assert.equal((await runCli(['recover', '--workdir', w, '--quiet'])).code, 0);
    assert.equal((await cliJson(['status', '--workdir', w])).deletions.records, before + 1, 'recover completed the accepted deletion');
    assert.equal((await cliJson(['verify', '--workdir', w])).ok, true);
  });

  it('a damaged accepted request in manifests/pending/ stops delete and recover with a one-line error naming it, before any work; verify reports it', async () => {
    for (const [name, content, problem] of [
      ['garbage', '\u0000\u00ff{not json', /manifests\/pending\/000050\.json: accepted deletion request is damaged \(not valid JSON\)/],
      ['a field missing', '{"ids":["d80"]}\n', /manifests\/pending\/000050\.json: accepted deletion request is damaged \(invalid request at 'strict': Invalid input: expected boolean, received undefined\)/],
    ] as const) {
      const w = await copy(ws, path.join(dir, `pending-${name.replace(/\W+/g, '-')}`));
      const file = path.join(w, 'manifests', 'pending', '000050.json');
      await fsp.mkdir(path.dirname(file), { recursive: true });
      await fsp.writeFile(file, content);
      const v = await runCli(['verify', '--workdir', w]);
      assert.equal(v.code, 1, `${name}: ${v.stderr}`);
      assert.match(v.stdout, new RegExp(`FAIL .*${problem.source}`), name);
      for (const command of [['delete', '--id', 'd81'], ['recover']]) {
        const before = await snapshot(w);
        const r = await runCli([...command, '--workdir', w, '--quiet']);
        assert.equal(r.code, 1, `${name}, ${command[0]}: ${r.stderr}`);
        assert.match(r.stderr, /^sisa: error: [^\n]+\n$/, 'one line');
        assert.match(r.stderr, problem, `${name}, ${command[0]}`);
        assert.match(r.stderr, /restore it from a backup, or remove the file to drop that request/);
        assert.deepEqual(await snapshot(w), before, `${name}, ${command[0]}: nothing written, the request file kept`);
      }
    }
  });

  it('on a workspace with receipts, a deletion killed after its receipt or after its commit is completed by recover, and the newest receipt stays anchored', async () => {
    for (const point of ['delete:receipt-written', 'delete:committed']) {
      const w = await copy(ws, path.join(dir, `anchored-${point.replace(/\W+/g, '-')}`));
      const before = await readState(w);
      assert.ok(before.deletions >= 2, 'receipts made by the tests before');
      const killed = await runCli(['delete', '--workdir', w, '--id', 'd95', '--quiet'], { env: { SISA_CRASH_AT: point } });
      assert.equal(killed.signal, 'SIGKILL', point);
      assert.equal((await runCli(['recover', '--workdir', w, '--quiet'])).code, 0, point);
      const after = await readState(w);
      assert.equal(after.deletions, before.deletions + 1, point);
      assert.equal((await cliJson(['verify', '--workdir', w])).ok, true, point);
      const next = await runCli(['delete', '--workdir', w, '--id', 'd96', '--quiet']);
      assert.equal(next.code, 0, `${point}: ${next.stderr}`);
      assert.equal((await cliJson(['verify', '--workdir', w])).ok, true, point);
    }
  });

  it('a deletion that cannot write its journal line leaves no request behind (it was never accepted)', async () => {
    const w = await copy(ws, path.join(dir, 'journal-folder'));
    await fsp.rm(path.join(w, 'manifests', 'journal.jsonl'));
    await fsp.mkdir(path.join(w, 'manifests', 'journal.jsonl'));
    const r = await runCli(['delete', '--workdir', w, '--id', 'd90', '--quiet']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^sisa: error: a folder where a file was expected \(.*manifests\/journal\.jsonl\)[^\n]*\n$/);
    const pending = await fsp.readdir(path.join(w, 'manifests', 'pending')).catch(() => []);
    assert.deepEqual(pending.filter((f) => !f.startsWith('.')), [], 'no request file left in manifests/pending/');
  });

  it('verify --deep retrains every shard and finds the same weights', async () => {
    const r = await cliJson(['verify', '--workdir', ws, '--deep']);
    assert.equal(r.ok, true);
    assert.ok(r.checks.some((c: { name: string; ok: boolean }) => c.name === 'deep retrain' && c.ok));
  });
});

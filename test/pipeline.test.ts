/**
 * The pipeline through the real CLI on a generated corpus: ingest → train → predict → evaluate →
 * delete → status, and exact unlearning checked against a retrain from scratch.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { placeRecord } from '../src/data/assign.js';
import { readRowsFile } from '../src/data/shardFile.js';
import { generateCorpus } from '../src/demo/corpus.js';
import { cliJson, makeCorpus, readState, runCli, sisaBin, snapshot, tempDir } from './helpers.js';

const INGEST = ['--shards', '4', '--slices', '3', '--test', '0.2', '--seed', '5', '--quiet'];

describe('pipeline through the CLI', () => {
  let dir: string;
  let corpus: string;
  let ws: string;

  before(async () => {
    dir = await tempDir();
    corpus = await makeCorpus(dir);
    ws = path.join(dir, 'ws');
  });

  it('ingests, trains, predicts, evaluates and reports status', async () => {
    const ing = await cliJson(['ingest', corpus, '--workdir', ws, ...INGEST]);
    assert.equal(ing.rows, 3000);
    assert.equal(ing.accepted, 3000);
    const inShards = ing.shards.reduce((s: number, x: { rows: number }) => s + x.rows, 0);
    assert.equal(inShards + ing.test + ing.calibration, 3000, 'every row is in exactly one place');
    assert.ok(ing.test > 450 && ing.test < 750, `test split near 20%: ${ing.test}`);

    const tr = await cliJson(['train', '--workdir', ws, '--quiet']);
    assert.equal(tr.backend, 'fused-linear-v1', 'the linear model trains on the fused kernel');
    assert.equal(tr.shards.length, 4);

    const ev = await cliJson(['evaluate', '--workdir', ws, '--aggregate', 'mean']);
    assert.ok(ev.auc > 0.75, `AUC on the synthetic corpus well above chance: ${ev.auc}`);
    assert.equal(ev.perShard.length, 4);

    const newFile = path.join(dir, 'new.csv');
    await fsp.writeFile(newFile, 'id,text\nx1,"shut up you worthless idiot"\nx2,"have a lovely day"\n');
    const csv = await runCli(['predict', newFile, '--workdir', ws]);
    assert.equal(csv.code, 0, csv.stderr);
    const lines = csv.stdout.trim().split('\n');
    assert.equal(lines[0], 'id,score,label');
    assert.equal(lines.length, 3);
    const pj = await cliJson(['predict', newFile, '--workdir', ws, '--aggregate', 'mean']);
    assert.equal(pj.predictions[0].id, 'x1');
    assert.ok(pj.predictions[0].score > pj.predictions[1].score, 'an insult scores above a greeting');

    const st = await cliJson(['status', '--workdir', ws]);
    assert.equal(st.shards.length, 4);
    for (const s of st.shards) {
      assert.equal(typeof s.shard, 'number');
      assert.ok(s.rows > 0);
      assert.equal(s.slices.length, 3);
      assert.equal(s.modelVersion, 1);
      assert.match(s.modelHash, /^[0-9a-f]{64}$/);
    }
    assert.equal(st.backend, 'fused-linear-v1');
  });

  it('a reader that stops early (sisa predict … | head) ends the output quietly: no stack trace, exit 0', async () => {
    // Runs after the first test trained the workspace. A real shell pipe: head exits after 10 bytes, and
    // the output (3,000 predictions, ~240 KB) is larger than the pipe's 64 KiB buffer, so sisa writes on.
    const errFile = path.join(dir, 'predict-stderr.txt');
    const script = '"$0" "$1" predict "$2" --workdir "$3" --json 2>"$4" | head -c 10 >/dev/null; echo "${PIPESTATUS[0]}"';
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn('bash', ['-c', script, process.execPath, sisaBin, corpus, ws, errFile], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.on('error', reject);
      child.on('close', () => resolve(text));
    });
    assert.equal(await fsp.readFile(errFile, 'utf8'), '');
    assert.equal(out.trim(), '0', 'exit code of sisa predict');
  });

  it('training is deterministic: same data and seed give the same weights', async () => {
    const before = (await cliJson(['status', '--workdir', ws])).shards.map((s: { modelHash: string }) => s.modelHash);
    await cliJson(['train', '--workdir', ws, '--quiet']);
    const after = (await cliJson(['status', '--workdir', ws])).shards.map((s: { modelHash: string }) => s.modelHash);
    assert.deepEqual(after, before);
  });

  it('deletes exactly: the affected model equals a retrain from scratch, other shards are untouched', async () => {
    const state = await readState(ws);
    const cfg = state.config;
    // Three records of one shard in slices 1 and 2, so the retrain restores the checkpoint after slice 0.
    const rows = [...generateCorpus({ rows: 3000, seed: 11 })];
    const placed = rows.map((r) => ({ id: r.id, p: placeRecord(r.id, cfg) }));
    const target = placed.find((x) => x.p.split === 'train' && x.p.slice === 1)!;
    const shard = (target.p as { shard: number }).shard;
    const victims = placed
      .filter((x) => x.p.split === 'train' && x.p.shard === shard && x.p.slice >= 1)
      .slice(0, 3)
      .map((x) => x.id);
    const heldOut = placed.find((x) => x.p.split === 'test')!.id;
    const filesBefore = await snapshot(path.join(ws, 'shards'));
    const modelsBefore = state.models;

    const del = await cliJson(['delete', '--workdir', ws, '--quiet', ...victims.flatMap((id) => ['--id', id]), '--id', heldOut, '--id', 'no-such-id']);
    assert.deepEqual(new Set(del.deleted), new Set([...victims, heldOut]));
    assert.deepEqual(del.notFound, ['no-such-id']);
    assert.equal(del.retrained.length, 1, 'several ids in one shard cost one retrain');
    assert.equal(del.retrained[0].shard, shard);
    assert.equal(del.retrained[0].fromSlice, 1);
    assert.ok(typeof del.seconds === 'number');
    assert.deepEqual(del.heldout, [{ split: 'test', ids: [heldOut] }]);

    const after = await readState(ws);
    const filesAfter = await snapshot(path.join(ws, 'shards'));
    for (let s = 0; s < cfg.shards; s++) {
      if (s === shard) continue;
      assert.deepEqual(after.models[s], modelsBefore[s], `shard ${s} model untouched`);
      assert.equal(after.shards[s].sha256, state.shards[s].sha256);
      assert.equal(filesAfter[after.shards[s].file], filesBefore[state.shards[s].file], `shard ${s} file byte-identical`);
      for (const c of after.models[s].checkpoints) assert.equal(filesAfter[`checkpoints/${c}.ckpt`], filesBefore[`checkpoints/${c}.ckpt`]);
    }
    assert.equal(after.models[shard].version, modelsBefore[shard].version + 1);
    assert.equal(after.models[shard].checkpoints[0], modelsBefore[shard].checkpoints[0], 'slice 0 checkpoint reused');
    assert.notEqual(after.models[shard].modelHash, modelsBefore[shard].modelHash);
    // The superseded shard file and checkpoints (which held the records) are gone from disk.
    assert.equal(filesAfter[state.shards[shard].file], undefined);
    for (const c of modelsBefore[shard].checkpoints.slice(1)) assert.equal(filesAfter[`checkpoints/${c}.ckpt`], undefined);
    for (const f of Object.keys(filesAfter).filter((f) => f.endsWith('.arrow'))) {
      const ids = new Set((await readRowsFile(path.join(ws, 'shards', f))).ids);
      for (const id of [...victims, heldOut]) assert.ok(!ids.has(id), `${id} gone from ${f}`);
    }

    // Retrain from scratch on the same data without those records: identical weights, bit for bit.
    const forgotten = new Set([...victims, heldOut]);
    const without = path.join(dir, 'without.csv');
    await fsp.writeFile(
      without,
      'id,text,label\n' + rows.filter((r) => !forgotten.has(r.id)).map((r) => `${r.id},"${r.text}",${r.label}`).join('\n') + '\n',
    );
    const fresh = path.join(dir, 'fresh');
    await cliJson(['ingest', without, '--workdir', fresh, ...INGEST]);
    await cliJson(['train', '--workdir', fresh, '--quiet']);
    const scratch = await readState(fresh);
    assert.equal(scratch.shards[shard].sha256, after.shards[shard].sha256, 'same shard file content');
    assert.deepEqual(scratch.models[shard].checkpoints, after.models[shard].checkpoints, 'same checkpoints after every slice');
    assert.equal(scratch.models[shard].modelHash, after.models[shard].modelHash, 'same weights');
    for (let s = 0; s < cfg.shards; s++) assert.equal(scratch.models[s].modelHash, after.models[s].modelHash);

    const st = await cliJson(['status', '--workdir', ws]);
    assert.equal(st.deletions.records, 4);
    assert.equal(st.deletions.batches, 1);
    assert.equal(st.shards[shard].modelVersion, modelsBefore[shard].version + 1);
  });

  it('reads ids from --ids-file and reports unknown ids; --strict refuses and changes nothing', async () => {
    const state = await readState(ws);
    const ids = [...generateCorpus({ rows: 3000, seed: 11 })].map((r) => r.id).filter((id) => placeRecord(id, state.config).split === 'train').slice(100, 105);
    const idsFile = path.join(dir, 'ids.txt');
    await fsp.writeFile(idsFile, ids.join('\n') + '\nunknown-1\n');
    const snap = await snapshot(ws);
    const strict = await runCli(['delete', '--workdir', ws, '--ids-file', idsFile, '--strict']);
    assert.equal(strict.code, 1);
    assert.match(strict.stderr, /^sisa: error: .*unknown-1.*\n$/);
    assert.deepEqual(await snapshot(ws), snap, 'workspace unchanged');
    const del = await cliJson(['delete', '--workdir', ws, '--ids-file', idsFile, '--quiet']);
    assert.deepEqual(new Set(del.deleted), new Set(ids));
    assert.deepEqual(del.notFound, ['unknown-1']);
    const shards = new Set(ids.map((id) => (placeRecord(id, state.config) as { shard: number }).shard));
    assert.equal(del.retrained.length, shards.size);
    const again = await cliJson(['delete', '--workdir', ws, '--id', ids[0]!, '--quiet']);
    assert.deepEqual(again.alreadyDeleted, [{ id: ids[0], receipt: del.logEntry }], 'a deleted id is gone, and its receipt named');
    assert.deepEqual(again.notFound, []);
  });

  it('unknown ids with control characters (a binary --ids-file) are shown escaped, on one line, and cut short', async () => {
    const idsFile = path.join(dir, 'binary-ids.txt');
    await fsp.writeFile(idsFile, 'bad\u001b[31mred\rover\u0007\n' + 'x'.repeat(500) + '\n');
    const snap = await snapshot(ws);
    const strict = await runCli(['delete', '--workdir', ws, '--ids-file', idsFile, '--strict']);
    assert.equal(strict.code, 1);
    assert.match(strict.stderr, /^sisa: error: [^\n\r\u0007\u001b]+\n$/, 'one line, no control character');
    assert.ok(strict.stderr.includes('bad\\u001b[31mred\\u000dover\\u0007'), strict.stderr);
    assert.ok(strict.stderr.includes(`${'x'.repeat(60)}…`) && !strict.stderr.includes('x'.repeat(61)), 'a long id is cut');
    assert.deepEqual(await snapshot(ws), snap, 'workspace unchanged');
    const lax = await runCli(['delete', '--workdir', ws, '--ids-file', idsFile]);
    assert.equal(lax.code, 0, lax.stderr);
    assert.match(lax.stderr, /not found: 2 id\(s\), in neither the data set nor any receipt: bad\\u001b\[31mred\\u000dover\\u0007, x{60}…\n/);
    assert.doesNotMatch(lax.stderr, /[\r\u0007\u001b]/);
  });
});

/**
 * Exact unlearning for both engines and both optimisers: the fused kernel (hidden 0) and tfjs (hidden 16),
 * AdaGrad and SGD. A deletion that restores a mid-run checkpoint must give the checkpoints of a retrain
 * from scratch on the data without the records, bit for bit.
 */
for (const [hidden, optimizer] of [
  [0, 'adagrad'],
  [0, 'sgd'],
  [16, 'adagrad'],
  [16, 'sgd'],
] as const) {
  describe(`exact unlearning, hidden ${hidden}, ${optimizer}`, () => {
    it('delete equals a retrain from scratch, weight for weight', async () => {
      const dir = await tempDir();
      const corpus = await makeCorpus(dir);
      const ws = path.join(dir, 'ws');
      const flags = ['--hidden', String(hidden), '--optimizer', optimizer, '--epochs', '2', '--quiet'];
      await cliJson(['ingest', corpus, '--workdir', ws, ...INGEST]);
      const tr = await cliJson(['train', '--workdir', ws, ...flags]);
      assert.equal(tr.backend === 'fused-linear-v1', hidden === 0, `engine for hidden ${hidden}: ${tr.backend}`);
      const state = await readState(ws);
      const rows = [...generateCorpus({ rows: 3000, seed: 11 })];
      const placed = rows.map((r) => ({ id: r.id, p: placeRecord(r.id, state.config) }));
      const shard = (placed.find((x) => x.p.split === 'train' && x.p.slice === 1)!.p as { shard: number }).shard;
      const victims = placed.filter((x) => x.p.split === 'train' && x.p.shard === shard && x.p.slice >= 1).slice(0, 2).map((x) => x.id);
      const del = await cliJson(['delete', '--workdir', ws, '--quiet', ...victims.flatMap((id) => ['--id', id])]);
      assert.equal(del.retrained[0].fromSlice, 1);
      const after = await readState(ws);
      assert.equal(after.models[shard].checkpoints[0], state.models[shard].checkpoints[0], 'slice 0 checkpoint reused');

      const forgotten = new Set(victims);
      const without = path.join(dir, 'without.csv');
      await fsp.writeFile(without, 'id,text,label\n' + rows.filter((r) => !forgotten.has(r.id)).map((r) => `${r.id},"${r.text}",${r.label}`).join('\n') + '\n');
      const fresh = path.join(dir, 'fresh');
      await cliJson(['ingest', without, '--workdir', fresh, ...INGEST]);
      await cliJson(['train', '--workdir', fresh, ...flags]);
      const scratch = await readState(fresh);
      assert.deepEqual(scratch.models[shard].checkpoints, after.models[shard].checkpoints, 'same checkpoints after every slice');
      for (let s = 0; s < state.config.shards; s++) assert.equal(scratch.models[s].modelHash, after.models[s].modelHash, `shard ${s}`);
    });
  });
}

describe('engines never continue each other', () => {
  it('a tfjs-trained linear model is not retrained from its checkpoint by the fused kernel; nothing changes', async () => {
    const dir = await tempDir();
    const corpus = await makeCorpus(dir);
    const ws = path.join(dir, 'ws');
    await cliJson(['ingest', corpus, '--workdir', ws, ...INGEST]);
    const tr = await cliJson(['train', '--workdir', ws, '--backend', 'wasm', '--epochs', '1', '--quiet']);
    assert.equal(tr.backend, 'wasm');
    const state = await readState(ws);
    const shard = 0;
    const victim = [...generateCorpus({ rows: 3000, seed: 11 })]
      .map((r) => ({ id: r.id, p: placeRecord(r.id, state.config) }))
      .find((x) => x.p.split === 'train' && x.p.shard === shard && x.p.slice === 2)!.id;
    const filesBefore = await snapshot(path.join(ws, 'shards'));
    const r = await runCli(['delete', '--workdir', ws, '--id', victim, '--backend', 'fused', '--quiet']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--backend fused differs from the backend the models were trained on \('wasm'\)/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.deepEqual(await snapshot(path.join(ws, 'shards')), filesBefore, 'workspace unchanged');
    assert.deepEqual(await readState(ws), state);
  });
});

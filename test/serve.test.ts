/**
 * `sisa serve` and `sisa delete --server`, through the real CLI and a real HTTP server on loopback: a
 * deletion through the service commits exactly what the same deletion in a one-shot process commits,
 * errors come back as the CLI's one-line errors, ids never reach the service's log, and a signal stops it
 * cleanly.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliJson, makeCorpus, readState, repoRoot, runCli, sisaBin, snapshot, tempDir } from './helpers.js';
import { readRowsFile } from '../src/data/shardFile.js';

interface Service {
  url: string;
  child: ChildProcessWithoutNullStreams;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts `sisa serve --port 0 --json` and reads the URL from its first stdout line. */
async function startService(workdir: string, env: Record<string, string> = {}): Promise<Service> {
  const child = spawn(process.execPath, [sisaBin, 'serve', '--workdir', workdir, '--port', '0', '--json'], { cwd: repoRoot, env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0]!;
      if (out.includes('\n')) resolve((JSON.parse(line) as { url: string }).url);
    });
    void exited.then((code) => reject(new Error(`sisa serve exited ${code} before listening: ${err}`)));
  });
  return { url, child, stderr: () => err, exited };
}

async function post(url: string, body: string): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  return { status: res.status, json: await res.json() };
}

/** A corpus of `rows` generated rows and a workspace trained on it (3 shards × 3 slices): the corpus file. */
async function trainSmall(dir: string, workdir: string, rows: number, seed: number): Promise<string> {
  const corpus = await makeCorpus(dir, { rows, seed });
  await cliJson(['ingest', corpus, '--workdir', workdir, '--shards', '3', '--slices', '3', '--test', '0.2', '--seed', String(seed), '--quiet']);
  await cliJson(['train', '--workdir', workdir, '--epochs', '2', '--quiet']);
  return corpus;
}

/** The manifest's models and deletion log, without times: what a deletion commits. */
async function committed(workdir: string) {
  const s = await readState(workdir);
  return {
    models: s.models.map((m: any) => ({ shard: m.shard, version: m.version, modelHash: m.modelHash, checkpoints: m.checkpoints, dataSha256: m.dataSha256 })),
    shards: s.shards.map((x: any) => x.sha256),
  };
}

describe('sisa serve: deletions from a resident process', () => {
  let dir: string;
  let served: string;
  let local: string;
  let service: Service;
  let ids: string[];

  before(async () => {
    dir = await tempDir();
    served = path.join(dir, 'served');
    const corpus = await trainSmall(dir, served, 1200, 4);
    // A twin of the workspace, for the same deletions in one-shot processes.
    local = path.join(dir, 'local');
    await fsp.cp(served, local, { recursive: true });
    const text = await fsp.readFile(corpus, 'utf8');
    ids = text.trim().split('\n').slice(1, 40).map((l) => l.split(',')[0]!);
    service = await startService(served);
  });
  after(async () => {
    if (service.child.exitCode === null) service.child.kill('SIGKILL');
  });

  it('GET /health names the served workspace', async () => {
    const res = await fetch(`${service.url}/health`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { workdir: string }).workdir, await fsp.realpath(served));
  });

  it('sisa delete --server commits exactly what a one-shot sisa delete commits', async () => {
    for (const batch of [[ids[0]!], [ids[1]!, ids[2]!, ids[3]!], [ids[4]!]]) {
      const flags = batch.flatMap((id) => ['--id', id]);
      const viaService = await runCli(['delete', ...flags, '--workdir', served, '--server', service.url, '--json']);
      assert.equal(viaService.code, 0, viaService.stderr);
      const oneShot = await cliJson(['delete', ...flags, '--workdir', local, '--quiet']);
      const r = JSON.parse(viaService.stdout);
      assert.deepEqual(new Set(r.deleted), new Set(batch));
      assert.deepEqual(r.retrained.map((x: any) => [x.shard, x.fromSlice]), oneShot.retrained.map((x: any) => [x.shard, x.fromSlice]));
    }
    assert.deepEqual(await committed(served), await committed(local), 'same models, checkpoints and shard files');
    // The human form is the one a local deletion prints.
    const human = await runCli(['delete', '--id', ids[5]!, '--workdir', served, '--server', service.url]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^deleted 1 of 1 requested record\(s\) in [\d.]+ s \(deletion log entry \d+\)/);
  });

  it('verify finds every deleted id gone and every model a retrain without them', async () => {
    const v = await runCli(['verify', '--workdir', served, '--json']);
    assert.equal(v.code, 0, v.stderr);
  });

  it('errors come back as the one-line errors and exit codes of a local deletion, and change nothing', async () => {
    const before = await snapshot(served);
    const strict = await runCli(['delete', '--id', ids[10]!, '--id', 'no-such-id', '--strict', '--workdir', served, '--server', service.url]);
    assert.equal(strict.code, 1);
    assert.match(strict.stderr, /^sisa: error: 1 id\(s\) not found \(no-such-id\); nothing was deleted \(--strict\)\n$/);
    const elsewhere = await runCli(['delete', '--id', ids[10]!, '--workdir', local, '--server', service.url]);
    assert.equal(elsewhere.code, 2);
    assert.match(elsewhere.stderr, /^sisa: error: this service deletes from .*served, not .*local; .*\n$/);
    const mixed = await runCli(['delete', '--id', ids[10]!, '--workdir', served, '--server', service.url, '--concurrency', '2']);
    assert.equal(mixed.code, 2);
    assert.match(mixed.stderr, /--server cannot be combined with --concurrency/);
    const badUrl = await runCli(['delete', '--id', ids[10]!, '--workdir', served, '--server', 'not a url']);
    assert.equal(badUrl.code, 2);
    assert.match(badUrl.stderr, /--server must be the URL 'sisa serve' printed/);
    // Raw HTTP: malformed requests are refused with a reason, and an unknown path is a 404.
    assert.deepEqual(await post(`${service.url}/delete`, 'not json'), { status: 400, json: { error: { code: 'USAGE', message: "request body is not JSON (Unexpected token 'o', \"not json\" is not valid JSON); send {\"ids\": [\"…\"]}" } } });
    assert.equal((await post(`${service.url}/delete`, '{"ids": [12]}')).json.error.message, "field 'ids' must be a non-empty array of strings");
    assert.equal((await post(`${service.url}/delete`, '{"ids": ["1"], "force": true}')).json.error.message, "unknown field 'force' (allowed: ids, strict, hashIds, fullRetrain, workdir)");
    assert.equal((await fetch(`${service.url}/nothing-here`)).status, 404);
    assert.deepEqual(await snapshot(served), before);
  });

  it('refuses what a web page could send: no JSON content type, an Origin header, a Host that is not loopback', async () => {
    const before = await snapshot(served);
    const body = JSON.stringify({ ids: [ids[11]] });
    // A cross-site form post or a no-cors fetch sends text/plain or a form type, which needs no preflight.
    const plain = await fetch(`${service.url}/delete`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
    assert.equal(plain.status, 415);
    assert.match(((await plain.json()) as any).error.message, /^POST \/delete needs content-type: application\/json, got 'text\/plain'$/);
    const fromPage = await fetch(`${service.url}/delete`, { method: 'POST', body, headers: { 'content-type': 'application/json', origin: 'https://example.com' } });
    assert.equal(fromPage.status, 403);
    // A DNS-rebound name reaches the loopback address with its own Host header.
    const port = new URL(service.url).port;
    const rebound = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/delete', method: 'POST', headers: { host: `attacker.example:${port}`, 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(rebound, 403);
    assert.deepEqual(await snapshot(served), before, 'nothing deleted');
  });

  it('applies concurrent requests one after another, each with its own receipt', async () => {
    const [a, b] = await Promise.all([post(`${service.url}/delete`, JSON.stringify({ ids: [ids[20]] })), post(`${service.url}/delete`, JSON.stringify({ ids: [ids[21]] }))]);
    assert.equal(a.status, 200, JSON.stringify(a.json));
    assert.equal(b.status, 200, JSON.stringify(b.json));
    assert.notEqual(a.json.logEntry, b.json.logEntry);
    assert.deepEqual([...a.json.deleted, ...b.json.deleted].sort(), [ids[20], ids[21]].sort());
  });

  it('never writes an id to its log, not even one put in the URL', async () => {
    // Each request's line is written after its answer, and lines of earlier tests may still be arriving:
    // wait for one more line of the kind expected.
    const count = (re: RegExp) => (service.stderr().match(re) ?? []).length;
    const waitForMore = async (re: RegExp, before: number) => {
      for (let i = 0; i < 300 && count(re) <= before; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(count(re) > before, `a log line matching ${re}`);
    };
    const served200 = /^\[[^\]]*\] POST \/delete 200 1 requested, 1 deleted, [01] shard\(s\) retrained [\d.]+ s$/gm;
    let before = count(served200);
    const r = await fetch(`${service.url}/delete?id=${ids[12]}`, { method: 'POST', body: JSON.stringify({ ids: [ids[12]] }), headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 200);
    await waitForMore(served200, before);
    const unknownPath = /^\[[^\]]*\] POST \(unknown path\) 404 USAGE [\d.]+ s$/gm;
    before = count(unknownPath);
    const inPath = await fetch(`${service.url}/delete/${ids[13]}`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    assert.equal(inPath.status, 404);
    await waitForMore(unknownPath, before);
    for (const id of ids.slice(0, 22)) assert.doesNotMatch(service.stderr(), new RegExp(`\\b${id}\\b`), 'no id in the log');
  });

  it('survives a request line that is no URL (it crashed the process)', async () => {
    const port = Number(new URL(service.url).port);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.end('GET http://[ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'));
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 404 /);
    assert.equal((await fetch(`${service.url}/health`)).status, 200, 'still serving');
  });

  it('stops on SIGTERM (exit 0); then sisa delete --server says it cannot reach it', async () => {
    service.child.kill('SIGTERM');
    assert.equal(await service.exited, 0);
    const gone = await runCli(['delete', '--id', ids[30]!, '--workdir', served, '--server', service.url]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /^sisa: error: cannot reach sisa serve at http:\/\/127\.0\.0\.1:\d+ \(.*ECONNREFUSED.*\); is it running\?/);
  });
});

describe('sisa serve: SIGTERM during a deletion', () => {
  it('finishes and answers the deletion in progress, refuses the requests after it, and exits 0', async () => {
    const dir = await tempDir();
    const corpus = await makeCorpus(dir, { rows: 600, seed: 6 });
    const ws = path.join(dir, 'ws');
    await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '2', '--slices', '2', '--test', '0.2', '--seed', '6', '--quiet']);
    await cliJson(['train', '--workdir', ws, '--epochs', '1', '--quiet']);
    const ids = (await fsp.readFile(corpus, 'utf8')).trim().split('\n').slice(1, 40).map((l) => l.split(',')[0]!);
    // The first deletion stops before its commit until the test lets it go: SIGTERM arrives mid-deletion.
    const pauseDir = path.join(dir, 'pause');
    await fsp.mkdir(pauseDir);
    const service = await startService(ws, { SISA_PAUSE_AT: 'delete:retrained', SISA_PAUSE_DIR: pauseDir });
    const inFlight = post(`${service.url}/delete`, JSON.stringify({ ids: [ids[0]] }));
    for (let i = 0; i < 1000 && !(await fsp.access(path.join(pauseDir, 'delete_retrained.paused')).then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 20));
    service.child.kill('SIGTERM');
    for (let i = 0; i < 500 && !service.stderr().includes('stopping'); i++) await new Promise((r) => setTimeout(r, 10));
    const late = await post(`${service.url}/delete`, JSON.stringify({ ids: [ids[1]] })).catch((err: Error) => ({ status: 0, json: { error: { message: err.message } } }));
    assert.notEqual(late.status, 200, 'a request after SIGTERM is not served');
    await fsp.writeFile(path.join(pauseDir, 'delete_retrained.go'), '');
    const first = await inFlight;
    assert.equal(first.status, 200, JSON.stringify(first.json));
    assert.deepEqual(first.json.deleted, [ids[0]]);
    assert.equal(await service.exited, 0);
    // The refused request deleted nothing: its id is still there to delete.
    const after = await cliJson(['delete', '--id', ids[1]!, '--workdir', ws, '--quiet']);
    assert.deepEqual(after.deleted, [ids[1]]);
  });
});

describe('sisa serve: refused at start', () => {
  it('on a workspace without trained models, with the one-line error of sisa delete', async () => {
    const dir = await tempDir();
    const corpus = await makeCorpus(dir, { rows: 300, seed: 2 });
    const ws = path.join(dir, 'ws');
    await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '2', '--slices', '2', '--quiet']);
    const r = await runCli(['serve', '--workdir', ws, '--port', '0']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^sisa: error: no trained models in this workspace; run 'sisa train' first\n$/);
    const port = await runCli(['serve', '--workdir', ws, '--port', '70000']);
    assert.equal(port.code, 2);
    assert.match(port.stderr, /--port must be a whole number in 0\.\.65535, got 70000/);
  });
});

describe('sisa serve: predictions from a resident process', () => {
  let dir: string;
  let ws: string;
  let service: Service;
  let texts: string[];
  let ids: string[];
  let file: string;
  let pauses: string;

  /** What a one-shot `sisa predict` says for the same texts, now. */
  async function oneShot(aggregate = 'vote'): Promise<{ scores: number[]; labels: number[] }> {
    const r = await cliJson<{ predictions: { score: number; label: number }[] }>(['predict', file, '--workdir', ws, '--aggregate', aggregate, '--quiet']);
    return { scores: r.predictions.map((p) => p.score), labels: r.predictions.map((p) => p.label) };
  }

  async function committedModels() {
    return (await readState(ws)).models.map((m: any) => ({ shard: m.shard, version: m.version, modelHash: m.modelHash }));
  }

  before(async () => {
    dir = await tempDir();
    ws = path.join(dir, 'ws');
    const corpus = await trainSmall(dir, ws, 1500, 8);
    const lines = (await fsp.readFile(corpus, 'utf8')).trim().split('\n').slice(1);
    // Training rows (the held-out splits' rows retrain nothing), from the shard files.
    ids = [];
    for (const shard of (await readState(ws)).shards) ids.push(...(await readRowsFile(path.join(ws, 'shards', shard.file), undefined, { skipFeatures: true })).ids);
    // More texts than two batches of 4,096, so that the service predicts on its worker threads too; each
    // made distinct by a number, so that a row scored at another row's place shows.
    const base = lines.map((l) => l.slice(l.indexOf(',') + 1, l.lastIndexOf(',')).replace(/"/g, ''));
    texts = Array.from({ length: 9000 }, (_, i) => `${base[i % base.length]} n${i}`);
    file = path.join(dir, 'texts.csv');
    await fsp.writeFile(file, 'id,text\n' + texts.map((t, i) => `p${i},"${t}"`).join('\n') + '\n');
    // The service's first deletion stops after its retrain, before its commit, until the test lets it go.
    pauses = path.join(dir, 'pauses');
    await fsp.mkdir(pauses);
    service = await startService(ws, { SISA_PAUSE_AT: 'delete:retrained@1', SISA_PAUSE_DIR: pauses });
  });
  after(async () => {
    if (service.child.exitCode === null) service.child.kill('SIGKILL');
  });

  it("answers sisa predict's scores and labels, bit for bit, and names the models that gave them", async () => {
    const served = await post(`${service.url}/predict`, JSON.stringify({ texts }));
    assert.equal(served.status, 200, JSON.stringify(served.json).slice(0, 300));
    const want = await oneShot();
    assert.equal(served.json.aggregate, 'vote');
    assert.deepEqual(served.json.scores, want.scores);
    assert.deepEqual(served.json.labels, want.labels);
    assert.deepEqual(served.json.models, await committedModels());
    const mean = await post(`${service.url}/predict`, JSON.stringify({ texts, aggregate: 'mean' }));
    const wantMean = await oneShot('mean');
    assert.deepEqual(mean.json.scores, wantMean.scores);
    assert.deepEqual(mean.json.labels, wantMean.labels);
  });

  it('after a deletion, through the service or by another process, predicts with the models it committed', async () => {
    const before = await post(`${service.url}/predict`, JSON.stringify({ texts }));
    assert.equal(before.status, 200, JSON.stringify(before.json).slice(0, 300));
    assert.deepEqual(before.json.models, await committedModels());
    // Through the service: the deletion is held after its retrain, before its commit; a prediction sent
    // meanwhile is not answered until the deletion has committed, and then with the new models.
    const deleting = post(`${service.url}/delete`, JSON.stringify({ ids: [ids[0]] }));
    const paused = path.join(pauses, 'delete_retrained.paused');
    for (let t = 0; t < 600 && !(await fsp.access(paused).then(() => true, () => false)); t++) await new Promise((r) => setTimeout(r, 50));
    let answered = false;
    const during = post(`${service.url}/predict`, JSON.stringify({ texts })).then((r) => ((answered = true), r));
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(answered, false, 'a prediction was answered while a deletion sent before it had not committed');
    assert.deepEqual(await committedModels(), before.json.models, 'nothing committed yet');
    await fsp.writeFile(path.join(pauses, 'delete_retrained.go'), '');
    const deleted = await deleting;
    assert.equal(deleted.status, 200, JSON.stringify(deleted.json));
    const afterService = await committedModels();
    assert.notDeepEqual(afterService, before.json.models, 'the deletion retrained a model');
    const duringDeletion = await during;
    assert.equal(duringDeletion.status, 200);
    assert.deepEqual(duringDeletion.json.models, afterService, 'the prediction waited for the deletion and used its models');
    assert.deepEqual(duringDeletion.json.scores, (await oneShot()).scores);
    // By a one-shot sisa delete, which the service learns of from the manifest.
    await cliJson(['delete', '--id', ids.at(-1)!, '--workdir', ws, '--quiet']);
    const afterCli = await committedModels();
    const next = await post(`${service.url}/predict`, JSON.stringify({ texts }));
    assert.equal(next.status, 200);
    assert.deepEqual(next.json.models, afterCli);
    assert.notDeepEqual(afterCli, afterService);
    const want = await oneShot();
    assert.deepEqual(next.json.scores, want.scores);
    assert.deepEqual(next.json.labels, want.labels);
  });

  it('refuses malformed requests with a reason, and never writes a text to its log', async () => {
    assert.deepEqual(await post(`${service.url}/predict`, '{"texts": []}'), { status: 400, json: { error: { code: 'USAGE', message: "field 'texts' must be a non-empty array of strings" } } });
    assert.equal((await post(`${service.url}/predict`, '{"texts": ["a", 3]}')).json.error.message, "field 'texts': item 1 is not a string");
    assert.equal((await post(`${service.url}/predict`, '{"texts": ["a"], "aggregate": "max"}')).json.error.message, "field 'aggregate' must be 'vote' or 'mean'");
    assert.equal((await post(`${service.url}/predict`, '{"texts": ["a"], "fair": "ensemble"}')).json.error.message, "unknown field 'fair' (allowed: texts, aggregate)");
    const res = await fetch(`${service.url}/predict`, { method: 'POST', body: '{"texts": ["a"]}', headers: { 'content-type': 'text/plain' } });
    assert.equal(res.status, 415);
    const fromPage = await fetch(`${service.url}/predict`, { method: 'POST', body: '{"texts": ["a"]}', headers: { 'content-type': 'application/json', origin: 'https://example.com' } });
    assert.equal(fromPage.status, 403);
    const secret = 'a very particular text zq9x';
    assert.equal((await post(`${service.url}/predict`, JSON.stringify({ texts: [secret] }))).status, 200);
    for (let t = 0; t < 100 && !/POST \/predict 200 1 text\(s\) scored/.test(service.stderr()); t++) await new Promise((r) => setTimeout(r, 50));
    assert.match(service.stderr(), /POST \/predict 200 1 text\(s\) scored/);
    assert.ok(!service.stderr().includes('zq9x'), 'a text reached the log');
  });
});

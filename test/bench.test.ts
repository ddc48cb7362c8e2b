/** Smoke test of `sisa bench` on a tiny data set: it completes and its JSON has every field. No timing assertions. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cliJson, runCli } from './helpers.js';

describe('sisa bench', () => {
  it('runs on a tiny synthetic set and reports every measurement', async () => {
    const r = await cliJson(['bench', '--synthetic', '1500', '--shards', '2', '--slices', '2', '--repeat', '1', '--train-rounds', '2', '--quiet']);
    assert.equal(typeof r.train.examplesPerSec, 'number');
    assert.ok(r.train.examplesPerSec > 0);
    for (const peer of ['sklearn', 'fasttext']) {
      const p = r.peers[peer];
      assert.ok(p, peer);
      if (p.examplesPerSec === null) assert.equal(typeof p.reason, 'string', `${peer} absent says why`);
      else {
        assert.equal(typeof p.examplesPerSec, 'number');
        assert.equal(typeof p.auc, 'number');
      }
    }
    // Training against single-thread fastText in paired rounds; the verdict is the median of their ratios.
    if (r.peers.fasttext.examplesPerSec !== null) {
      const rounds = r.ratios.trainRoundsVsFasttext1 as { sisaExamplesPerSec: number; fasttextExamplesPerSec: number; ratio: number }[];
      assert.equal(rounds.length, 2);
      for (const x of rounds) assert.ok(x.sisaExamplesPerSec > 0 && x.fasttextExamplesPerSec > 0 && x.ratio === x.sisaExamplesPerSec / x.fasttextExamplesPerSec);
      assert.equal(r.ratios.trainVsFasttext1, (rounds[0]!.ratio + rounds[1]!.ratio) / 2);
      const v = (r.verdicts as { target: string; measured: string }[]).find((x) => x.target.startsWith('train examples/s'));
      assert.match(v!.measured, /^\d+\.\d\d × \(median of 2 paired rounds: \d+\.\d\d, \d+\.\d\d\)$/);
    }
    assert.equal(typeof r.sisaAuc, 'number');
    for (const k of ['speedup', 'ideal', 'ratio']) assert.equal(typeof r.unlearning[k], 'number', `unlearning.${k}`);
    assert.equal(r.unlearning.ideal, (2 * 2 * 2) / 3);
    for (const k of ['locate', 'rewrite', 'startWorkers', 'restore', 'retrain', 'save', 'commit', 'refit', 'processStartAndExit']) assert.equal(typeof r.unlearning.breakdown[k], 'number', k);
    assert.equal(typeof r.unlearning.batch100.seconds, 'number');
    // Deletions through a resident sisa serve: over HTTP and through sisa delete --server.
    for (const k of ['httpMedianSeconds', 'fixedCostSeconds', 'cliMedianSeconds']) assert.ok(r.unlearning.served[k] > 0, `unlearning.served.${k}`);
    assert.equal(r.unlearning.served.httpSeconds.length, 1);
    assert.ok(r.unlearning.served.fixedCostSeconds < r.unlearning.served.httpMedianSeconds + 1e-9);
    assert.ok((r.verdicts as { target: string }[]).some((v) => v.target === 'delete median ≤ 0.4 s, through sisa serve (HTTP)'));
    assert.equal(typeof r.ingest.rowsPerSec, 'number');
    assert.equal(typeof r.ingest.peakRssBytes, 'number');
    assert.ok(r.ingest.peakRssBytes > 0);
    assert.equal(typeof r.predict.rowsPerSec, 'number');
    assert.equal(typeof r.predict.rowsPerSecS32, 'number');
    // The prediction rate is the median of several calls (the host drifts within seconds).
    const calls = r.predict.callsRowsPerSec as number[];
    assert.equal(calls.length, 5);
    assert.ok(calls.every((x) => x > 0));
    assert.equal(r.predict.rowsPerSec, [...calls].sort((a, b) => a - b)[2]);
    // And through a resident Predictor, each call after the first (which starts its workers).
    const resident = r.predict.residentCallsRowsPerSec as number[];
    assert.equal(resident.length, 5);
    assert.ok(resident.every((x) => x > 0));
    assert.equal(r.predict.residentRowsPerSec, [...resident].sort((a, b) => a - b)[2]);
    const predictVerdicts = (r.verdicts as { target: string }[]).filter((v) => v.target.startsWith('ensemble prediction ≥ 250k rows/s'));
    assert.equal(predictVerdicts.length, 2, 'one verdict for a one-shot call, one for a resident predictor');
    for (const k of ['featuriseRowsPerSecOneCore', 'scoreRowsPerSecOneCore', 'scoreRowsPerSecOneCoreS32']) assert.ok(r.predict[k] > 0, `predict.${k}`);
    // `sisa predict` end to end on the input file (every row), and Node's own start beside the deletion's.
    assert.deepEqual({ rows: r.predict.cli.rows, runs: r.predict.cli.runs }, { rows: 1500, runs: 1 });
    assert.ok(r.predict.cli.seconds > 0);
    assert.ok(r.unlearning.nodeStartSeconds > 0, 'node -e 0 is timed');
    if (process.env.NODE_EXTRA_CA_CERTS === undefined) assert.equal(r.unlearning.nodeStartWithoutExtraCaCertsSeconds, null);
    else assert.ok(r.unlearning.nodeStartWithoutExtraCaCertsSeconds > 0);
    assert.ok(Array.isArray(r.verdicts) && r.verdicts.length >= 4);
    // The hidden-layer model is benched by default: it trains, is evaluated and deletes.
    assert.ok(r.hidden16.examplesPerSec > 0 && r.hidden16.deleteSeconds > 0 && r.hidden16.auc > 0);
    // liblinear, when installed (CI installs liblinear-tools), ran on the same hashed features.
    if (r.peers.liblinear.examplesPerSec !== null) assert.ok(r.peers.liblinear.auc > 0.5);
    else assert.equal(typeof r.peers.liblinear.reason, 'string');
  });

  it('--train-rounds and --repeat must be whole numbers of at least 1: a one-line usage error naming the flag', async () => {
    for (const flag of ['--train-rounds', '--repeat'])
      for (const bad of ['0', '1.5', '-2']) {
        const r = await runCli(['bench', '--synthetic', '800', flag, bad]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, new RegExp(`${flag} must be a whole number ≥ 1, got ${bad.replace('.', '\\.')}`));
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      }
  });

  it('--no-hidden-layer leaves the hidden-layer model out and says so', async () => {
    const r = await runCli(['bench', '--synthetic', '800', '--shards', '2', '--slices', '1', '--repeat', '1', '--quiet', '--no-hidden-layer']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sisa hidden 16: not run \(--no-hidden-layer\)/);
    assert.match(r.stdout, /sisa predict on the input file, end to end \(start, models, reading, scoring, output\) at S = 2: \d+\.\d\d s for 800 rows = [\d,]+ rows\/s \(median of 1\)/);
    assert.match(r.stdout, /of processStartAndExit, Node's own start and exit \(node -e 0, here\): \d\.\d{3} s/);
  });
});

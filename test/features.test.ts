/**
 * The fast featuriser returns exactly what the previous one returned (test/featureReference.ts, a
 * verbatim copy): every stored workspace and checkpoint depends on these indices, their order and the
 * float32 bits of the values. Compared element for element, on arbitrary Unicode, on strings built from
 * the pieces the fast paths special-case, on every Davidson tweet, and across the memo's bound.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { decodeEntities, DEFAULT_FEATURES, featuriserMemoryBytes, forEachFeatureBatch, hashText, hashTexts, tokenize, type FeatureConfig } from '../src/features/hashing.js';
import { aggregate, loadEnsemble, memberProbabilities, predictTexts, predictTextsParallel, Predictor, type Ensemble, type Scored } from '../src/models/ensemble.js';
import { scoreLinearJs } from '../src/models/linearScore.js';
import { loadState } from '../src/state/manifest.js';
import { workspace } from '../src/state/workspace.js';
import { referenceDecodeEntities, referenceHashText, referenceTokenize } from './featureReference.js';
import { cliJson, makeCorpus, runCli, sharedData, tempDir } from './helpers.js';

const CONFIGS: FeatureConfig[] = [
  DEFAULT_FEATURES,
  { buckets: 1 << 20, ngrams: 1, signed: false, chars: 3 },
  { buckets: 1 << 12, ngrams: 3, signed: true, chars: 4 },
  { buckets: 1 << 24, ngrams: 4, signed: true, chars: 7 },
  // Few buckets: many collisions, and signed counts that cancel to 0 (the bucket stays, valued 0).
  { buckets: 4, ngrams: 2, signed: true, chars: 5 },
  { buckets: 2, ngrams: 2, signed: false },
  { buckets: 1 << 18, ngrams: 2, signed: true, chars: 0 },
];

function bits(values: Float32Array): number[] {
  return Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length));
}

/** Same indices in the same order and the same float32 bit patterns (so 0 and -0 differ). */
function assertSameRow(got: { indices: Int32Array; values: Float32Array }, text: string, cfg: FeatureConfig): void {
  const want = referenceHashText(text, cfg);
  assert.deepEqual(Array.from(got.indices), Array.from(want.indices), `indices of ${JSON.stringify(text)} with ${JSON.stringify(cfg)}`);
  assert.deepEqual(bits(got.values), bits(want.values), `values of ${JSON.stringify(text)} with ${JSON.stringify(cfg)}`);
}

function assertSameBatch(texts: readonly string[], cfg: FeatureConfig): void {
  const csr = hashTexts(texts, cfg);
  assert.equal(csr.offsets.length, texts.length + 1);
  texts.forEach((text, r) => {
    const from = csr.offsets[r]!;
    const to = csr.offsets[r + 1]!;
    assertSameRow({ indices: csr.indices.subarray(from, to), values: csr.values.subarray(from, to) }, text, cfg);
  });
  assert.equal(csr.indices.length, csr.offsets[texts.length]);
  assert.equal(csr.values.length, csr.offsets[texts.length]);
}

// What the scanner's fast paths and the regexes they replace treat specially.
const PIECES = [
  'a', 'B', 'z', 'é', 'É', '9', '٣', ' ', '  ', '\t', '\n', '\u00a0', '\u2003', '\ufeff', "'", '’', "don't", 'rock’n’roll', "''a",
  '&amp;', '&AMP;', '&lt;', '&#8220;', '&#x1F600;', '&#0;', '&#99999999;', '&bogus;', '&', '&#', ';',
  // Pieces of entities, so that pieced texts hold near misses: '&#x;', '&#X41;', '&#12x;', '&aMp', '&&amp;'…
  '#', 'x', 'X', '1', 'f', 'F', '&#x', '&#X', '&a', 'amp', '&#55357;&#56832;', '&#x110000;', '&#xd83d;',
  'http://x', 'HTTPS://t.co/Ab', 'http://', 'https:/x', 'xhttp://y', '_http://z', 'h', 'http', '@user', '@', '@@a', '@_', '@http://q', 'a@b', '@Ünï',
  '😀', '👍🏽', '👨‍👩‍👧', '©', '‼', '\u0301', 'e\u0301', '\ud83d', '\ude00', '\udc00\ud800', 'İ', 'ẞ', 'ß', 'Σ', 'ΑΣ', 'ﬁ', 'K', 'ſ', '𝐀𝐁', 'Ⅻ', '中文', 'ـ',
];
const pieced = fc.array(fc.constantFrom(...PIECES), { maxLength: 30 }).map((xs) => xs.join(''));
const anyUnicode = fc.string({ unit: 'binary', maxLength: 120 });
const config = fc.constantFrom(...CONFIGS);

describe('fast featuriser = reference featuriser', () => {
  it('decodes HTML entities exactly as the regex replace() did', () => {
    // Directly, not only through tokens: a difference that tokenising hides ('&' against ' ') shows here.
    // The i flag without u lets no non-ASCII letter match [a-z] ('&\u212Aa;', '&\u017F;' stay as they are).
    const near = fc.array(fc.constantFrom('&', '#', 'x', 'X', ';', 'amp', 'AmP', 'lt', 'nbsp', '1', '0', '9', 'f', 'F', 'g', '\u212A', '\u017F', 'é', ' ', '&#', '&#x', '😀'), { maxLength: 16 }).map((xs) => xs.join(''));
    fc.assert(
      fc.property(fc.oneof(near, pieced, anyUnicode), (text) => {
        assert.equal(decodeEntities(text), referenceDecodeEntities(text));
      }),
      { numRuns: 5000 },
    );
    for (const text of ['&#x;', '&#X41;', '&#;', '&#12x;', '&&amp;', '&amp', 'a&lt;', '&#99999999999999999999;', '&#x110000;', '&\u212Aa;', '&bogus;x&amp;'])
      assert.equal(decodeEntities(text), referenceDecodeEntities(text), JSON.stringify(text));
  });

  it('tokenises exactly as the regex pipeline did', () => {
    fc.assert(
      fc.property(fc.oneof(anyUnicode, pieced), (text) => {
        assert.deepEqual(tokenize(text), referenceTokenize(text));
      }),
      { numRuns: 3000 },
    );
  });

  it('hashes arbitrary Unicode to the same indices and float32 values', () => {
    fc.assert(
      fc.property(anyUnicode, config, (text, cfg) => assertSameRow(hashText(text, cfg), text, cfg)),
      { numRuns: 2000 },
    );
  });

  it('hashes text made of entities, URLs, mentions, apostrophes, emoji and case-changing letters the same', () => {
    fc.assert(
      fc.property(pieced, config, (text, cfg) => assertSameRow(hashText(text, cfg), text, cfg)),
      { numRuns: 3000 },
    );
  });

  it('hashes batches the same, whatever the configuration before (the per-thread memo is per configuration)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.array(fc.oneof(pieced, anyUnicode), { maxLength: 12 }), config), { maxLength: 4 }), (batches) => {
        for (const [texts, cfg] of batches) assertSameBatch(texts, cfg);
      }),
      { numRuns: 300 },
    );
  });

  it('stays exact past its buffers and the memo bound: long words, long texts, 100k distinct words', () => {
    const long = [
      'x'.repeat(5000),
      'ab'.repeat(3000) + "'" + 'c'.repeat(700),
      Array.from({ length: 6000 }, (_, i) => `w${i % 977}`).join(' '),
      '😀'.repeat(2000),
      '&amp;'.repeat(2000),
    ];
    for (const cfg of [DEFAULT_FEATURES, CONFIGS[3]!]) assertSameBatch(long, cfg);
    // Distinct words beyond what the memo holds at once (it starts over when full), then the first again.
    const texts: string[] = [];
    for (let r = 0; r < 2000; r++) texts.push(Array.from({ length: 50 }, (_, i) => `q${r * 50 + i}z`).join(' '));
    texts.push(texts[0]!, texts[1]!);
    assertSameBatch(texts, DEFAULT_FEATURES);
  });

  const davidson = path.join(sharedData, 'davidson', 'labeled_data.csv');
  it('hashes every Davidson tweet the same', (t) => {
    if (!existsSync(davidson)) {
      t.skip(`shared data not found at ${davidson}`);
      return;
    }
    const rows = parse(readFileSync(davidson), { columns: true }) as { tweet: string }[];
    const tweets = rows.map((r) => r.tweet);
    assert.ok(tweets.length > 24000);
    assertSameBatch(tweets, DEFAULT_FEATURES);
    for (const text of tweets.slice(0, 3000)) assertSameRow(hashText(text, CONFIGS[2]!), text, CONFIGS[2]!);
  });
});

/** A CSV file of the texts, with ids q0, q1, …; `extra` lines are appended as they are. */
async function writeTextsCsv(file: string, texts: readonly string[], extra = ''): Promise<void> {
  await fsp.writeFile(file, 'id,text\n' + texts.map((t, i) => `q${i},"${t.replaceAll('"', '""')}"`).join('\n') + '\n' + extra);
}

/** `sisa predict` on a file of texts with ids q0, q1, … gives `expected` for every row, bit for bit. */
async function assertPredictsFile(ws: string, file: string, how: 'vote' | 'mean', expected: Scored, what: string): Promise<void> {
  const cli = (await cliJson(['predict', file, '--workdir', ws, '--aggregate', how])) as { predictions: { id: string; score: number; label: number }[] };
  assert.equal(cli.predictions.length, expected.score.length);
  cli.predictions.forEach((p, i) => {
    assert.equal(p.id, `q${i}`);
    assert.equal(p.score, expected.score[i], `${what}, row ${i}: score`);
    assert.equal(p.label, expected.label[i], `${what}, row ${i}: label`);
  });
}

/** The ensemble's scoring loop as it was before the register-blocked kernel: the reference for its bits. */
function referenceProbabilities(ens: Ensemble, texts: readonly string[]): Float32Array[] {
  const S = ens.models.length;
  const { weights, biases } = ens.linear!;
  const out = ens.models.map(() => new Float32Array(texts.length));
  const z = new Float64Array(S);
  texts.forEach((text, r) => {
    const row = referenceHashText(text, ens.features);
    z.set(biases);
    for (let j = 0; j < row.indices.length; j++) {
      const base = row.indices[j]! * S;
      const v = row.values[j]!;
      for (let m = 0; m < S; m++) z[m]! += weights[base + m]! * v;
    }
    for (let m = 0; m < S; m++) out[m]![r] = 1 / (1 + Math.exp(-z[m]!));
  });
  return out;
}

describe('prediction on worker threads = prediction on this thread = the reference (library and CLI)', () => {
  // S = 17: two register blocks of 8 models and 1 left over. 3,000 rows, repeated past two batches.
  for (const shards of [17, 3]) {
    it(`gives the same member probabilities, scores and labels at S = ${shards}`, async () => {
      const dir = await tempDir();
      try {
        const corpus = await makeCorpus(dir);
        const ws = path.join(dir, 'ws');
        await cliJson(['ingest', corpus, '--workdir', ws, '--shards', String(shards), '--slices', '1', '--test', '0.2', '--seed', '3', '--quiet']);
        await cliJson(['train', '--workdir', ws, '--epochs', '1', '--quiet']);
        const w = workspace(ws);
        const ens = await loadEnsemble(w, await loadState(w));
        assert.ok(ens.linear, 'the default learner is linear');
        const rows = parse(await fsp.readFile(corpus), { columns: true }) as { text: string }[];
        const texts: string[] = [];
        assert.ok(rows.length > 1000 && rows.every((r) => typeof r.text === 'string'));
        while (texts.length < 9000) for (const r of rows) texts.push(`${r.text} ${texts.length % 7}`);
        const want = referenceProbabilities(ens, texts);
        assert.ok(ens.linear.memory, 'the weights are in a WebAssembly memory: scored by the WebAssembly kernel');
        const features = hashTexts(texts, ens.features);
        const here = memberProbabilities(ens, { ...features, n: texts.length });
        want.forEach((p, m) => assert.deepEqual(bits(here[m]!), bits(p), `member ${m} on this thread`));
        const js = new Float32Array(shards * texts.length);
        scoreLinearJs(ens.linear, features, texts.length, js);
        want.forEach((p, m) => assert.deepEqual(bits(js.subarray(m * texts.length, (m + 1) * texts.length)), bits(p), `member ${m}, JavaScript kernel`));
        for (const how of ['vote', 'mean'] as const) {
          const expected = aggregate(want, how);
          assert.deepEqual(predictTexts(ens, texts, how), expected);
          assert.deepEqual(await predictTextsParallel(ens, texts, how, 1024), expected, `${how} on workers`);
        }
        // A Predictor keeps its workers from one call to the next, and scores the same bits each time.
        const predictor = new Predictor(ens);
        try {
          assert.deepEqual(await predictor.threadIds(), [], 'no workers before the first call');
          assert.deepEqual(await predictor.predict(texts, 'vote', 1024), aggregate(want, 'vote'), 'a resident predictor, first call');
          const workers = await predictor.threadIds();
          assert.equal(workers.length, os.availableParallelism() - 1, 'one worker per other core');
          assert.deepEqual(await predictor.predict(texts, 'mean', 1024), aggregate(want, 'mean'), 'a resident predictor, second call');
          assert.deepEqual(await predictor.threadIds(), workers, 'the second call used the same workers');
        } finally {
          await predictor.close();
        }
        assert.deepEqual(await predictor.threadIds(), [], 'close() stopped them');
        await assert.rejects(predictor.predict(texts), /this predictor is closed/);
        // `sisa predict` on a file of these texts: at S = 3 a CSV file is scored on this thread batch by batch
        // as its reader's thread parses it (five batches of 2,048 rows); at S = 17 (more models than
        // SCORE_WHILE_READING_MAX_MODELS), and for JSON Lines, on all cores once read.
        const csv = path.join(dir, 'score.csv');
        await writeTextsCsv(csv, texts);
        const jsonl = path.join(dir, 'score.jsonl');
        await fsp.writeFile(jsonl, texts.map((t, i) => JSON.stringify({ id: `q${i}`, text: t })).join('\n') + '\n');
        for (const file of [csv, jsonl]) for (const how of ['vote', 'mean'] as const) await assertPredictsFile(ws, file, how, aggregate(want, how), `${path.basename(file)}, ${how}`);
        // A bad row in the last batch (at S = 3, after four batches were scored): one line naming it, and no predictions.
        const bad = path.join(dir, 'bad.csv');
        await writeTextsCsv(bad, texts, 'q-last,"a text",extra\n');
        const r = await runCli(['predict', bad, '--workdir', ws]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /^sisa: error: .*bad\.csv: row 9001 \(line 9002\).*\n$/);
        assert.equal(r.stdout, '');
      } finally {
        await fsp.rm(dir, { recursive: true, force: true });
      }
    });
  }
});

describe('a resident Predictor', () => {
  it('predicts with a hidden-layer ensemble (texts hashed on workers, scored on this thread) as this thread alone does, call after call', async () => {
    const dir = await tempDir();
    try {
      const corpus = await makeCorpus(dir, { rows: 400 });
      const ws = path.join(dir, 'ws');
      await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '2', '--slices', '1', '--buckets', '4096', '--quiet']);
      await cliJson(['train', '--workdir', ws, '--epochs', '1', '--hidden', '4', '--quiet']);
      const w = workspace(ws);
      const ens = await loadEnsemble(w, await loadState(w));
      assert.equal(ens.linear, null, 'a hidden-layer ensemble is scored by its learner, not the linear kernel');
      const texts = Array.from({ length: 9000 }, (_, i) => `text number ${i} with words like w${i % 97} and w${i % 13}`);
      const want = predictTexts(ens, texts, 'mean');
      const predictor = new Predictor(ens, 1);
      try {
        assert.deepEqual(await predictor.predict(texts, 'mean', 2048), want, 'first call');
        const workers = await predictor.threadIds();
        assert.equal(workers.length, 2, 'workers + 1 hashing threads');
        assert.deepEqual(await predictor.predict(texts, 'mean', 2048), want, 'second call');
        assert.deepEqual(await predictor.threadIds(), workers, 'the same workers');
      } finally {
        await predictor.close();
      }
      // `sisa predict` on a CSV file of these texts: read on the reader's thread, then scored on all cores.
      const file = path.join(dir, 'score.csv');
      await writeTextsCsv(file, texts);
      await assertPredictsFile(ws, file, 'mean', want, 'score.csv');
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  it('shares its workers between calls made together, keeps them after a call that fails on its own input, ends a call that close() interrupts, and lets the process exit', async () => {
    const dir = await tempDir();
    try {
      const corpus = await makeCorpus(dir, { rows: 600 });
      const ws = path.join(dir, 'ws');
      await cliJson(['ingest', corpus, '--workdir', ws, '--shards', '3', '--slices', '1', '--quiet']);
      await cliJson(['train', '--workdir', ws, '--epochs', '1', '--quiet']);
      // In a child process with a time limit: the failures these guard against are a call that never
      // settles and a process that never exits.
      const script = path.join(dir, 'resident.mjs');
      const lib = (m: string) => JSON.stringify(new URL(`../src/${m}`, import.meta.url).href);
      await fsp.writeFile(
        script,
        `const { loadEnsemble, Predictor, predictTexts } = await import(${lib('models/ensemble.js')});
const { loadState } = await import(${lib('state/manifest.js')});
const { workspace } = await import(${lib('state/workspace.js')});
const w = workspace(${JSON.stringify(ws)});
const ens = await loadEnsemble(w, await loadState(w));
const texts = Array.from({ length: 10000 }, (_, i) => 'text number ' + i + ' with a few words like w' + (i % 97));
const same = (x, y) => JSON.stringify([...x.score, ...x.label]) === JSON.stringify([...y.score, ...y.label]);
const out = {};
const p = new Predictor(ens);
// Two calls made together: one pool, the same bits as this thread alone.
const [a, b] = await Promise.all([p.predict(texts, 'vote', 1024), p.predict(texts, 'mean', 1024)]);
out.together = same(a, predictTexts(ens, texts, 'vote')) && same(b, predictTexts(ens, texts, 'mean'));
const workers = await p.threadIds();
out.workers = workers.length;
// A call that fails on its own input (a text that is not a string) beside a good one.
const bad = [...texts];
bad[7000] = 42;
const [good, failed] = await Promise.allSettled([p.predict(texts, 'vote', 1024), p.predict(bad, 'vote', 1024)]);
out.goodBeside = good.status === 'fulfilled' && same(good.value, a);
out.failed = failed.status;
out.keptWorkers = JSON.stringify(await p.threadIds()) === JSON.stringify(workers);
// close() in the middle of a long call: the call ends (with an error), it does not wait for good.
const long = Array.from({ length: 12 }, () => texts).flat();
const running = p.predict(long, 'vote', 1024).then(() => 'resolved', (e) => 'rejected: ' + e.message);
await new Promise((r) => setTimeout(r, 30));
await p.close();
out.interrupted = await running;
out.afterClose = (await p.threadIds()).length;
// close() before the workers have started: the call is refused and no worker is left behind.
const q = new Predictor(ens);
const early = q.predict(texts, 'vote', 1024).then(() => 'resolved', (e) => 'rejected: ' + e.message);
await q.close();
out.closedWhileStarting = await early;
// A predictor that is never closed, after calls made together: the process still exits.
const r = new Predictor(ens);
await Promise.all([r.predict(texts, 'vote', 1024), r.predict(texts, 'vote', 1024)]);
console.log(JSON.stringify(out));
`,
      );
      const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 90_000, killSignal: 'SIGKILL' });
      assert.equal(r.signal, null, `the process was still running after 90 s (a call that never settled, or workers that kept it alive); it printed: ${r.stdout}`);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), {
        together: true,
        workers: os.availableParallelism() - 1,
        goodBeside: true,
        failed: 'rejected',
        keptWorkers: true,
        interrupted: 'rejected: the worker pool is closed',
        afterClose: 0,
        closedWhileStarting: 'rejected: this predictor is closed',
      });
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('featuriser memory', () => {
  it('featurising from inside a forEachFeatureBatch consumer throws, rather than reuse the memory being read', () => {
    assert.throws(() => forEachFeatureBatch(['a first text', 'a second'], DEFAULT_FEATURES, () => void hashText('another', DEFAULT_FEATURES)), /from inside a forEachFeatureBatch consumer/);
    assert.throws(() => forEachFeatureBatch(['a first text'], DEFAULT_FEATURES, () => void tokenize('another')), /from inside a forEachFeatureBatch consumer/);
    // Featurisation still works afterwards, and a batch read inside the consumer is the reference's.
    forEachFeatureBatch(['the next text, &amp; short'], DEFAULT_FEATURES, (b) => assertSameRow({ indices: b.indices.slice(b.offsets[0], b.offsets[1]), values: b.values.slice(b.offsets[0], b.offsets[1]) }, 'the next text, &amp; short', DEFAULT_FEATURES));
    assertSameRow(hashText('après', DEFAULT_FEATURES), 'après', DEFAULT_FEATURES);
  });

  it('a batch with a very long text does not leave its memory held by the thread', () => {
    const huge = 'lorem ipsum dolor sit amet '.repeat(120000); // 3.2M characters: hundreds of MB of scratch
    const { indices } = hashText(huge, DEFAULT_FEATURES);
    assert.ok(indices.length > 0);
    assert.ok(featuriserMemoryBytes() <= 64 * 2 ** 20, `after the long text: ${featuriserMemoryBytes()} bytes held`);
    // The next text gets a working featuriser, with the same features as before.
    assertSameRow(hashText('the next text, &amp; short', DEFAULT_FEATURES), 'the next text, &amp; short', DEFAULT_FEATURES);
    assert.ok(featuriserMemoryBytes() > 0);
  });
});

/**
 * The peers `sisa bench` compares against, run on the same train/test split: scikit-learn's
 * SGDClassifier on a HashingVectorizer and fastText supervised. Both come from Debian
 * (python3-sklearn, fasttext); the bench detects them and never installs anything.
 */
import { execFile, spawnSync } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { rocAuc } from '../util/metrics.js';
import { vote } from '../util/vote.js';

const run = promisify(execFile);

export interface PeerResult {
  examplesPerSec: number;
  seconds: number;
  epochs: number;
  auc: number;
  accuracy: number;
  threads?: number;
}
export type PeerOutcome = PeerResult | { absent: true; reason: string };

export interface SplitFiles {
  trainJsonl: string;
  testJsonl: string;
  trainFt: string;
  testFt: string;
  testLabels: number[];
  trainRows: number;
}

export async function writeSplitFiles(dir: string, train: { text: string; label: number }[], test: { text: string; label: number }[]): Promise<SplitFiles> {
  await fsp.mkdir(dir, { recursive: true });
  const oneLine = (t: string) => t.replace(/\s+/g, ' ').trim();
  const files = {
    trainJsonl: path.join(dir, 'train.jsonl'),
    testJsonl: path.join(dir, 'test.jsonl'),
    trainFt: path.join(dir, 'train.ft'),
    testFt: path.join(dir, 'test.ft'),
  };
  await fsp.writeFile(files.trainJsonl, train.map((r) => JSON.stringify({ t: r.text, y: r.label })).join('\n') + '\n');
  await fsp.writeFile(files.testJsonl, test.map((r) => JSON.stringify({ t: r.text, y: r.label })).join('\n') + '\n');
  await fsp.writeFile(files.trainFt, train.map((r) => `__label__${r.label} ${oneLine(r.text)}`).join('\n') + '\n');
  await fsp.writeFile(files.testFt, test.map((r) => `__label__${r.label} ${oneLine(r.text)}`).join('\n') + '\n');
  return { ...files, testLabels: test.map((r) => r.label), trainRows: train.length };
}

const SKLEARN_SCRIPT = `
import json, sys, time
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import roc_auc_score, accuracy_score
def load(p):
    rows = [json.loads(l) for l in open(p, encoding='utf-8')]
    return [r['t'] for r in rows], [r['y'] for r in rows]
xt, yt = load(sys.argv[1]); xs, ys = load(sys.argv[2]); epochs = int(sys.argv[3])
hv = HashingVectorizer(n_features=2**18, ngram_range=(1, 2))
t0 = time.perf_counter(); Xt = hv.transform(xt); Xs = hv.transform(xs); vec = time.perf_counter() - t0
m = SGDClassifier(loss='log_loss', alpha=1e-6, max_iter=epochs, tol=None, random_state=0)
t0 = time.perf_counter(); m.fit(Xt, yt); fit = time.perf_counter() - t0
p = m.predict_proba(Xs)[:, 1]
print(json.dumps({'fit': fit, 'vectorize': vec, 'auc': roc_auc_score(ys, p), 'accuracy': accuracy_score(ys, p >= 0.5)}))
`;

function findPython(): string | null {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import sklearn'], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return null;
}

export async function runSklearn(files: SplitFiles, dir: string, epochs = 5): Promise<PeerOutcome> {
  const py = findPython();
  if (!py) return { absent: true, reason: 'scikit-learn not found (Debian: apt-get install python3-sklearn)' };
  const script = path.join(dir, 'sklearn_peer.py');
  await fsp.writeFile(script, SKLEARN_SCRIPT);
  try {
    const { stdout } = await run(py, [script, files.trainJsonl, files.testJsonl, String(epochs)], { maxBuffer: 1 << 24 });
    const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as { fit: number; auc: number; accuracy: number };
    return { examplesPerSec: (files.trainRows * epochs) / r.fit, seconds: r.fit, epochs, auc: r.auc, accuracy: r.accuracy };
  } catch (err) {
    return { absent: true, reason: `scikit-learn run failed: ${(err as Error).message.split('\n')[0]}` };
  }
}

function findFasttext(): string | null {
  for (const bin of ['/usr/bin/fasttext', 'fasttext']) {
    const r = spawnSync(bin, [], { stdio: 'ignore' });
    if (r.error === undefined) return bin;
  }
  return null;
}

export async function runFasttext(files: SplitFiles, dir: string, threads: number, epochs = 10): Promise<PeerOutcome> {
  const bin = findFasttext();
  if (!bin) return { absent: true, reason: 'fastText not found (Debian: apt-get install fasttext)' };
  const model = path.join(dir, `ft-${threads}`);
  try {
    const t0 = performance.now();
    await run(bin, ['supervised', '-input', files.trainFt, '-output', model, '-epoch', String(epochs), '-wordNgrams', '2', '-dim', '16', '-thread', String(threads), '-verbose', '0', '-seed', '1']);
    const seconds = (performance.now() - t0) / 1000;
    const { stdout } = await run(bin, ['predict-prob', `${model}.bin`, files.testFt, '2'], { maxBuffer: 1 << 26 });
    const scores = stdout
      .trim()
      .split('\n')
      .map((line) => {
        const parts = line.split(' ');
        for (let i = 0; i + 1 < parts.length; i += 2) if (parts[i] === '__label__1') return Number(parts[i + 1]);
        return 1 - Number(parts[1]);
      });
    const acc = scores.reduce((s, p, i) => s + (vote(p) === files.testLabels[i] ? 1 : 0), 0) / scores.length;
    return { examplesPerSec: (files.trainRows * epochs) / seconds, seconds, epochs, auc: rocAuc(files.testLabels, scores), accuracy: acc, threads };
  } catch (err) {
    return { absent: true, reason: `fastText run failed: ${(err as Error).message.split('\n')[0]}` };
  }
}

/** Hashed feature rows as sisa stores them (CSR), for peers that train on sisa's own features. */
export interface HashedRows {
  offsets: Int32Array | Uint32Array;
  indices: Int32Array | Uint32Array;
  values: Float32Array;
  labels: ArrayLike<number>;
}

async function writeSvmLight(file: string, parts: readonly HashedRows[]): Promise<number> {
  // Written in blocks: a million rows of ~200 features is more text than one string may hold.
  const fh = await fsp.open(file, 'w');
  let rows = 0;
  try {
    let lines: string[] = [];
    for (const r of parts)
      for (let i = 0; i + 1 < r.offsets.length; i++) {
        let line = String(r.labels[i]);
        // libsvm indices are 1-based and must increase; sisa's are sorted and distinct per row.
        for (let j = r.offsets[i]!; j < r.offsets[i + 1]!; j++) line += ` ${r.indices[j]! + 1}:${r.values[j]}`;
        lines.push(line);
        rows += 1;
        if (lines.length === 4096) {
          await fh.write(lines.join('\n') + '\n');
          lines = [];
        }
      }
    if (lines.length > 0) await fh.write(lines.join('\n') + '\n');
  } finally {
    await fh.close();
  }
  return rows;
}

/**
 * liblinear's `train` (Debian liblinear-tools) on sisa's hashed features: L2-regularised logistic
 * regression (-s 0), solved to convergence, so its rate is rows per second of a whole fit.
 */
export async function runLiblinear(train: readonly HashedRows[], test: HashedRows, dir: string): Promise<PeerOutcome> {
  const bin = ['/usr/bin/liblinear-train'].find((b) => spawnSync(b, [], { stdio: 'ignore' }).error === undefined);
  if (!bin) return { absent: true, reason: 'liblinear not found (Debian: apt-get install liblinear-tools)' };
  try {
    await fsp.mkdir(dir, { recursive: true });
    const trainFile = path.join(dir, 'train.svm');
    const testFile = path.join(dir, 'test.svm');
    const rows = await writeSvmLight(trainFile, train);
    await writeSvmLight(testFile, [test]);
    const model = path.join(dir, 'liblinear.model');
    const t0 = performance.now();
    await run(bin, ['-s', '0', '-c', '4', '-q', trainFile, model]);
    const seconds = (performance.now() - t0) / 1000;
    const out = path.join(dir, 'liblinear.out');
    await run('/usr/bin/liblinear-predict', ['-b', '1', '-q', testFile, model, out]);
    const [head, ...lines] = (await fsp.readFile(out, 'utf8')).trim().split('\n');
    const col = head!.split(' ').indexOf('1'); // "labels 1 0": the column of class 1's probability
    const scores = lines.map((l) => Number(l.split(' ')[col]));
    const labels = Array.from(test.labels);
    const acc = scores.reduce((s, p, i) => s + (vote(p) === labels[i] ? 1 : 0), 0) / scores.length;
    return { examplesPerSec: rows / seconds, seconds, epochs: 1, auc: rocAuc(labels, scores), accuracy: acc };
  } catch (err) {
    return { absent: true, reason: `liblinear run failed: ${(err as Error).message.split('\n')[0]}` };
  }
}

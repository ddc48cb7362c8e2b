/**
 * `sisa bench`: measures sisa side by side with its peers, in one process tree, on the same data and
 * split, and prints ratios and a verdict per target. Every sisa number that a user would pay through
 * the CLI (train, delete, ingest) is measured by running the real CLI as a child process, start-up
 * included; prediction throughput is measured in-process through the library.
 */
import { spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readRowsFile } from '../data/shardFile.js';
import { writeCorpusCsv } from '../demo/corpus.js';
import { forEachFeatureBatch, hashTexts } from '../features/hashing.js';
import { loadEnsemble, memberProbabilities, predictTexts, predictTextsParallel, Predictor } from '../models/ensemble.js';
import { loadState } from '../state/manifest.js';
import { workspace } from '../state/workspace.js';
import { mulberry32 } from '../util/rng.js';
import { SisaError } from '../util/errors.js';
import { runFasttext, runLiblinear, runSklearn, writeSplitFiles, type HashedRows, type PeerOutcome } from './peers.js';

const SISA_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'sisa.js');

export interface BenchOptions {
  data?: string;
  synthetic?: number;
  shards: number;
  slices: number;
  repeat: number;
  /**
   * Rounds of sisa train and single-thread fastText run back to back; the training verdict is the median
   * of the rounds' ratios (the host's speed drifts by a third within minutes). Default 1.
   */
  trainRounds?: number;
  seed: number;
  /** Extra ingest flags for --data (label column and mapping). */
  ingestArgs: string[];
  scale: boolean;
  /** Also train, evaluate and delete with the hidden-layer model (tfjs; minutes at 200k rows). Default true. */
  hiddenLayer?: boolean;
  keep?: string;
  log?: (line: string) => void;
}

interface Cli {
  seconds: number;
  json: any;
}

/** Training rows up to which liblinear is run as a peer. */
const LIBLINEAR_MAX_ROWS = 400_000;
/** Prediction calls timed per ensemble size; the rate reported is their median. */
const PREDICT_CALLS = 5;

/** A sisa command with --json, its wall seconds and its JSON output; it must exit 0. */
async function sisa(args: string[]): Promise<Cli> {
  const r = await runNode([SISA_BIN, ...args, '--json', '--quiet'], { stdout: true, what: `sisa ${args[0]}` });
  return { seconds: r.seconds, json: JSON.parse(r.stdout) };
}

/** Wall seconds of a process run with this Node (its output discarded); it must exit 0. */
async function timeProcess(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return (await runNode(args, { env, what: `node ${args.join(' ')}` })).seconds;
}

/** Runs this Node with `args`: its wall seconds, and its stdout when asked for; a failure names `what`. */
async function runNode(args: string[], o: { env?: NodeJS.ProcessEnv; stdout?: boolean; what: string }): Promise<{ seconds: number; stdout: string }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', o.stdout ? 'pipe' : 'ignore', 'pipe'], env: o.env ?? process.env });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new SisaError('TRAIN', `bench: ${o.what} failed: ${err.trim()}`));
      else resolve({ seconds: (performance.now() - t0) / 1000, stdout: out });
    });
  });
}

/**
 * Node's own start and exit (node -e 0), median of `runs`, in this process's environment; and, where
 * NODE_EXTRA_CA_CERTS is set, without it: Node reads and parses that certificate file at every start,
 * which every one-shot sisa command (a deletion too) pays before its first line runs.
 */
async function nodeStart(runs: number): Promise<{ seconds: number; withoutExtraCaCertsSeconds: number | null }> {
  const { NODE_EXTRA_CA_CERTS: extra, ...without } = process.env;
  await timeProcess(['-e', '0']); // a first start reads Node's binary from disk: not counted
  const withTimes: number[] = [];
  const withoutTimes: number[] = [];
  // Alternated, so that the host's drift weighs on both alike.
  for (let i = 0; i < runs; i++) {
    withTimes.push(await timeProcess(['-e', '0']));
    if (extra !== undefined) withoutTimes.push(await timeProcess(['-e', '0'], without));
  }
  return { seconds: median(withTimes), withoutExtraCaCertsSeconds: extra === undefined ? null : median(withoutTimes) };
}

/** A `sisa serve` child on a workspace: its URL (read from its first stdout line) and how to stop it. */
async function startService(workdir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [SISA_BIN, 'serve', '--workdir', workdir, '--port', '0', '--json', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve((JSON.parse(out.split('\n')[0]!) as { url: string }).url);
    });
    void exited.then(() => reject(new SisaError('TRAIN', `bench: sisa serve failed: ${err.trim()}`)));
  });
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** One POST /delete to a service: wall seconds as the calling program sees them, and the service's result. */
async function deleteOverHttp(url: string, id: string): Promise<{ seconds: number; json: any }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/delete`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ids: [id] }) });
  const json = (await res.json()) as any;
  const seconds = (performance.now() - t0) / 1000;
  if (res.status !== 200) throw new SisaError('TRAIN', `bench: POST /delete answered ${res.status}: ${json?.error?.message}`);
  return { seconds, json };
}

/** Bytes of every file under a folder. */
async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await folderBytes(p);
    else if (e.isFile()) total += (await fsp.stat(p)).size;
  }
  return total;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2) : NaN;
};

export interface Verdict {
  target: string;
  measured: string;
  pass: boolean | null;
}

export async function runBench(o: BenchOptions): Promise<Record<string, unknown>> {
  const log = o.log ?? (() => undefined);
  const root = o.keep ? path.resolve(o.keep) : await fsp.mkdtemp(path.join(os.tmpdir(), 'sisa-bench-'));
  await fsp.mkdir(root, { recursive: true });
  try {
    let input = o.data;
    let ingestArgs = o.ingestArgs;
    if (o.synthetic) {
      input = path.join(root, `synthetic-${o.synthetic}.csv`);
      log(`generating ${o.synthetic} synthetic rows…`);
      await writeCorpusCsv(input, { rows: o.synthetic, seed: o.seed });
      ingestArgs = [];
    }
    if (!input) throw new SisaError('USAGE', 'bench needs --data FILE or --synthetic N');
    const ws = path.join(root, 'ws');
    const common = ['--workdir', ws];

    log('ingest…');
    const ing = await sisa(['ingest', input, ...common, '--shards', String(o.shards), '--slices', String(o.slices), '--test', '0.2', '--seed', String(o.seed), '--force', ...ingestArgs]);
    const rows = ing.json.rows as number;
    log('train…');
    const tr = await sisa(['train', ...common]);
    const examples = tr.json.examples as number;
    // The same training on one core: a single-shard retrain can only use one, so this is the
    // like-for-like baseline for the unlearning speed-up (the models are identical).
    const trOneCore = await sisa(['train', ...common, '--concurrency', '1']);
    const ev = await sisa(['evaluate', ...common, '--aggregate', 'mean']);
    const workspaceBytes = await folderBytes(ws);
    const inputBytes = (await fsp.stat(input)).size;

    // Peers on the same split: export the shards' rows as training data and the test split as test data.
    log('peers…');
    const state = await loadState(workspace(ws));
    const trainRows: { text: string; label: number }[] = [];
    const hashedTrain: HashedRows[] = [];
    for (const s of state.shards) {
      const r = await readRowsFile(path.join(ws, 'shards', s.file));
      r.texts.forEach((text, i) => trainRows.push({ text, label: r.labels[i]! }));
      hashedTrain.push(r);
    }
    const testData = await readRowsFile(path.join(ws, 'shards', state.heldout.test.file));
    const testRows = testData.texts.map((text, i) => ({ text, label: testData.labels[i]! }));
    const files = await writeSplitFiles(path.join(root, 'peers'), trainRows, testRows);
    const sklearn = await runSklearn(files, path.join(root, 'peers'));
    const ft1 = await runFasttext(files, path.join(root, 'peers'), 1);
    const ftAll = await runFasttext(files, path.join(root, 'peers'), os.availableParallelism());
    // liblinear reads a text file of every feature (about 6 GB at 1M rows) and solves to convergence
    // in memory: beyond a few hundred thousand rows it would take longer than the rest of the bench.
    // Training against single-thread fastText in paired rounds: rounds 2.. run the two back to back, so a
    // ratio compares runs made under the same load; the first round pairs the train above with the
    // fastText run above (with the one-core train, evaluate, the export and scikit-learn in between).
    const rounds: { sisa: number; fasttext: number }[] = [];
    if (!('absent' in ft1)) {
      rounds.push({ sisa: examples / tr.seconds, fasttext: ft1.examplesPerSec });
      for (let i = 1; i < (o.trainRounds ?? 1); i++) {
        log(`training round ${i + 1} of ${o.trainRounds}…`);
        const t = await sisa(['train', ...common]);
        const f = await runFasttext(files, path.join(root, 'peers'), 1);
        if ('absent' in f) break;
        rounds.push({ sisa: (t.json.examples as number) / t.seconds, fasttext: f.examplesPerSec });
      }
    }
    const roundRatios = rounds.map((r) => r.sisa / r.fasttext);
    const liblinear: PeerOutcome =
      trainRows.length <= LIBLINEAR_MAX_ROWS
        ? await runLiblinear(hashedTrain, testData, path.join(root, 'peers'))
        : { absent: true, reason: `skipped above ${LIBLINEAR_MAX_ROWS.toLocaleString('en-US')} training rows (its input file alone would be ${Math.round((trainRows.length * 6.2e3) / 1e9)} GB)` };

    // Prediction throughput, in-process, through the library: hash the texts and score them with the
    // ensemble on all cores, on the test texts repeated to ≥ 100k rows. (`sisa predict` does the same for
    // a file it reads on this thread; a CSV file it scores batch by batch while the reader's thread parses
    // it: its end-to-end time is measured below.)
    log('predict…');
    const texts: string[] = [];
    // (a loop, not push(...xs): a spread of a large array overflows the call stack)
    while (texts.length < 100000) for (const t of testData.texts) texts.push(t);
    const predictRate = async (workdir: string, resident: boolean) => {
      const wsp = workspace(workdir);
      const ens = await loadEnsemble(wsp, await loadState(wsp));
      predictTexts(ens, texts.slice(0, 2000), 'vote'); // warm-up
      // Several calls, each starting and stopping its workers (predictTextsParallel), and their median: the
      // host's speed drifts within seconds, and one call of half a second lands anywhere in that drift. This
      // thread, which scores too, is warm here (the warm-up, the earlier calls), as in a library caller that
      // predicts again; in a one-shot `sisa predict` it starts cold (README, Performance).
      const calls: number[] = [];
      for (let i = 0; i < PREDICT_CALLS; i++) {
        const t0 = performance.now();
        await predictTextsParallel(ens, texts, 'vote');
        calls.push(texts.length / ((performance.now() - t0) / 1000));
      }
      const rowsPerSec = median(calls);
      // A resident Predictor, which keeps its workers from one call to the next (a service, a caller
      // scoring batch after batch): its first call starts them and is not counted.
      const residentCalls: number[] = [];
      if (resident) {
        const predictor = new Predictor(ens);
        try {
          await predictor.predict(texts, 'vote');
          for (let i = 0; i < PREDICT_CALLS; i++) {
            const t0 = performance.now();
            await predictor.predict(texts, 'vote');
            residentCalls.push(texts.length / ((performance.now() - t0) / 1000));
          }
        } finally {
          await predictor.close();
        }
      }
      // Its two stages apart, on this thread only (one core): featurisation as prediction does it (each
      // batch read in the featuriser's memory, not copied out), then scoring features computed beforehand.
      const t1 = performance.now();
      forEachFeatureBatch(texts, ens.features, () => undefined);
      const t2 = performance.now();
      const features = hashTexts(texts, ens.features);
      const t3 = performance.now();
      memberProbabilities(ens, { ...features, n: texts.length });
      const t4 = performance.now();
      return {
        rowsPerSec,
        calls,
        residentRowsPerSec: resident ? median(residentCalls) : null,
        resident: residentCalls,
        featuriseOneCore: texts.length / ((t2 - t1) / 1000),
        scoreOneCore: texts.length / ((t4 - t3) / 1000),
      };
    };
    // At S = 8 and S = 32: the bench's own workspace where S matches, else a quick one-slice, one-epoch
    // workspace (prediction speed does not depend on how well the models were trained). The resident
    // Predictor is measured at S = 8, the target's.
    const predictAt = async (size: number) => {
      if (size === o.shards) return predictRate(ws, size === 8);
      const w = path.join(root, `ws-predict-${size}`);
      await sisa(['ingest', input, '--workdir', w, '--shards', String(size), '--slices', '1', '--test', '0.2', '--seed', String(o.seed), '--force', ...ingestArgs]);
      await sisa(['train', '--workdir', w, '--epochs', '1']);
      return predictRate(w, size === 8);
    };
    const predict8 = await predictAt(8);
    const predict32 = await predictAt(32);
    // `sisa predict` on the input file, end to end as a person runs it: Node's start, the models, reading
    // and parsing the file, scoring, writing the predictions (to nowhere). At the bench's S.
    const predictCliRuns: number[] = [];
    for (let i = 0; i < Math.min(3, o.repeat); i++) predictCliRuns.push(await timeProcess([SISA_BIN, 'predict', input, ...common, '--quiet']));
    const predictCli = { seconds: median(predictCliRuns), runs: predictCliRuns.length, rows };

    // Unlearning: single random training ids, one CLI call each, then one batch of 100.
    log('unlearning…');
    const rand = mulberry32(o.seed ^ 0xbeef);
    const candidates: string[] = [];
    for (const s of state.shards) {
      const r = await readRowsFile(path.join(ws, 'shards', s.file), undefined, { skipFeatures: true });
      for (const id of r.ids) candidates.push(id);
    }
    const pick = () => candidates.splice(Math.floor(rand() * candidates.length), 1)[0]!;
    const singles: { seconds: number; inProcess: number; fromSlice: number; timings: Record<string, number> }[] = [];
    for (let i = 0; i < o.repeat; i++) {
      const id = pick();
      const d = await sisa(['delete', ...common, '--id', id]);
      singles.push({ seconds: d.seconds, inProcess: d.json.seconds, fromSlice: d.json.retrained[0]?.fromSlice ?? -1, timings: d.json.timings });
    }
    // The same single deletions through a resident service (sisa serve), which pays Node's start and
    // module loading once: over HTTP from this process (what a program that honours requests sees), and
    // through `sisa delete --server` (a person at a shell: a client process, then the service).
    log('unlearning through sisa serve…');
    const service = await startService(ws);
    const servedHttp: { seconds: number; timings: Record<string, number> }[] = [];
    const servedCli: number[] = [];
    try {
      await fetch(`${service.url}/health`); // this process's HTTP client loads once, outside the timings
      for (let i = 0; i < o.repeat; i++) {
        const d = await deleteOverHttp(service.url, pick());
        servedHttp.push({ seconds: d.seconds, timings: d.json.timings });
      }
      for (let i = 0; i < o.repeat; i++) servedCli.push((await sisa(['delete', ...common, '--id', pick(), '--server', service.url])).seconds);
    } finally {
      await service.stop();
    }
    const batchIds = Array.from({ length: Math.min(100, candidates.length) }, pick);
    const idsFile = path.join(root, 'batch-ids.txt');
    await fsp.writeFile(idsFile, batchIds.join('\n'));
    const batch = await sisa(['delete', ...common, '--ids-file', idsFile]);

    // The hidden-layer model (tfjs): train, evaluate and one deletion, on the same workspace.
    let hidden: { trH: Cli; evH: Cli; delH: Cli } | null = null;
    if (o.hiddenLayer !== false) {
      log('hidden layer…');
      const trH = await sisa(['train', ...common, '--hidden', '16']);
      const evH = await sisa(['evaluate', ...common, '--aggregate', 'mean']);
      const delH = await sisa(['delete', ...common, '--id', pick()]);
      hidden = { trH, evH, delH };
    }

    const S = o.shards;
    const R = o.slices;
    const ideal = (S * 2 * R) / (R + 1);
    // Under the union schedule (slice i trains on slices 1..i) slice i costs ∝ i, so retraining from a
    // uniformly drawn slice r costs E[Σ_{i≥r} i] / Σ i of a shard, not (R+1)/(2R).
    let fraction = 0;
    for (let r = 1; r <= R; r++) {
      let tail = 0;
      for (let i = r; i <= R; i++) tail += i;
      fraction += tail / ((R * (R + 1)) / 2) / R;
    }
    const idealUnion = S / fraction;
    const deleteMedian = median(singles.map((s) => s.seconds));
    const speedup = tr.seconds / deleteMedian;
    const speedupOneCore = trOneCore.seconds / deleteMedian;
    const breakdown: Record<string, number> = Object.fromEntries(Object.keys(singles[0]?.timings ?? {}).map((k) => [k, median(singles.map((s) => s.timings[k]!))]));
    // The rest of a CLI call's wall time: Node's start, loading modules, parsing flags, taking the lock
    // and loading the state before the deletion starts, and exiting after it (the refit is timed apart).
    breakdown.processStartAndExit = median(singles.map((s) => s.seconds - s.inProcess - (s.timings.refit ?? 0)));
    const node = await nodeStart(o.repeat);
    const fixedCost = deleteMedian - (breakdown.retrain ?? 0) - (breakdown.restore ?? 0) - (breakdown.save ?? 0);
    const servedMedian = median(servedHttp.map((s) => s.seconds));
    const servedFixedCost = median(servedHttp.map((s) => s.seconds - s.timings.restore! - s.timings.retrain! - s.timings.save!));
    const servedCliMedian = median(servedCli);

    let scale: { rows: number; trainSeconds: number; secondsPerMillionRows: number }[] | null = null;
    if (o.scale) {
      scale = [];
      for (const n of [100000, 300000, 1000000]) {
        log(`scale: ${n} rows…`);
        const f = path.join(root, `scale-${n}.csv`);
        await writeCorpusCsv(f, { rows: n, seed: o.seed });
        const w = path.join(root, `scale-ws-${n}`);
        await sisa(['ingest', f, '--workdir', w, '--shards', String(S), '--slices', String(R), '--test', '0.2', '--force']);
        const t = await sisa(['train', '--workdir', w]);
        scale.push({ rows: n, trainSeconds: t.seconds, secondsPerMillionRows: (t.seconds / n) * 1e6 });
        await fsp.rm(w, { recursive: true, force: true });
        await fsp.rm(f, { force: true });
      }
    }

    const peerJson = (p: PeerOutcome) => ('absent' in p ? null : p);
    const reason = (p: PeerOutcome) => ('absent' in p ? p.reason : undefined);
    const trainRate = examples / tr.seconds;
    const verdicts: Verdict[] = [];
    if (roundRatios.length > 0) {
      const ratio = median(roundRatios);
      const detail = roundRatios.length > 1 ? ` (median of ${roundRatios.length} paired rounds: ${roundRatios.map((x) => x.toFixed(2)).join(', ')})` : '';
      verdicts.push({ target: 'train examples/s ≥ 2 × single-thread fastText', measured: `${ratio.toFixed(2)} ×${detail}`, pass: ratio >= 2 });
    }
    if (!('absent' in sklearn)) verdicts.push({ target: 'test AUC within 0.005 of scikit-learn', measured: `${(ev.json.auc - sklearn.auc >= 0 ? '+' : '') + (ev.json.auc - sklearn.auc).toFixed(4)}`, pass: ev.json.auc >= sklearn.auc - 0.005 });
    verdicts.push({ target: `unlearning speed-up ≥ 0.8 × ideal S·2R/(R+1) = ${ideal.toFixed(1)} (S=${S}, R=${R}, ${rows} rows)`, measured: `${speedup.toFixed(2)} = ${(speedup / ideal).toFixed(2)} × ideal`, pass: speedup >= 0.8 * ideal });
    verdicts.push({ target: 'fixed cost per deletion (outside restore, retrain, save) ≤ 0.15 s, one-shot sisa delete', measured: `${fixedCost.toFixed(3)} s`, pass: fixedCost <= 0.15 });
    verdicts.push({ target: 'delete --id median ≤ 0.4 s, one-shot sisa delete', measured: `${deleteMedian.toFixed(3)} s`, pass: deleteMedian <= 0.4 });
    verdicts.push({ target: 'fixed cost per deletion ≤ 0.15 s, through sisa serve (HTTP)', measured: `${servedFixedCost.toFixed(3)} s`, pass: servedFixedCost <= 0.15 });
    verdicts.push({ target: 'delete median ≤ 0.4 s, through sisa serve (HTTP)', measured: `${servedMedian.toFixed(3)} s`, pass: servedMedian <= 0.4 });
    verdicts.push({ target: `ingest ≥ 100k rows/s${rows >= 1_000_000 ? '' : ' (target set for 1M rows)'}`, measured: `${Math.round(rows / ing.seconds)} rows/s`, pass: rows / ing.seconds >= 100000 });
    verdicts.push({ target: `ingest peak RSS ≤ 1 GiB${rows >= 1_000_000 ? '' : ' (target set for 1M rows)'}`, measured: `${(ing.json.peakRssBytes / 2 ** 20).toFixed(0)} MiB`, pass: ing.json.peakRssBytes <= 2 ** 30 });
    verdicts.push({ target: 'ensemble prediction ≥ 250k rows/s at S = 8, one call (its workers started with it)', measured: `${Math.round(predict8.rowsPerSec)} rows/s (median of ${PREDICT_CALLS} calls)`, pass: predict8.rowsPerSec >= 250000 });
    const residentRate = predict8.residentRowsPerSec!; // measured at S = 8
    verdicts.push({ target: 'ensemble prediction ≥ 250k rows/s at S = 8, resident Predictor (workers kept between calls)', measured: `${Math.round(residentRate)} rows/s (median of ${PREDICT_CALLS} calls)`, pass: residentRate >= 250000 });
    verdicts.push({ target: `workspace ≤ 4 × the input (S=${S}, R=${R})`, measured: `${(workspaceBytes / 2 ** 20).toFixed(1)} MiB = ${(workspaceBytes / inputBytes).toFixed(2)} × ${(inputBytes / 2 ** 20).toFixed(1)} MiB`, pass: workspaceBytes <= 4 * inputBytes });
    if (scale) {
      const growth = scale[2]!.trainSeconds / scale[0]!.trainSeconds;
      verdicts.push({ target: 'train time grows no worse than linearly (1M vs 100k rows ≤ 10×, with 10% slack)', measured: `${growth.toFixed(2)}×`, pass: growth <= 11 });
    }

    return {
      data: o.synthetic ? `synthetic ${o.synthetic} rows` : path.resolve(input),
      rows,
      shards: S,
      slices: R,
      machine: { cpus: os.availableParallelism(), node: process.version },
      train: { examplesPerSec: trainRate, examples, seconds: tr.seconds, inProcessSeconds: tr.json.seconds, backend: tr.json.backend },
      sisaAuc: ev.json.auc,
      sisaAccuracy: ev.json.accuracy,
      peers: {
        sklearn: peerJson(sklearn) ?? { examplesPerSec: null, auc: null, reason: reason(sklearn) },
        fasttext: peerJson(ft1) ?? { examplesPerSec: null, auc: null, reason: reason(ft1) },
        fasttextAllThreads: peerJson(ftAll) ?? { examplesPerSec: null, auc: null, reason: reason(ftAll) },
        liblinear: peerJson(liblinear) ?? { examplesPerSec: null, auc: null, reason: reason(liblinear) },
      },
      hidden16: hidden
        ? { examplesPerSec: hidden.trH.json.examples / hidden.trH.seconds, seconds: hidden.trH.seconds, backend: hidden.trH.json.backend, auc: hidden.evH.json.auc, deleteSeconds: hidden.delH.seconds }
        : null,
      workspace: { bytes: workspaceBytes, inputBytes, ratio: workspaceBytes / inputBytes },
      ratios: {
        trainVsSklearn: 'absent' in sklearn ? null : trainRate / sklearn.examplesPerSec,
        trainVsFasttext1: roundRatios.length > 0 ? median(roundRatios) : null,
        trainRoundsVsFasttext1: rounds.map((r) => ({ sisaExamplesPerSec: r.sisa, fasttextExamplesPerSec: r.fasttext, ratio: r.sisa / r.fasttext })),
        trainVsFasttextAll: 'absent' in ftAll ? null : trainRate / ftAll.examplesPerSec,
        trainVsLiblinear: 'absent' in liblinear ? null : trainRate / liblinear.examplesPerSec,
      },
      unlearning: {
        trainSeconds: tr.seconds,
        deleteMedianSeconds: deleteMedian,
        deleteSeconds: singles.map((s) => s.seconds),
        speedup,
        ideal,
        ratio: speedup / ideal,
        trainOneCoreSeconds: trOneCore.seconds,
        speedupVsOneCoreTrain: speedupOneCore,
        idealForUnionSchedule: idealUnion,
        ratioOneCoreUnion: speedupOneCore / idealUnion,
        fixedCostSeconds: fixedCost,
        breakdown,
        nodeStartSeconds: node.seconds,
        nodeStartWithoutExtraCaCertsSeconds: node.withoutExtraCaCertsSeconds,
        batch100: { seconds: batch.seconds, shardsRetrained: batch.json.retrained.length, speedup: tr.seconds / batch.seconds },
        served: {
          httpMedianSeconds: servedMedian,
          httpSeconds: servedHttp.map((s) => s.seconds),
          fixedCostSeconds: servedFixedCost,
          cliMedianSeconds: servedCliMedian,
          cliSeconds: servedCli,
        },
      },
      ingest: { rowsPerSec: rows / ing.seconds, seconds: ing.seconds, peakRssBytes: ing.json.peakRssBytes },
      predict: {
        rowsPerSec: predict8.rowsPerSec,
        callsRowsPerSec: predict8.calls,
        residentRowsPerSec: predict8.residentRowsPerSec,
        residentCallsRowsPerSec: predict8.resident,
        rowsPerSecS32: predict32.rowsPerSec,
        cli: predictCli,
        featuriseRowsPerSecOneCore: predict8.featuriseOneCore,
        scoreRowsPerSecOneCore: predict8.scoreOneCore,
        scoreRowsPerSecOneCoreS32: predict32.scoreOneCore,
      },
      scale,
      verdicts,
    };
  } finally {
    if (!o.keep) await fsp.rm(root, { recursive: true, force: true });
  }
}

export function benchTable(r: any): string {
  const f = (x: number | null | undefined, d = 0) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));
  const peer = (p: any) => (p.examplesPerSec === null ? `absent: ${p.reason}` : `${f(p.examplesPerSec)} ex/s, AUC ${f(p.auc, 4)}, accuracy ${f(p.accuracy, 4)}`);
  const lines = [
    `data: ${r.data} (${f(r.rows)} rows), ${r.shards} shards × ${r.slices} slices, ${r.machine.cpus} cores, ${r.machine.node}`,
    '',
    `training   sisa (${r.train.backend})     ${f(r.train.examplesPerSec)} ex/s, AUC ${f(r.sisaAuc, 4)}, accuracy ${f(r.sisaAccuracy, 4)}  (${f(r.train.examples)} examples in ${f(r.train.seconds, 2)} s, CLI)`,
    `           scikit-learn SGD      ${peer(r.peers.sklearn)}   sisa/peer ${f(r.ratios.trainVsSklearn, 3)}`,
    `           fastText, 1 thread    ${peer(r.peers.fasttext)}   sisa/peer ${f(r.ratios.trainVsFasttext1, 2)}${r.ratios.trainRoundsVsFasttext1.length > 1 ? ` (median of ${r.ratios.trainRoundsVsFasttext1.length} paired rounds: ${r.ratios.trainRoundsVsFasttext1.map((x: any) => f(x.ratio, 2)).join(', ')})` : ''}`,
    `           fastText, all threads ${peer(r.peers.fasttextAllThreads)}   sisa/peer ${f(r.ratios.trainVsFasttextAll, 2)}`,
    `           liblinear -s 0        ${r.peers.liblinear.examplesPerSec === null ? `absent: ${r.peers.liblinear.reason}` : `${f(r.peers.liblinear.examplesPerSec)} rows/s per fit (to convergence, same hashed features), AUC ${f(r.peers.liblinear.auc, 4)}, accuracy ${f(r.peers.liblinear.accuracy, 4)}`}`,
    r.hidden16
      ? `           sisa hidden 16 (${r.hidden16.backend}) ${f(r.hidden16.examplesPerSec)} ex/s, AUC ${f(r.hidden16.auc, 4)}; one delete --id ${f(r.hidden16.deleteSeconds, 2)} s`
      : '           sisa hidden 16: not run (--no-hidden-layer)',
    `workspace  ${f(r.workspace.bytes)} bytes after train = ${f(r.workspace.ratio, 2)} × the input (${f(r.workspace.inputBytes)} bytes)`,
    `unlearning full train ${f(r.unlearning.trainSeconds, 2)} s; delete --id median ${f(r.unlearning.deleteMedianSeconds, 2)} s → speed-up ${f(r.unlearning.speedup, 2)} (ideal ${f(r.unlearning.ideal, 2)}, ratio ${f(r.unlearning.ratio, 2)})`,
    `           vs a one-core train (${f(r.unlearning.trainOneCoreSeconds, 2)} s): speed-up ${f(r.unlearning.speedupVsOneCoreTrain, 2)}; ideal for the union schedule S/E[cost] ${f(r.unlearning.idealForUnionSchedule, 2)}, ratio ${f(r.unlearning.ratioOneCoreUnion, 2)}`,
    `           fixed cost per deletion (outside restore/retrain/save) ${f(r.unlearning.fixedCostSeconds, 2)} s; batch of 100 ids ${f(r.unlearning.batch100.seconds, 2)} s (${r.unlearning.batch100.shardsRetrained} shards)`,
    `           breakdown (median s): ${Object.entries(r.unlearning.breakdown).map(([k, v]) => `${k} ${f(v as number, 3)}`).join(', ')}`,
    `           of processStartAndExit, Node's own start and exit (node -e 0, here): ${f(r.unlearning.nodeStartSeconds, 3)} s${r.unlearning.nodeStartWithoutExtraCaCertsSeconds === null ? '' : `; ${f(r.unlearning.nodeStartWithoutExtraCaCertsSeconds, 3)} s without NODE_EXTRA_CA_CERTS, which is set here (Node parses that file at every start)`}`,
    `           through sisa serve (resident): POST /delete median ${f(r.unlearning.served.httpMedianSeconds, 2)} s, fixed cost ${f(r.unlearning.served.fixedCostSeconds, 3)} s; sisa delete --server median ${f(r.unlearning.served.cliMedianSeconds, 2)} s`,
    `ingest     ${f(r.ingest.rowsPerSec)} rows/s, peak RSS ${f(r.ingest.peakRssBytes / 2 ** 20)} MiB`,
    `predict    ${f(r.predict.rowsPerSec)} rows/s at S = 8, ${f(r.predict.rowsPerSecS32)} rows/s at S = 32 (median of ${PREDICT_CALLS} calls at S = 8: ${r.predict.callsRowsPerSec.map((x: number) => f(x)).join(', ')})`,
    `           hashed and scored on this thread and a worker per other core, each call starting its workers (predictTextsParallel)`,
    `           resident Predictor (workers kept between calls): ${f(r.predict.residentRowsPerSec)} rows/s (median of ${PREDICT_CALLS} calls after the first: ${r.predict.residentCallsRowsPerSec.map((x: number) => f(x)).join(', ')})`,
    `           one core: featurise ${f(r.predict.featuriseRowsPerSecOneCore)} rows/s; score ${f(r.predict.scoreRowsPerSecOneCore)} rows/s at S = 8, ${f(r.predict.scoreRowsPerSecOneCoreS32)} at S = 32`,
    `           sisa predict on the input file, end to end (start, models, reading, scoring, output) at S = ${r.shards}: ${f(r.predict.cli.seconds, 2)} s for ${f(r.predict.cli.rows)} rows = ${f(r.predict.cli.rows / r.predict.cli.seconds)} rows/s (median of ${r.predict.cli.runs})`,
    ...(r.scale ? [`scale      ${r.scale.map((s: any) => `${f(s.rows)} rows: ${f(s.trainSeconds, 1)} s (${f(s.secondsPerMillionRows, 1)} s per 1M rows)`).join('; ')}`] : []),
    '',
    ...r.verdicts.map((v: Verdict) => `${v.pass === null ? '  -  ' : v.pass ? 'PASS ' : 'FAIL '} ${v.target}: ${v.measured}`),
  ];
  return lines.join('\n');
}

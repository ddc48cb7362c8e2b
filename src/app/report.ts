/**
 * `sisa report`: fairness and accuracy of the plain SISA ensemble, each FairSISA post-processor and
 * (with --baseline) a monolithic model trained on all training data, on the calibration and test
 * splits (and an external evaluation file), with bootstrap intervals; averages over seeded re-draws of
 * the calibration/test partition; per-shard accuracy; and how fairness moved with each deletion batch.
 * Writes report.json, report.md and a self-contained report.html with inline SVG charts.
 */
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { concatRows, readRowsFile, type Rows } from '../data/shardFile.js';
import { FILE_COLUMNS, loadLabelledFile, type FileColumns } from './inputFile.js';
import { checkOptions, rule, type OptionSpec } from './options.js';
import { loadBackend, choiceFor } from '../models/backend.js';
import { predictProba, trainShard } from '../models/learner.js';
import type { TensorBlob } from '../models/checkpoint.js';
import { aggregate, loadEnsemble, memberProbabilities } from '../models/ensemble.js';
import { loadState, requireTrained, type State } from '../state/manifest.js';
import { workspace } from '../state/workspace.js';
import { usageError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fsx.js';
import { hashUnit } from '../util/rng.js';
import { groupRatesChart, historyChart, renderSvg, shardAccuracyChart, tradeoffChart } from './charts.js';
import { fairnessMetrics, fairnessWithIntervals, type GroupRates, type Interval } from '../fairness/metrics.js';
import { applyMethod, expectedPositive, expectedRates, fitMethod, FAIR_METHODS, type FairMethod, type FittedMethod } from '../fairness/postprocess.js';
import { attributeValues, computeFit, heldoutRows, isFittedFor, loadFit, loadHistory, type FairnessFit } from './fairnessFit.js';
import { ANY } from '../fairness/terms.js';
import { confusion, binaryMetrics } from '../util/metrics.js';
import { vote } from '../util/vote.js';

export interface ReportOptions {
  /** Workspace folder with trained models and, for the fair methods, a fitted post-processor. */
  workdir: string;
  /** Folder for report.json, report.md and report.html (default: WORKDIR/report); `writeReport` only. */
  out?: string;
  /** Sensitive attribute: a group name given at ingest, or 'any' (default). */
  attribute?: string;
  /** Allowed |ΔTPR| and |ΔFPR| for the post-processors (default 0). */
  tolerance?: number;
  /** Average over this many seeded re-draws of the calibration/test partition (default 0: none). */
  resplits?: number;
  /** Also train and report a monolithic model on all training data (default false). */
  baseline?: boolean;
  /** Also report on this labelled file (e.g. another data set). */
  evalFile?: string;
  /** Columns of `evalFile`. */
  evalColumns?: FileColumns;
  /** Bootstrap resamples for the 95% intervals (default 500). */
  resamples?: number;
}

const REPORT_OPTIONS: OptionSpec<ReportOptions> = {
  workdir: rule.req('string'),
  out: rule.opt('string'),
  attribute: rule.opt('string'),
  tolerance: rule.opt('number'),
  resplits: rule.opt('number'),
  baseline: rule.opt('boolean'),
  evalFile: rule.opt('string'),
  evalColumns: rule.opt({ fields: FILE_COLUMNS }),
  resamples: rule.opt('number'),
};

export type MethodName = 'monolithic' | 'sisa' | FairMethod;

export interface MethodEntry {
  name: MethodName;
  split: string;
  rows: number;
  groupRows: number;
  accuracy: number;
  accuracyCI: Interval;
  eoDifference: number;
  eoDifferenceCI: Interval;
  eoRatio: number;
  dpDifference: number;
  dpDifferenceCI: Interval;
  eqOppDifference: number;
  tpr: { sensitive: number; other: number };
  fpr: { sensitive: number; other: number };
  groups: { sensitive: GroupRates; other: GroupRates };
  /** For the randomised post-processors: the expected (de-randomised) accuracy and EO difference, which the LP controls. */
  expected: { accuracy: number; eoDifference: number } | null;
}

export interface ResplitSummary {
  name: MethodName;
  meanAccuracy: number;
  meanEoDifference: number;
  eoDifferences: number[];
}

export interface Report {
  generatedAt: string;
  sensitive: string;
  tolerance: number;
  /** 'stored': the post-processors predict --fair uses; 'report': fitted in memory for this report only. */
  postProcessors: 'stored' | 'report';
  reproduce: { datasetFingerprint: string; seed: number; backend: string; revision: number; models: { shard: number; version: number; modelHash: string }[]; command: string };
  methods: MethodEntry[];
  calibrationError: { name: FairMethod; lpError: number }[];
  resplits: { count: number; calibrationFraction: number; methods: ResplitSummary[]; verdict: { votesFairer: boolean; accuracyCostPoints: number } } | null;
  perShard: { shard: number; modelVersion: number; accuracy: number }[];
  history: { revision: number; deletions: number; deletedRecords: number; time: string; methods: { name: string; accuracy: number; eoDifference: number }[] }[];
}

interface Split {
  name: string;
  rows: Rows;
  probs: Float32Array[];
  group: Uint8Array;
  mono: Float32Array | null;
}

function predictionsFor(name: MethodName, split: Pick<Split, 'probs' | 'group' | 'mono'> & { ids: readonly string[] }, fitted: Map<FairMethod, FittedMethod>, seed: number): Uint8Array {
  if (name === 'sisa') return aggregate(split.probs, 'vote').label;
  if (name === 'monolithic') return Uint8Array.from(split.mono!, vote);
  return applyMethod(fitted.get(name)!, split.probs, split.group, split.ids, seed);
}

async function trainMonolithic(ws: ReturnType<typeof workspace>, state: State & { training: NonNullable<State['training']> }): Promise<TensorBlob[]> {
  const parts = await Promise.all(state.shards.map((s) => readRowsFile(path.join(ws.shardsDir, s.file), s.sha256)));
  const all = concatRows(parts);
  all.slices.fill(0);
  const backend = await loadBackend(choiceFor(state.training.backend));
  let params: TensorBlob[] = [];
  await trainShard({
    tf: backend.tf,
    rows: all,
    cfg: state.training.learner,
    buckets: state.config.features.buckets,
    seed: state.config.seed,
    shard: 0xffff,
    slices: 1,
    fromSlice: 0,
    start: null,
    onSlice: async (c) => {
      params = c.params;
    },
  });
  return params;
}

function subsetSplit(split: Split, idx: number[]): Split & { ids: string[] } {
  const pick = <T extends Float32Array | Uint8Array>(a: T): T => {
    const out = new (a.constructor as { new (n: number): T })(idx.length);
    idx.forEach((j, i) => (out[i] = a[j]!));
    return out;
  };
  return {
    name: split.name,
    rows: split.rows,
    probs: split.probs.map(pick),
    group: pick(split.group),
    mono: split.mono ? pick(split.mono) : null,
    ids: idx.map((j) => split.rows.ids[j]!),
  } as Split & { ids: string[] };
}

export async function buildReport(o: ReportOptions): Promise<Report> {
  checkOptions('buildReport', o, REPORT_OPTIONS);
  const ws = workspace(o.workdir);
  const state = await loadState(ws);
  requireTrained(state);
  const resamples = o.resamples ?? 500;
  let fit: FairnessFit | null = await loadFit(ws).catch(() => null);
  const attribute = o.attribute ?? fit?.attribute ?? ANY;
  const tolerance = o.tolerance ?? fit?.tolerance ?? 0;
  const ens = await loadEnsemble(ws, state);
  // The stored fit is production's (predict --fair uses it); a report for another attribute or tolerance,
  // or over a stale fit, fits its own post-processors in memory and leaves the stored one alone.
  const storedFitUsed = !!fit && isFittedFor(fit, state) && fit.attribute === attribute && fit.tolerance === tolerance;
  if (!storedFitUsed) fit = await computeFit(ws, state, { attribute, tolerance, ensemble: ens });
  if (!fit) throw new Error('unreachable: a fit was computed');
  const fitted = new Map(fit.methods.map((m) => [m.method, m] as [FairMethod, FittedMethod]));
  const mono = o.baseline ? await trainMonolithic(ws, state) : null;
  const seed = state.config.seed;

  const load = (name: string, rows: Rows): Split => ({
    name,
    rows,
    probs: memberProbabilities(ens, { ...rows, n: rows.ids.length }),
    group: attributeValues(state, rows, attribute),
    mono: mono ? predictProba(mono, rows, rows.ids.length) : null,
  });
  const splits: Split[] = [load('calibration', await heldoutRows(ws, state, 'calibration')), load('test', await heldoutRows(ws, state, 'test'))];
  if (o.evalFile) splits.push(load(`eval:${path.basename(o.evalFile)}`, await loadLabelledFile(state, o.evalFile, o.evalColumns ?? {}, true)));

  const names: MethodName[] = [...(mono ? (['monolithic'] as const) : []), 'sisa', ...FAIR_METHODS];
  const methods: MethodEntry[] = [];
  for (const split of splits) {
    for (const name of names) {
      const yhat = predictionsFor(name, { ...split, ids: split.rows.ids }, fitted, seed);
      // Scores for the per-group ROC AUC: vote share, probability, or the post-processor's P(flag).
      const score =
        name === 'sisa' ? aggregate(split.probs, 'vote').score : name === 'monolithic' ? split.mono! : expectedPositive(fitted.get(name)!, split.probs, split.group);
      const m = fairnessWithIntervals(split.rows.labels, yhat, split.group, { resamples, seed, score });
      methods.push({
        name,
        split: split.name,
        rows: split.rows.ids.length,
        groupRows: split.group.reduce((s, g) => s + g, 0),
        accuracy: m.overall.accuracy,
        accuracyCI: m.accuracyCI,
        eoDifference: m.eoDifference,
        eoDifferenceCI: m.eoDifferenceCI,
        eoRatio: m.eoRatio,
        dpDifference: m.dpDifference,
        dpDifferenceCI: m.dpDifferenceCI,
        eqOppDifference: m.eqOppDifference,
        tpr: { sensitive: m.groups.sensitive.tpr, other: m.groups.other.tpr },
        fpr: { sensitive: m.groups.sensitive.fpr, other: m.groups.other.fpr },
        groups: m.groups,
        expected: (FAIR_METHODS as readonly string[]).includes(name)
          ? (({ accuracy, eoDifference }) => ({ accuracy, eoDifference }))(expectedRates(split.rows.labels, split.group, expectedPositive(fitted.get(name as FairMethod)!, split.probs, split.group)))
          : null,
      });
    }
  }

  let resplits: Report['resplits'] = null;
  const count = o.resplits ?? 0;
  if (!Number.isInteger(count) || count < 0 || count > 1000) throw usageError(`--resplits must be an integer from 0 to 1000, got ${o.resplits}`);
  if (count > 0) {
    const [cal, test] = splits as [Split, Split];
    const pool: Split = {
      name: 'pool',
      rows: concatRows([cal.rows, test.rows]),
      probs: cal.probs.map((p, m) => Float32Array.from([...p, ...test.probs[m]!])),
      group: Uint8Array.from([...cal.group, ...test.group]),
      mono: cal.mono && test.mono ? Float32Array.from([...cal.mono, ...test.mono]) : null,
    };
    const calFraction = cal.rows.ids.length / pool.rows.ids.length;
    const acc: Record<string, { a: number[]; e: number[] }> = Object.fromEntries(names.map((n) => [n, { a: [], e: [] }]));
    for (let r = 0; r < count; r++) {
      const calIdx: number[] = [];
      const testIdx: number[] = [];
      pool.rows.ids.forEach((id, i) => (hashUnit(seed + r + 1, 'resplit', id) < calFraction ? calIdx : testIdx).push(i));
      const c = subsetSplit(pool, calIdx);
      const t = subsetSplit(pool, testIdx);
      const yc = Uint8Array.from(calIdx, (i) => pool.rows.labels[i]!);
      const yt = Uint8Array.from(testIdx, (i) => pool.rows.labels[i]!);
      const refit = new Map<FairMethod, FittedMethod>();
      for (const m of FAIR_METHODS) refit.set(m, await fitMethod(m, c.probs, yc, c.group, tolerance));
      for (const name of names) {
        const fm = fairnessMetrics(yt, predictionsFor(name, t, refit, seed + r + 1), t.group);
        acc[name]!.a.push(fm.overall.accuracy);
        acc[name]!.e.push(fm.eoDifference);
      }
    }
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const summaries = names.map((name) => ({ name, meanAccuracy: mean(acc[name]!.a), meanEoDifference: mean(acc[name]!.e), eoDifferences: acc[name]!.e }));
    const sisa = summaries.find((s) => s.name === 'sisa')!;
    const votes = summaries.find((s) => s.name === 'votes')!;
    resplits = {
      count,
      calibrationFraction: calFraction,
      methods: summaries,
      verdict: { votesFairer: votes.meanEoDifference < sisa.meanEoDifference, accuracyCostPoints: (sisa.meanAccuracy - votes.meanAccuracy) * 100 },
    };
  }

  const test = splits[1]!;
  const perShard = test.probs.map((p, s) => ({
    shard: s,
    modelVersion: ens.models[s]!.version,
    accuracy: binaryMetrics(confusion(test.rows.labels, Uint8Array.from(p, vote))).accuracy,
  }));
  return {
    generatedAt: new Date().toISOString(),
    sensitive: attribute,
    tolerance,
    postProcessors: storedFitUsed ? 'stored' : 'report',
    reproduce: {
      datasetFingerprint: state.dataset.fingerprint,
      seed,
      backend: state.training.backend,
      revision: state.revision,
      models: state.models.map((m) => ({ shard: m.shard, version: m.version, modelHash: m.modelHash })),
      command: `sisa report --attribute ${attribute} --eo-tolerance ${tolerance}${count ? ` --resplits ${count}` : ''}${o.baseline ? ' --baseline' : ''}${o.evalFile ? ` --eval ${o.evalFile}` : ''}`,
    },
    methods,
    calibrationError: fit.methods.map((m) => ({ name: m.method, lpError: m.lpError })),
    resplits,
    perShard,
    history: await loadHistory(ws),
  };
}

const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
const ci = (c: Interval) => `[${f3(c[0])}, ${f3(c[1])}]`;

export function reportMarkdown(r: Report): string {
  const lines = [
    `# sisa fairness report`,
    '',
    `Sensitive attribute: **${r.sensitive}** · equalized-odds tolerance ${r.tolerance} · generated ${r.generatedAt}`,
    '',
    r.postProcessors === 'stored'
      ? 'Post-processors: the stored fit (`manifests/fairness.json`), the one `predict --fair` uses.'
      : "Post-processors: fitted for this report only; the stored fit that `predict --fair` uses is unchanged (change it with `sisa fairness fit`).",
    '',
    `Reproduce: data set sha256 \`${r.reproduce.datasetFingerprint}\`, seed ${r.reproduce.seed}, backend ${r.reproduce.backend}, revision ${r.reproduce.revision}; \`${r.reproduce.command}\``,
    '',
    'EO difference: max(|ΔTPR|, |ΔFPR|) between the sensitive group and the rest, of the predictions actually made (randomised for the post-processors); expected EO difference: of the post-processor\'s probabilities, which its LP constrains.',
    '',
    `Model versions: ${r.reproduce.models.map((m) => `shard ${m.shard} v${m.version} (${m.modelHash.slice(0, 12)})`).join(', ')}`,
    '',
  ];
  for (const split of [...new Set(r.methods.map((m) => m.split))]) {
    const rows = r.methods.filter((m) => m.split === split);
    lines.push(`## ${split} split (${rows[0]!.rows} rows, ${rows[0]!.groupRows} in the sensitive group)`, '');
    lines.push('| method | accuracy | 95% CI | EO difference | 95% CI | expected EO difference | TPR sensitive / other | FPR sensitive / other | DP difference |', '|---|---|---|---|---|---|---|---|---|');
    for (const m of rows)
      lines.push(`| ${m.name} | ${f3(m.accuracy)} | ${ci(m.accuracyCI)} | ${f3(m.eoDifference)} | ${ci(m.eoDifferenceCI)} | ${m.expected ? f3(m.expected.eoDifference) : '–'} | ${f3(m.tpr.sensitive)} / ${f3(m.tpr.other)} | ${f3(m.fpr.sensitive)} / ${f3(m.fpr.other)} | ${f3(m.dpDifference)} |`);
    lines.push('');
  }
  if (r.resplits) {
    lines.push(`## Averaged over ${r.resplits.count} seeded re-draws of the calibration/test partition`, '', '| method | mean test accuracy | mean test EO difference |', '|---|---|---|');
    for (const m of r.resplits.methods) lines.push(`| ${m.name} | ${f3(m.meanAccuracy)} | ${f3(m.meanEoDifference)} |`);
    lines.push('', `votes is ${r.resplits.verdict.votesFairer ? 'fairer' : 'NOT fairer'} than the plain ensemble on average, at an accuracy cost of ${r.resplits.verdict.accuracyCostPoints.toFixed(2)} points.`, '');
  }
  lines.push('## Per-shard accuracy (test)', '', r.perShard.map((s) => `shard ${s.shard} (v${s.modelVersion}): ${f3(s.accuracy)}`).join(' · '), '');
  if (r.history.length) {
    lines.push('## Fairness after each model change (test split)', '', '| revision | deletion batches | records deleted | ' + r.history[0]!.methods.map((m) => `${m.name} EO`).join(' | ') + ' |', '|---|---|---|' + r.history[0]!.methods.map(() => '---|').join(''));
    for (const h of r.history) lines.push(`| ${h.revision} | ${h.deletions} | ${h.deletedRecords} | ${h.methods.map((m) => f3(m.eoDifference)).join(' | ')} |`);
    lines.push('');
  }
  return lines.join('\n');
}

export async function reportHtml(r: Report): Promise<string> {
  const charts: string[] = [];
  for (const split of [...new Set(r.methods.map((m) => m.split))]) {
    const rows = r.methods.filter((m) => m.split === split);
    charts.push(await renderSvg(groupRatesChart(rows.flatMap((m) => [{ method: m.name, group: 'sensitive', tpr: m.tpr.sensitive, fpr: m.fpr.sensitive }, { method: m.name, group: 'other', tpr: m.tpr.other, fpr: m.fpr.other }]), `Per-group TPR and FPR (${split})`)));
    charts.push(await renderSvg(tradeoffChart(rows.map((m) => ({ method: m.name, accuracy: m.accuracy, eo: m.eoDifference, eoLow: m.eoDifferenceCI[0], eoHigh: m.eoDifferenceCI[1] })), `Accuracy vs equalized-odds difference (${split})`)));
  }
  const sisaTest = r.methods.find((m) => m.name === 'sisa' && m.split === 'test')!;
  charts.push(await renderSvg(shardAccuracyChart(r.perShard, sisaTest.accuracy)));
  if (r.history.length) charts.push(await renderSvg(historyChart(r.history.flatMap((h) => h.methods.map((m) => ({ deletedRecords: h.deletedRecords, method: m.name, eoDifference: m.eoDifference }))))));
  const md = reportMarkdown(r);
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  // A minimal Markdown-table-to-HTML rendering keeps the page self-contained.
  const body = md
    .split('\n\n')
    .map((block) => {
      if (block.startsWith('# ')) return `<h1>${esc(block.slice(2))}</h1>`;
      if (block.startsWith('## ')) return `<h2>${esc(block.slice(3))}</h2>`;
      if (block.startsWith('|')) {
        const rows = block.split('\n').filter((l) => !/^\|[-|]+\|$/.test(l));
        return `<table>${rows.map((l, i) => `<tr>${l.split('|').slice(1, -1).map((c) => (i === 0 ? `<th>${esc(c.trim())}</th>` : `<td>${esc(c.trim())}</td>`)).join('')}</tr>`).join('')}</table>`;
      }
      return `<p>${esc(block).replace(/\*\*(.+?)\*\*/g, '<b>$1</b>').replace(/`([^`]+)`/g, '<code>$1</code>')}</p>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sisa fairness report</title>
<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}td:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:24px}.chart{border:1px solid #eee;padding:8px}code{font-size:90%}</style>
</head><body>
<div class="charts">${charts.map((c) => `<div class="chart">${c}</div>`).join('\n')}</div>
${body}
</body></html>
`;
}

export async function writeReport(o: ReportOptions): Promise<{ report: Report; files: string[] }> {
  checkOptions('writeReport', o, REPORT_OPTIONS);
  const report = await buildReport(o);
  const out = path.resolve(o.out ?? path.join(o.workdir, 'report'));
  await fsp.mkdir(out, { recursive: true });
  const files = [path.join(out, 'report.json'), path.join(out, 'report.md'), path.join(out, 'report.html')];
  await writeFileAtomic(files[0]!, JSON.stringify(report, null, 2) + '\n');
  await writeFileAtomic(files[1]!, reportMarkdown(report) + '\n');
  await writeFileAtomic(files[2]!, await reportHtml(report));
  return { report, files };
}

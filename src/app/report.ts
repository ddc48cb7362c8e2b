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
import { groupRatesChart, historyChart, methodColourScale, renderSvg, shardAccuracyChart, tradeoffChart, type ReportChart } from './charts.js';
import { CRITERIA, groupFairness, groupFairnessWithIntervals, groupRates, type Criterion, type DifferenceField, type GroupRates, type GroupRow, type Interval } from '../fairness/metrics.js';
import { applyMethod, expectedPositive, expectedRates, fitMethod, FAIR_METHODS, type FairMethod, type FittedMethod } from '../fairness/postprocess.js';
import { attributeValues, choicesOf, computeFit, fitSpecFor, groupNames as groupNamesOf, heldoutRows, isFittedFor, loadFit, loadHistory, type FairnessFit } from './fairnessFit.js';
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
  eqOppDifferenceCI: Interval;
  /** Between-group difference of the false-positive rates (what FPR parity constrains). */
  fprDifference: number;
  fprDifferenceCI: Interval;
  /** Between-group difference of the per-group ROC AUCs (null when fewer than two groups have both labels). */
  aucDifference: number | null;
  tpr: { sensitive: number; other: number };
  fpr: { sensitive: number; other: number };
  /** The binary view: 'sensitive' is every row outside group code 0, 'other' is code 0. */
  groups: { sensitive: GroupRates; other: GroupRates };
  /** fairlearn's MetricFrame `by_group`: every group's rates, ROC AUC included, in group-code order. */
  byGroup: GroupRow[];
  /** For the randomised post-processors: the expected (de-randomised) accuracy and EO difference, which the LP controls. */
  expected: { accuracy: number; eoDifference: number } | null;
}

export interface ResplitSummary {
  name: MethodName;
  meanAccuracy: number;
  meanEoDifference: number;
  eoDifferences: number[];
  /** Mean test-split difference of each criterion over the re-draws. */
  meanDifferences: Record<DifferenceField, number>;
}

/** Rows, toxic and non-toxic, of a split as a whole and of each group. */
export interface SplitSizes {
  split: string;
  rows: number;
  positives: number;
  negatives: number;
  byGroup: { group: string; rows: number; positives: number; negatives: number }[];
}

/** The report's one-paragraph conclusion, and the numbers it was computed from. */
export interface Verdict {
  text: string;
  /** The most accurate post-processor whose test-split gap is within the bootstrap interval of the smallest one. */
  method: MethodName | null;
  /** The plain ensemble's gap and that method's, on the test split. */
  from: number;
  to: number;
  /** Accuracy points lost (negative: gained) against the plain ensemble. */
  accuracyCostPoints: number;
  /** The method lowers the gap on the test split at all. */
  lowersGap: boolean;
  /** Its gap lies inside the plain ensemble's bootstrap 95% interval: the split cannot tell them apart. */
  withinInterval: boolean;
}

export interface Report {
  generatedAt: string;
  sensitive: string;
  tolerance: number;
  /** 'stored': the post-processors predict --fair uses; 'report': fitted in memory for this report only. */
  postProcessors: 'stored' | 'report';
  /** The fairness criterion the post-processors were fitted for; the verdict and charts measure its gap. */
  criterion: { name: Criterion; field: DifferenceField; label: string };
  /** The groups of the sensitive attribute, by group code. */
  groupNames: string[];
  /** How the post-processors were fitted, and the groups --min-group left unconstrained, with the reason. */
  fit: { objective: string; decision: string; minGroup: number | null; unconstrained: { group: string; reason: string }[] };
  /** The fit's cross-fitting on the calibration split (`fairness fit --cv K`), as the fit stored it; null without one. */
  crossFit: NonNullable<FairnessFit['cv']> | null;
  verdict: Verdict;
  data: SplitSizes[];
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

/**
 * The groups of `attribute` on these rows: a code per row and a name per code. Ingest stores binary
 * attributes (1 = in the group), so code 1 is the attribute's group and code 0 the rest.
 */
function groupsOf(state: State, rows: Rows, attribute: string): { codes: Uint8Array; names: string[] } {
  // The names fairness fit, fairness show and predict --fair use, so that the report speaks of the same groups.
  return { codes: attributeValues(state, rows, attribute), names: groupNamesOf(attribute, state) };
}

/** The criterion a fit was made for; fits written before criteria were selectable are equalized-odds fits. */
function criterionOf(fit: FairnessFit): Criterion {
  return fit.constraint in CRITERIA ? fit.constraint : 'equalized-odds';
}

function splitSizes(name: string, labels: ArrayLike<number>, codes: ArrayLike<number>, names: readonly string[]): SplitSizes {
  const count = (keep: (i: number) => boolean) => {
    let rows = 0, positives = 0;
    for (let i = 0; i < labels.length; i++) if (keep(i)) (rows++, (positives += labels[i] === 1 ? 1 : 0));
    return { rows, positives, negatives: rows - positives };
  };
  return { split: name, ...count(() => true), byGroup: names.map((group, code) => ({ group, ...count((i) => codes[i] === code) })) };
}

const fmt = (x: number, digits = 3) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');

/**
 * The verdict in plain language, from the test split's numbers: which post-processor lowers the gap of the
 * fitted criterion the most, from what to what, at what accuracy cost; or that none does; and whether the
 * change is smaller than the plain ensemble's own bootstrap uncertainty. Over re-drawn splits, the averages too.
 */
export function reportVerdict(o: {
  criterion: Criterion;
  groupNames: readonly string[];
  test: readonly Pick<MethodEntry, 'name' | 'accuracy' | 'eoDifference' | 'eqOppDifference' | 'fprDifference' | 'dpDifference' | 'eoDifferenceCI' | 'eqOppDifferenceCI' | 'fprDifferenceCI' | 'dpDifferenceCI'>[];
  resplits?: { count: number; methods: readonly Pick<ResplitSummary, 'name' | 'meanAccuracy' | 'meanDifferences'>[] } | null;
}): Verdict {
  const { field, short } = CRITERIA[o.criterion];
  const ciField = `${field}CI` as const;
  const between = o.groupNames.length === 2 ? `between ‘${o.groupNames[1]}’ and ‘${o.groupNames[0]}’` : `across the ${o.groupNames.length} groups (${o.groupNames.map((g) => `‘${g}’`).join(', ')})`;
  const sisa = o.test.find((m) => m.name === 'sisa');
  const fair = o.test.filter((m) => (FAIR_METHODS as readonly string[]).includes(m.name));
  if (!sisa || fair.length === 0) throw new Error('a verdict needs the plain ensemble and at least one post-processor on the test split');
  // The lowest gap, unless a more accurate method's gap is inside that one's bootstrap interval: a gap
  // difference the split cannot resolve should not cost accuracy.
  const lowest = [...fair].sort((a, b) => a[field] - b[field] || b.accuracy - a.accuracy)[0]!;
  const lowersGap = lowest[field] < sisa[field];
  const best = lowersGap ? fair.filter((m) => m[field] <= lowest[ciField][1] && m[field] < sisa[field]).sort((a, b) => b.accuracy - a.accuracy || a[field] - b[field])[0]! : lowest;
  const cost = (sisa.accuracy - best.accuracy) * 100;
  const ci = sisa[ciField];
  const withinInterval = lowersGap && best[field] >= ci[0];
  const costText = Math.abs(cost) < 0.05 ? 'at no accuracy cost' : cost > 0 ? `at a cost of ${cost.toFixed(1)} accuracy points (${fmt(sisa.accuracy)} → ${fmt(best.accuracy)})` : `while gaining ${(-cost).toFixed(1)} accuracy points (${fmt(sisa.accuracy)} → ${fmt(best.accuracy)})`;
  let text: string;
  if (!lowersGap)
    text = `No post-processor lowers the ${short} ${between} on the test split: the plain ensemble’s is ${fmt(sisa[field])}, and the lowest, that of ${best.name}, is ${fmt(best[field])}.`;
  else if (withinInterval)
    text = `On the test split, ${best.name} lowers the ${short} ${between} from ${fmt(sisa[field])} to ${fmt(best[field])}, ${costText}; but ${fmt(best[field])} lies inside the plain ensemble’s 95% bootstrap interval [${fmt(ci[0])}, ${fmt(ci[1])}], so this split is too small to tell the two apart.`;
  else text = `On the test split, ${best.name} lowers the ${short} ${between} from ${fmt(sisa[field])} to ${fmt(best[field])}, ${costText}; the plain ensemble’s 95% bootstrap interval is [${fmt(ci[0])}, ${fmt(ci[1])}].`;
  const rs = o.resplits;
  const rsBest = rs?.methods.find((m) => m.name === best.name);
  const rsSisa = rs?.methods.find((m) => m.name === 'sisa');
  if (rs && rsBest && rsSisa) {
    const c = (rsSisa.meanAccuracy - rsBest.meanAccuracy) * 100;
    const agree = rsBest.meanDifferences[field] < rsSisa.meanDifferences[field] === lowersGap;
    text += ` Averaged over ${rs.count} re-drawn calibration/test splits, ${best.name} has a mean ${short} of ${fmt(rsBest.meanDifferences[field])} against ${fmt(rsSisa.meanDifferences[field])} for the plain ensemble, ${Math.abs(c) < 0.05 ? 'at no accuracy cost' : c > 0 ? `at a cost of ${c.toFixed(1)} accuracy points` : `gaining ${(-c).toFixed(1)} accuracy points`}${agree ? '' : ', which does not bear out the single test split'}.`;
  }
  return { text, method: best.name, from: sisa[field], to: best[field], accuracyCostPoints: cost, lowersGap, withinInterval };
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
  // A report for another attribute or tolerance keeps the stored fit's other choices (constraint, objective, decision).
  if (!storedFitUsed) fit = await computeFit(ws, state, { ...(fit ? choicesOf(fit) : {}), attribute, tolerance, ensemble: ens });
  if (!fit) throw new Error('unreachable: a fit was computed');
  const fitted = new Map(fit.methods.map((m) => [m.method, m] as [FairMethod, FittedMethod]));
  const mono = o.baseline ? await trainMonolithic(ws, state) : null;
  const seed = state.config.seed;

  let groupNames: string[] = [];
  const load = (name: string, rows: Rows): Split => {
    const g = groupsOf(state, rows, attribute);
    groupNames = g.names;
    return { name, rows, probs: memberProbabilities(ens, { ...rows, n: rows.ids.length }), group: g.codes, mono: mono ? predictProba(mono, rows, rows.ids.length) : null };
  };
  const splits: Split[] = [load('calibration', await heldoutRows(ws, state, 'calibration')), load('test', await heldoutRows(ws, state, 'test'))];
  if (o.evalFile) splits.push(load(`eval:${path.basename(o.evalFile)}`, await loadLabelledFile(state, o.evalFile, { ...o.evalColumns, flagPrefix: 'eval-' }, true)));

  const names: MethodName[] = [...(mono ? (['monolithic'] as const) : []), 'sisa', ...FAIR_METHODS];
  const methods: MethodEntry[] = [];
  for (const split of splits) {
    for (const name of names) {
      const yhat = predictionsFor(name, { ...split, ids: split.rows.ids }, fitted, seed);
      // Scores for the per-group ROC AUC: vote share, probability, or the post-processor's P(flag).
      const score =
        name === 'sisa' ? aggregate(split.probs, 'vote').score : name === 'monolithic' ? split.mono! : expectedPositive(fitted.get(name)!, split.probs, split.group);
      const m = groupFairnessWithIntervals(split.rows.labels, yhat, split.group, groupNames, { resamples, seed, score });
      const sensitive = groupRates(split.rows.labels, yhat, score, (i) => split.group[i] !== 0);
      const other = groupRates(split.rows.labels, yhat, score, (i) => split.group[i] === 0);
      methods.push({
        name,
        split: split.name,
        rows: split.rows.ids.length,
        groupRows: split.group.reduce((s, g) => s + (g !== 0 ? 1 : 0), 0),
        accuracy: m.overall.accuracy,
        accuracyCI: m.accuracyCI,
        eoDifference: m.eoDifference,
        eoDifferenceCI: m.eoDifferenceCI,
        eoRatio: m.eoRatio,
        dpDifference: m.dpDifference,
        dpDifferenceCI: m.dpDifferenceCI,
        eqOppDifference: m.eqOppDifference,
        eqOppDifferenceCI: m.eqOppDifferenceCI,
        fprDifference: m.fprDifference,
        fprDifferenceCI: m.fprDifferenceCI,
        aucDifference: m.aucDifference,
        tpr: { sensitive: sensitive.tpr, other: other.tpr },
        fpr: { sensitive: sensitive.fpr, other: other.fpr },
        groups: { sensitive, other },
        byGroup: m.byGroup,
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
    const acc: Record<string, { a: number[]; e: number[]; d: Record<DifferenceField, number[]> }> = Object.fromEntries(
      names.map((n) => [n, { a: [], e: [], d: { eoDifference: [], eqOppDifference: [], fprDifference: [], dpDifference: [] } }]),
    );
    for (let r = 0; r < count; r++) {
      const calIdx: number[] = [];
      const testIdx: number[] = [];
      pool.rows.ids.forEach((id, i) => (hashUnit(seed + r + 1, 'resplit', id) < calFraction ? calIdx : testIdx).push(i));
      const c = subsetSplit(pool, calIdx);
      const t = subsetSplit(pool, testIdx);
      const yc = Uint8Array.from(calIdx, (i) => pool.rows.labels[i]!);
      const yt = Uint8Array.from(testIdx, (i) => pool.rows.labels[i]!);
      const refit = new Map<FairMethod, FittedMethod>();
      // Fitted as the report's own post-processors were (same constraint, objective, decision, --min-group).
      const { spec } = fitSpecFor({ ...choicesOf(fit), attribute, tolerance }, yc, c.group);
      for (const m of FAIR_METHODS) refit.set(m, await fitMethod(m, c.probs, yc, c.group, spec));
      for (const name of names) {
        const fm = groupFairness(yt, predictionsFor(name, t, refit, seed + r + 1), t.group, groupNames);
        acc[name]!.a.push(fm.overall.accuracy);
        acc[name]!.e.push(fm.eoDifference);
        for (const k of Object.keys(acc[name]!.d) as DifferenceField[]) acc[name]!.d[k].push(fm[k]);
      }
    }
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const summaries = names.map((name) => ({
      name,
      meanAccuracy: mean(acc[name]!.a),
      meanEoDifference: mean(acc[name]!.e),
      eoDifferences: acc[name]!.e,
      meanDifferences: Object.fromEntries(Object.entries(acc[name]!.d).map(([k, v]) => [k, mean(v)])) as Record<DifferenceField, number>,
    }));
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
  const criterion = criterionOf(fit);
  return {
    generatedAt: new Date().toISOString(),
    sensitive: attribute,
    tolerance,
    postProcessors: storedFitUsed ? 'stored' : 'report',
    criterion: { name: criterion, field: CRITERIA[criterion].field, label: CRITERIA[criterion].label },
    groupNames,
    fit: {
      objective: fit.objective === 'cost' ? `cost (missed toxic ${fit.fnCost}, false flag ${fit.fpCost})` : fit.objective,
      decision: fit.decision,
      minGroup: fit.minGroup ?? null,
      unconstrained: (fit.groups ?? []).filter((g) => !g.constrained).map((g) => ({ group: g.name, reason: g.reason ?? 'not constrained' })),
    },
    crossFit: fit.cv ?? null,
    verdict: reportVerdict({ criterion, groupNames, test: methods.filter((m) => m.split === 'test'), resplits }),
    data: splits.map((sp) => splitSizes(sp.name, sp.rows.labels, sp.group, groupNames)),
    reproduce: {
      datasetFingerprint: state.dataset.fingerprint,
      seed,
      backend: state.training.backend,
      revision: state.revision,
      models: state.models.map((m) => ({ shard: m.shard, version: m.version, modelHash: m.modelHash })),
      command: reproduceCommand(o, { attribute, tolerance, resplits: count, resamples }),
    },
    methods,
    calibrationError: fit.methods.map((m) => ({ name: m.method, lpError: m.lpError })),
    resplits,
    perShard,
    history: await loadHistory(ws),
  };
}

/**
 * The `sisa report` command line that gives this report again (run in the workspace with --workdir):
 * every setting that changes a number, values quoted for a POSIX shell. Library-only settings without a
 * flag (the --eval file's id column or format) cannot be written; the reader detects them as before.
 */
function reproduceCommand(o: ReportOptions, s: { attribute: string; tolerance: number; resplits: number; resamples: number }): string {
  const args = ['sisa', 'report', '--attribute', s.attribute, '--eo-tolerance', String(s.tolerance)];
  if (s.resplits) args.push('--resplits', String(s.resplits));
  if (o.baseline) args.push('--baseline');
  if (s.resamples !== 500) args.push('--resamples', String(s.resamples));
  if (o.evalFile) {
    const c = o.evalColumns ?? {};
    args.push('--eval', path.resolve(o.evalFile)); // run from anywhere: the file as it was found
    if (c.textCol !== undefined) args.push('--eval-text-col', c.textCol);
    if (c.labelCol !== undefined) args.push('--eval-label-col', c.labelCol);
    if (c.positiveValues !== undefined) args.push('--eval-positive-values', c.positiveValues.join(','));
    if (c.labelThreshold !== undefined) args.push('--eval-label-threshold', String(c.labelThreshold));
  }
  return args.map(shellWord).join(' ');
}

/** A word as a POSIX shell reads it back: as is when it holds no character the shell treats specially. */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

const f3 = (x: number | null) => (x !== null && Number.isFinite(x) ? x.toFixed(3) : 'n/a');
const ci = (c: Interval) => `[${f3(c[0])}, ${f3(c[1])}]`;
const int = (n: number) => n.toLocaleString('en-US');

/** The split whose numbers lead the report: test, the one the post-processors never saw. */
const SPLIT_ORDER = (r: Report) => {
  const all = [...new Set(r.methods.map((m) => m.split))];
  return [...all.filter((s) => s === 'test'), ...all.filter((s) => s.startsWith('eval:')), ...all.filter((s) => s === 'calibration')];
};

/** Columns of a methods table: the fitted criterion's gap first, then the others, as fairlearn names them. */
function methodColumns(r: Report): { head: string; cell: (m: MethodEntry) => string; ci?: (m: MethodEntry) => Interval }[] {
  const gap = (field: DifferenceField) => ({
    head: CRITERIA[Object.entries(CRITERIA).find(([, c]) => c.field === field)![0] as Criterion].label,
    cell: (m: MethodEntry) => f3(m[field]),
    ci: (m: MethodEntry) => m[`${field}CI`],
  });
  const order: DifferenceField[] = [r.criterion.field, ...(['eoDifference', 'fprDifference', 'eqOppDifference', 'dpDifference'] as const).filter((f) => f !== r.criterion.field)];
  return [
    { head: 'accuracy', cell: (m) => f3(m.accuracy), ci: (m) => m.accuracyCI },
    ...order.map(gap),
    { head: 'expected equalized-odds difference', cell: (m) => (m.expected ? f3(m.expected.eoDifference) : '–') },
  ];
}

/** How the post-processors were fitted, in one phrase. */
const fitPhrase = (r: Report) =>
  `${r.criterion.label} ≤ ${r.tolerance}${r.crossFit?.chosenTolerance !== undefined ? ' (ε chosen by cross-fitting)' : ''}, objective ${r.fit.objective}, ${r.fit.decision} decisions`;
/** The cross-fit table: out-of-fold accuracy and gap per method and ε, as `fairness show` prints it. */
const crossFitTable = (r: Report, cv: NonNullable<Report['crossFit']>) => ({
  title: `Cross-fitted on the calibration split (${cv.folds} folds): what each fit does on rows it did not see`,
  head: ['method', 'ε', 'out-of-fold accuracy', `out-of-fold ${r.criterion.label}`, 'violation (gap − ε)', 'noise (bootstrap sd)'],
  rows: cv.rows.map((x) => [x.method, String(x.tolerance), f3(x.accuracy), f3(x.gap), f3(x.violation), f3(x.noise)]),
  note: cv.chosenTolerance !== undefined ? `--eo-tolerance auto chose ε = ${cv.chosenTolerance}: the smallest at which votes' out-of-fold violation is within its noise.` : '',
});
/** The groups the fit left unconstrained and why, or '' when it constrained them all. */
const unconstrainedLine = (r: Report) =>
  r.fit.unconstrained.length ? `Not constrained by the fit (too few calibration rows to estimate their rates): ${r.fit.unconstrained.map((u) => `‘${u.group}’ (${u.reason})`).join(', ')}.` : '';

const DEFINITIONS = [
  'Differences are max − min over the groups of the rate each criterion equalises (fairlearn’s MetricFrame conventions): equalized-odds difference = the larger of the true- and false-positive-rate differences; equal-opportunity difference = true-positive-rate difference; demographic-parity difference = difference of the flag (selection) rates.',
  'The rates are those of the predictions actually made (randomised for the post-processors); the expected equalized-odds difference is that of the post-processor’s flag probabilities, which its LP constrains on the calibration split.',
  'Intervals are percentile bootstrap 95% intervals, resampling rows within each group.',
];

export function reportMarkdown(r: Report): string {
  const lines = [
    `# sisa fairness report`,
    '',
    `Sensitive attribute: **${r.sensitive}** (groups: ${r.groupNames.join(', ')}) · post-processors fitted for ${fitPhrase(r)} · generated ${r.generatedAt}`,
    '',
    `**Verdict.** ${r.verdict.text}`,
    '',
    '## Data and group sizes',
    '',
    `| split | rows | toxic / not | ${r.groupNames.map((g) => `${g}: rows (toxic / not)`).join(' | ')} |`,
    `|---|---|---|${r.groupNames.map(() => '---|').join('')}`,
    ...r.data.map((d) => `| ${d.split} | ${int(d.rows)} | ${int(d.positives)} / ${int(d.negatives)} | ${d.byGroup.map((g) => `${int(g.rows)} (${int(g.positives)} / ${int(g.negatives)})`).join(' | ')} |`),
    '',
    ...(unconstrainedLine(r) ? [unconstrainedLine(r), ''] : []),
  ];
  const cols = methodColumns(r);
  for (const split of SPLIT_ORDER(r)) {
    const rows = r.methods.filter((m) => m.split === split);
    lines.push(`## Methods on the ${split} split (${int(rows[0]!.rows)} rows)`, '');
    lines.push(`| method | ${cols.map((c) => (c.ci ? `${c.head} | 95% CI` : c.head)).join(' | ')} |`, `|---|${cols.map((c) => (c.ci ? '---|---|' : '---|')).join('')}`);
    for (const m of rows) lines.push(`| ${m.name} | ${cols.map((c) => (c.ci ? `${c.cell(m)} | ${ci(c.ci(m))}` : c.cell(m))).join(' | ')} |`);
    lines.push('');
  }
  lines.push(
    r.postProcessors === 'stored'
      ? 'Post-processors: the stored fit (`manifests/fairness.json`), the one `predict --fair` uses.'
      : "Post-processors: fitted for this report only; the stored fit that `predict --fair` uses is unchanged (change it with `sisa fairness fit`).",
    '',
  );
  const test = r.methods.filter((m) => m.split === 'test');
  lines.push('## Per-group metrics (test split)', '', '| method | group | rows | flag rate | true-positive rate | false-positive rate | accuracy | ROC AUC |', '|---|---|---|---|---|---|---|---|');
  for (const m of test) for (const g of m.byGroup) lines.push(`| ${m.name} | ${g.group} | ${int(g.count)} | ${f3(g.selectionRate)} | ${f3(g.tpr)} | ${f3(g.fpr)} | ${f3(g.accuracy)} | ${f3(g.auc)} |`);
  lines.push('', `ROC AUC difference between groups: ${test.map((m) => `${m.name} ${f3(m.aucDifference)}`).join(' · ')}`, '');
  if (r.resplits) {
    const field = r.criterion.field;
    lines.push(`## Averaged over ${r.resplits.count} seeded re-draws of the calibration/test partition`, '', `| method | mean test accuracy | mean test equalized-odds difference |${field === 'eoDifference' ? '' : ` mean test ${r.criterion.label} |`}`, `|---|---|---|${field === 'eoDifference' ? '' : '---|'}`);
    for (const m of r.resplits.methods) lines.push(`| ${m.name} | ${f3(m.meanAccuracy)} | ${f3(m.meanEoDifference)} |${field === 'eoDifference' ? '' : ` ${f3(m.meanDifferences[field])} |`}`);
    lines.push('', `votes is ${r.resplits.verdict.votesFairer ? 'fairer' : 'NOT fairer'} than the plain ensemble on average, at an accuracy cost of ${r.resplits.verdict.accuracyCostPoints.toFixed(2)} points.`, '');
  }
  if (r.crossFit) {
    const t = crossFitTable(r, r.crossFit);
    lines.push(`## ${t.title}`, '', `| ${t.head.join(' | ')} |`, `|${t.head.map(() => '---|').join('')}`, ...t.rows.map((x) => `| ${x.join(' | ')} |`), '', ...(t.note ? [t.note, ''] : []));
  }
  lines.push('## Per-shard accuracy (test)', '', r.perShard.map((s) => `shard ${s.shard} (v${s.modelVersion}): ${f3(s.accuracy)}`).join(' · '), '');
  if (r.history.length) {
    lines.push('## Fairness after each model change (test split)', '', '| revision | deletion batches | records deleted | ' + r.history[0]!.methods.map((m) => `${m.name} EO`).join(' | ') + ' |', '|---|---|---|' + r.history[0]!.methods.map(() => '---|').join(''));
    for (const h of r.history) lines.push(`| ${h.revision} | ${h.deletions} | ${h.deletedRecords} | ${h.methods.map((m) => f3(m.eoDifference)).join(' | ')} |`);
    lines.push('');
  }
  lines.push('## Definitions and reproduction', '', ...DEFINITIONS.flatMap((d) => [d, '']));
  lines.push(`Reproduce: data set sha256 \`${r.reproduce.datasetFingerprint}\`, seed ${r.reproduce.seed}, backend ${r.reproduce.backend}, revision ${r.reproduce.revision}; \`${r.reproduce.command}\``, '');
  lines.push(`Model versions: ${r.reproduce.models.map((m) => `shard ${m.shard} v${m.version} (${m.modelHash.slice(0, 12)})`).join(', ')}`, '');
  return lines.join('\n');
}

/** The report's charts, test split first: the accuracy/gap trade-off and the per-group rates, then shards and history. */
export function reportCharts(r: Report): ReportChart[] {
  const charts: ReportChart[] = [];
  for (const split of SPLIT_ORDER(r)) {
    const rows = r.methods.filter((m) => m.split === split);
    const field = r.criterion.field;
    charts.push(tradeoffChart(rows.map((m) => ({ method: m.name, accuracy: m.accuracy, gap: m[field], gapLow: m[`${field}CI`][0], gapHigh: m[`${field}CI`][1] })), split, r.criterion.label));
    charts.push(groupRatesChart(rows.flatMap((m) => m.byGroup.map((g) => ({ method: m.name, group: g.group, tpr: g.tpr, fpr: g.fpr }))), split));
  }
  const sisaTest = r.methods.find((m) => m.name === 'sisa' && m.split === 'test')!;
  charts.push(shardAccuracyChart(r.perShard, sisaTest.accuracy));
  if (r.history.length) charts.push(historyChart(r.history.flatMap((h) => h.methods.map((m) => ({ deletedRecords: h.deletedRecords, method: m.name, gap: m.eoDifference }))), 'equalized-odds difference'));
  return charts;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** JSON inside <script>: '<' escaped so no string in it can close the element. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');

function htmlTable(head: string[], rows: string[][], attrs = ''): string {
  return `<table${attrs}><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

function methodsTableHtml(r: Report, split: string, highlight: string | null): string {
  const cols = methodColumns(r);
  const rows = r.methods.filter((m) => m.split === split);
  return htmlTable(
    ['method', ...cols.map((c) => esc(c.head))],
    rows.map((m) => [
      `<span class="swatch" style="background:${methodColourScale([m.name]).range[0]}"></span>${m.name === highlight ? `<b>${esc(m.name)}</b>` : esc(m.name)}`,
      ...cols.map((c) => `${c.cell(m)}${c.ci ? ` <span class="ci">${ci(c.ci(m))}</span>` : ''}`),
    ]),
    ' class="methods"',
  );
}

/** A self-contained HTML page rendered from the Report: verdict, data, methods, charts, then the details. */
export async function reportHtml(r: Report): Promise<string> {
  const charts = reportCharts(r);
  const figures: string[] = [];
  for (const c of charts)
    figures.push(
      `<figure class="chart" id="chart-${esc(c.id)}"><h3>${esc(c.title)}</h3>${await renderSvg(c.spec)}<figcaption>${esc(c.caption)}</figcaption><script type="application/json" class="vega-spec" data-chart="${esc(c.id)}">${scriptJson(c.spec)}</script></figure>`,
    );
  const data = htmlTable(
    ['split', 'rows', 'toxic / not', ...r.groupNames.map((g) => esc(g))],
    r.data.map((d) => [esc(d.split), int(d.rows), `${int(d.positives)} / ${int(d.negatives)}`, ...d.byGroup.map((g) => `${int(g.rows)} <span class="ci">(${int(g.positives)} / ${int(g.negatives)})</span>`)]),
  );
  const test = r.methods.filter((m) => m.split === 'test');
  const perGroup = htmlTable(
    ['method', 'group', 'rows', 'flag rate', 'true-positive rate', 'false-positive rate', 'accuracy', 'ROC AUC'],
    test.flatMap((m) => m.byGroup.map((g) => [esc(m.name), esc(g.group), int(g.count), f3(g.selectionRate), f3(g.tpr), f3(g.fpr), f3(g.accuracy), f3(g.auc)])),
  );
  const others = SPLIT_ORDER(r).filter((s) => s !== 'test');
  const details: string[] = [];
  details.push(`<h2>Per-group metrics (test split)</h2>${perGroup}<p>ROC AUC difference between groups: ${test.map((m) => `${esc(m.name)} ${f3(m.aucDifference)}`).join(' · ')}</p>`);
  for (const s of others) details.push(`<h2>Methods on the ${esc(s)} split (${int(r.methods.find((m) => m.split === s)!.rows)} rows)</h2>${methodsTableHtml(r, s, null)}`);
  if (r.resplits) {
    const field = r.criterion.field;
    details.push(
      `<h2>Averaged over ${r.resplits.count} seeded re-draws of the calibration/test partition</h2>` +
        htmlTable(
          ['method', 'mean test accuracy', 'mean test equalized-odds difference', ...(field === 'eoDifference' ? [] : [`mean test ${esc(r.criterion.label)}`])],
          r.resplits.methods.map((m) => [esc(m.name), f3(m.meanAccuracy), f3(m.meanEoDifference), ...(field === 'eoDifference' ? [] : [f3(m.meanDifferences[field])])]),
        ),
    );
  }
  if (r.crossFit) {
    const t = crossFitTable(r, r.crossFit);
    details.push(`<h2>${esc(t.title)}</h2>${htmlTable(t.head.map(esc), t.rows.map((x) => x.map(esc)))}${t.note ? `<p>${esc(t.note)}</p>` : ''}`);
  }
  details.push(`<h2>Per-shard accuracy (test split)</h2><p>${r.perShard.map((s) => `shard ${s.shard} (v${s.modelVersion}): ${f3(s.accuracy)}`).join(' · ')}</p>`);
  if (r.history.length)
    details.push(
      `<h2>Fairness after each model change (test split)</h2>` +
        htmlTable(
          ['revision', 'deletion batches', 'records deleted', ...r.history[0]!.methods.map((m) => `${esc(m.name)} equalized-odds difference`)],
          r.history.map((h) => [String(h.revision), String(h.deletions), int(h.deletedRecords), ...h.methods.map((m) => f3(m.eoDifference))]),
        ),
    );
  const postProcessors =
    r.postProcessors === 'stored' ? 'the stored fit, the one <code>predict --fair</code> uses' : 'fitted for this report only (the stored fit <code>predict --fair</code> uses is unchanged)';
  details.push(
    `<h2>Definitions and reproduction</h2>${DEFINITIONS.map((d) => `<p>${esc(d)}</p>`).join('')}` +
      `<p>Post-processors: ${postProcessors}. Generated ${esc(r.generatedAt)}.</p>` +
      `<p>Reproduce: data set sha256 <code>${esc(r.reproduce.datasetFingerprint)}</code>, seed ${r.reproduce.seed}, backend ${esc(r.reproduce.backend)}, revision ${r.reproduce.revision}; <code>${esc(r.reproduce.command)}</code></p>` +
      `<p>Model versions: ${r.reproduce.models.map((m) => `shard ${m.shard} v${m.version} (${esc(m.modelHash.slice(0, 12))})`).join(', ')}</p>`,
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>sisa fairness report: ${esc(r.sensitive)}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1240px;margin:0 auto;padding:12px 20px 40px;color:#222;line-height:1.4}
h1{font-size:1.5em;margin:.1em 0}h2{font-size:1.1em;margin:.8em 0 .3em}.sub{font-weight:normal;color:#666;font-size:.85em;margin-left:.5em}h3{font-size:.95em;margin:0 0 6px}
.meta{color:#555;margin:0 0 .6em;font-size:.92em}
#verdict{background:#f3f7f4;border-left:4px solid #009E73;padding:8px 14px;margin:.4em 0}
#verdict p{margin:0}
table{border-collapse:collapse;margin:.3em 0;font-size:.92em}td,th{border:1px solid #d4d4d4;padding:2px 8px;text-align:right;vertical-align:top}th{background:#f4f4f4;font-weight:600}td:first-child,th:first-child{text-align:left}
.ci{color:#777;font-size:.85em;white-space:nowrap}
table.methods td{white-space:nowrap}
.swatch{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:6px;vertical-align:baseline}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{border:1px solid #e4e4e4;padding:8px;margin:0;max-width:100%;overflow-x:auto}
figcaption{font-size:.9em;color:#444;max-width:460px;margin-top:4px}
code{font-size:90%}.warn{color:#8a4b00;margin:.3em 0}
</style>
</head><body>
<header><h1>sisa fairness report</h1>
<p class="meta">Sensitive attribute <b>${esc(r.sensitive)}</b> (groups: ${r.groupNames.map(esc).join(', ')}) · post-processors fitted for ${esc(fitPhrase(r))}</p></header>
<section id="verdict"><p>${esc(r.verdict.text)}</p></section>
<section id="data"><h2>Data and group sizes <span class="sub">rows (toxic / not toxic)</span></h2>${data}${unconstrainedLine(r) ? `<p class="warn">${esc(unconstrainedLine(r))}</p>` : ''}</section>
<section id="methods"><h2>Methods on the test split <span class="sub">${int(test[0]!.rows)} rows; bracketed: 95% bootstrap interval</span></h2>${methodsTableHtml(r, 'test', r.verdict.method)}</section>
<section id="charts"><h2>Charts</h2><div class="charts">
${figures.join('\n')}
</div></section>
<section id="details">
${details.join('\n')}
</section>
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

/**
 * Group-fairness metrics for a sensitive attribute with any number of groups (codes 0..G-1), with the
 * definitions and names fairlearn's MetricFrame uses: per group rates (`byGroup`), and between groups the
 * difference (max − min) or ratio (min / max).
 * Bootstrap confidence intervals resample rows with a seeded generator; quantiles via simple-statistics.
 */
import { quantileSorted } from 'simple-statistics';
import { mulberry32 } from '../util/rng.js';
import { rocAuc } from '../util/metrics.js';

export interface GroupRates {
  count: number;
  baseRate: number;
  accuracy: number;
  balancedAccuracy: number;
  tpr: number;
  fpr: number;
  tnr: number;
  fnr: number;
  precision: number;
  selectionRate: number;
  auc: number | null;
}

const div = (a: number, b: number) => (b === 0 ? 0 : a / b);

export function groupRates(y: ArrayLike<number>, yhat: ArrayLike<number>, score: ArrayLike<number> | null, keep: (i: number) => boolean): GroupRates {
  let tp = 0, fp = 0, tn = 0, fn = 0;
  const ys: number[] = [];
  const ss: number[] = [];
  for (let i = 0; i < y.length; i++) {
    if (!keep(i)) continue;
    const pos = y[i] === 1;
    const pred = yhat[i] === 1;
    if (pos && pred) tp++;
    else if (pos) fn++;
    else if (pred) fp++;
    else tn++;
    if (score) {
      ys.push(y[i]!);
      ss.push(score[i]!);
    }
  }
  const count = tp + fp + tn + fn;
  const tpr = div(tp, tp + fn);
  const tnr = div(tn, tn + fp);
  const auc = score ? rocAuc(ys, ss) : NaN;
  return {
    count,
    baseRate: div(tp + fn, count),
    accuracy: div(tp + tn, count),
    balancedAccuracy: (tpr + tnr) / 2,
    tpr,
    fpr: div(fp, fp + tn),
    tnr,
    fnr: div(fn, fn + tp),
    precision: div(tp, tp + fp),
    selectionRate: div(tp + fp, count),
    auc: Number.isFinite(auc) ? auc : null,
  };
}

/** max − min over the groups (fairlearn's `MetricFrame.difference(method='between_groups')`). */
export function groupDifference(values: readonly number[]): number {
  return values.length === 0 ? 0 : Math.max(...values) - Math.min(...values);
}

/** min / max over the groups (fairlearn's `MetricFrame.ratio()`); all-zero rates are equal, so their ratio is 1. */
export function groupRatio(values: readonly number[]): number {
  if (values.length === 0) return 1;
  const hi = Math.max(...values);
  return hi === 0 ? 1 : Math.min(...values) / hi;
}

/** One group's rates, named as fairlearn's MetricFrame names its `by_group` rows. */
export type GroupRow = GroupRates & { group: string; code: number };

/**
 * fairlearn's MetricFrame for G groups with codes 0..G-1: the overall rates, the rates of each group that has
 * rows (`byGroup`, in code order), and between groups the difference (max − min) and ratio (min / max) of the
 * rates that define each fairness criterion. Empty groups are left out, as a MetricFrame only has rows for
 * the group values it sees.
 */
export interface GroupFairness {
  overall: GroupRates;
  byGroup: GroupRow[];
  /** equalized_odds_difference: the larger of the TPR and FPR differences. */
  eoDifference: number;
  /** equalized_odds_ratio: the smaller of the TPR and FPR ratios. */
  eoRatio: number;
  /** demographic_parity_difference: of the selection rates. */
  dpDifference: number;
  dpRatio: number;
  /** equal_opportunity_difference: of the true-positive rates. */
  eqOppDifference: number;
  eqOppRatio: number;
  /** false_positive_rate difference: what FPR parity constrains. */
  fprDifference: number;
  fprRatio: number;
  /** ROC AUC difference between groups (null when no group has both labels, or without scores). */
  aucDifference: number | null;
}

export interface FairnessMetrics extends GroupFairness {
  /** 'sensitive' (attribute = 1) and 'other' (attribute ≠ 1): the binary view earlier reports used. */
  groups: { sensitive: GroupRates; other: GroupRates };
}

/** The fairness criteria the fit can constrain, and the report field holding each one's between-group difference. */
export const CRITERIA = {
  'equalized-odds': { field: 'eoDifference', label: 'equalized-odds difference', short: 'equalized-odds gap' },
  'equal-opportunity': { field: 'eqOppDifference', label: 'equal-opportunity difference', short: 'true-positive-rate gap' },
  'fpr-parity': { field: 'fprDifference', label: 'false-positive-rate difference', short: 'false-positive-rate gap' },
  'demographic-parity': { field: 'dpDifference', label: 'demographic-parity difference', short: 'flag-rate gap' },
} as const;
export type Criterion = keyof typeof CRITERIA;
export type DifferenceField = (typeof CRITERIA)[Criterion]['field'];

/**
 * Per-group metrics and between-group differences for group codes 0..names.length-1 (codes outside that
 * range are refused: they would silently fall out of every group).
 */
export function groupFairness(y: ArrayLike<number>, yhat: ArrayLike<number>, group: ArrayLike<number>, names: readonly string[], score: ArrayLike<number> | null = null): GroupFairness {
  for (let i = 0; i < group.length; i++) {
    const g = group[i]!;
    if (!Number.isInteger(g) || g < 0 || g >= names.length) throw new RangeError(`group code ${g} at row ${i} is outside 0..${names.length - 1}`);
  }
  const byGroup: GroupRow[] = [];
  names.forEach((name, code) => {
    const r = groupRates(y, yhat, score, (i) => group[i] === code);
    if (r.count > 0) byGroup.push({ group: name, code, ...r });
  });
  const of = (k: 'tpr' | 'fpr' | 'selectionRate') => byGroup.map((r) => r[k]);
  const aucs = byGroup.flatMap((r) => (r.auc === null ? [] : [r.auc]));
  return {
    overall: groupRates(y, yhat, score, () => true),
    byGroup,
    eoDifference: Math.max(groupDifference(of('tpr')), groupDifference(of('fpr'))),
    eoRatio: Math.min(groupRatio(of('tpr')), groupRatio(of('fpr'))),
    dpDifference: groupDifference(of('selectionRate')),
    dpRatio: groupRatio(of('selectionRate')),
    eqOppDifference: groupDifference(of('tpr')),
    eqOppRatio: groupRatio(of('tpr')),
    fprDifference: groupDifference(of('fpr')),
    fprRatio: groupRatio(of('fpr')),
    aucDifference: aucs.length >= 2 ? groupDifference(aucs) : null,
  };
}

/** The binary case (sensitive = 1, everything else = 0), with the `groups.sensitive/other` view kept. */
export function fairnessMetrics(y: ArrayLike<number>, yhat: ArrayLike<number>, sensitive: ArrayLike<number>, score: ArrayLike<number> | null = null): FairnessMetrics {
  const codes = Uint8Array.from({ length: sensitive.length }, (_, i) => (sensitive[i] === 1 ? 1 : 0));
  const m = groupFairness(y, yhat, codes, ['other', 'sensitive'], score);
  return {
    ...m,
    groups: { sensitive: groupRates(y, yhat, score, (i) => codes[i] === 1), other: groupRates(y, yhat, score, (i) => codes[i] === 0) },
  };
}

export type Interval = [number, number];

/**
 * Percentile bootstrap 95% intervals of several statistics over `resamples` resamples of the row indices,
 * stratified by group code so that a small group keeps its size in every resample. `stats` returns one
 * value per statistic for a resample; the result has one interval per statistic.
 */
export function bootstrapIntervals(rows: number, group: ArrayLike<number>, stats: (idx: Int32Array) => readonly number[], resamples: number, seed: number): Interval[] {
  const rand = mulberry32(seed);
  const strata = new Map<number, number[]>();
  for (let i = 0; i < rows; i++) {
    const g = group[i]!;
    if (!strata.has(g)) strata.set(g, []);
    strata.get(g)!.push(i);
  }
  const pools = [...strata.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p);
  const values: number[][] = [];
  const idx = new Int32Array(rows);
  for (let r = 0; r < resamples; r++) {
    let k = 0;
    for (const pool of pools) for (let j = 0; j < pool.length; j++) idx[k++] = pool[Math.floor(rand() * pool.length)]!;
    stats(idx).forEach((v, s) => (values[s] ??= []).push(v));
  }
  return values.map((v) => {
    v.sort((a, b) => a - b);
    return [quantileSorted(v, 0.025), quantileSorted(v, 0.975)] as Interval;
  });
}

/** One statistic's interval: `bootstrapIntervals` with a single statistic. */
export function bootstrapInterval(rows: number, group: ArrayLike<number>, stat: (idx: Int32Array) => number, resamples: number, seed: number): Interval {
  return bootstrapIntervals(rows, group, (idx) => [stat(idx)], resamples, seed)[0]!;
}

export interface FairnessIntervals {
  accuracyCI: Interval;
  eoDifferenceCI: Interval;
  dpDifferenceCI: Interval;
  eqOppDifferenceCI: Interval;
  fprDifferenceCI: Interval;
}

/** Metrics for G groups plus bootstrap intervals of accuracy and the four between-group differences. */
export function groupFairnessWithIntervals(
  y: ArrayLike<number>,
  yhat: ArrayLike<number>,
  group: ArrayLike<number>,
  names: readonly string[],
  opts: { resamples?: number; seed: number; score?: ArrayLike<number> | null },
): GroupFairness & FairnessIntervals {
  const m = groupFairness(y, yhat, group, names, opts.score ?? null);
  const n = y.length;
  const yy = new Uint8Array(n), pp = new Uint8Array(n), gg = new Int32Array(n);
  // One set of resamples serves all statistics, so their intervals come from the same draws.
  const [accuracyCI, eoDifferenceCI, dpDifferenceCI, eqOppDifferenceCI, fprDifferenceCI] = bootstrapIntervals(
    n,
    group,
    (idx) => {
      for (let i = 0; i < n; i++) {
        yy[i] = y[idx[i]!]!;
        pp[i] = yhat[idx[i]!]!;
        gg[i] = group[idx[i]!]!;
      }
      const b = groupFairness(yy, pp, gg, names);
      return [b.overall.accuracy, b.eoDifference, b.dpDifference, b.eqOppDifference, b.fprDifference];
    },
    opts.resamples ?? 500,
    opts.seed,
  ) as [Interval, Interval, Interval, Interval, Interval];
  return { ...m, accuracyCI, eoDifferenceCI, dpDifferenceCI, eqOppDifferenceCI, fprDifferenceCI };
}

/** The binary case of `groupFairnessWithIntervals`, with the `groups.sensitive/other` view. */
export function fairnessWithIntervals(
  y: ArrayLike<number>,
  yhat: ArrayLike<number>,
  sensitive: ArrayLike<number>,
  opts: { resamples?: number; seed: number; score?: ArrayLike<number> | null },
): FairnessMetrics & FairnessIntervals {
  const codes = Uint8Array.from({ length: sensitive.length }, (_, i) => (sensitive[i] === 1 ? 1 : 0));
  const m = groupFairnessWithIntervals(y, yhat, codes, ['other', 'sensitive'], opts);
  const score = opts.score ?? null;
  return { ...m, groups: { sensitive: groupRates(y, yhat, score, (i) => codes[i] === 1), other: groupRates(y, yhat, score, (i) => codes[i] === 0) } };
}

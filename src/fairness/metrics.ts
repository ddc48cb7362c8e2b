/**
 * Group-fairness metrics for a binary sensitive attribute, with the definitions fairlearn uses for the
 * same names: per group rates, and between groups the difference (max − min) or ratio (min / max).
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

export interface FairnessMetrics {
  overall: GroupRates;
  /** 'sensitive' (attribute = 1) and 'other' (attribute = 0). */
  groups: { sensitive: GroupRates; other: GroupRates };
  eoDifference: number;
  eoRatio: number;
  dpDifference: number;
  dpRatio: number;
  eqOppDifference: number;
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

const diff = (a: number, b: number) => Math.abs(a - b);
/** min/max; two zero rates are equal, so their ratio is 1. */
const ratio = (a: number, b: number) => (Math.max(a, b) === 0 ? 1 : Math.min(a, b) / Math.max(a, b));

export function fairnessMetrics(y: ArrayLike<number>, yhat: ArrayLike<number>, sensitive: ArrayLike<number>, score: ArrayLike<number> | null = null): FairnessMetrics {
  const s = groupRates(y, yhat, score, (i) => sensitive[i] === 1);
  const o = groupRates(y, yhat, score, (i) => sensitive[i] !== 1);
  return {
    overall: groupRates(y, yhat, score, () => true),
    groups: { sensitive: s, other: o },
    eoDifference: Math.max(diff(s.tpr, o.tpr), diff(s.fpr, o.fpr)),
    eoRatio: Math.min(ratio(s.tpr, o.tpr), ratio(s.fpr, o.fpr)),
    dpDifference: diff(s.selectionRate, o.selectionRate),
    dpRatio: ratio(s.selectionRate, o.selectionRate),
    eqOppDifference: diff(s.tpr, o.tpr),
  };
}

export type Interval = [number, number];

/**
 * Percentile bootstrap 95% interval of `stat` over `n` resamples of the row indices, stratified by
 * group so that a small sensitive group keeps its size in every resample.
 */
export function bootstrapInterval(rows: number, sensitive: ArrayLike<number>, stat: (idx: Int32Array) => number, resamples: number, seed: number): Interval {
  const rand = mulberry32(seed);
  const inGroup: number[] = [];
  const outGroup: number[] = [];
  for (let i = 0; i < rows; i++) (sensitive[i] === 1 ? inGroup : outGroup).push(i);
  const values: number[] = [];
  const idx = new Int32Array(rows);
  for (let r = 0; r < resamples; r++) {
    let k = 0;
    for (const pool of [inGroup, outGroup]) for (let j = 0; j < pool.length; j++) idx[k++] = pool[Math.floor(rand() * pool.length)]!;
    values.push(stat(idx));
  }
  values.sort((a, b) => a - b);
  return [quantileSorted(values, 0.025), quantileSorted(values, 0.975)];
}

/** Metrics plus bootstrap intervals for the equalized-odds and demographic-parity differences and accuracy. */
export function fairnessWithIntervals(
  y: ArrayLike<number>,
  yhat: ArrayLike<number>,
  sensitive: ArrayLike<number>,
  opts: { resamples?: number; seed: number; score?: ArrayLike<number> | null },
): FairnessMetrics & { eoDifferenceCI: Interval; dpDifferenceCI: Interval; accuracyCI: Interval } {
  const m = fairnessMetrics(y, yhat, sensitive, opts.score ?? null);
  const n = y.length;
  const pick = (idx: Int32Array) => {
    const yy = new Uint8Array(n), pp = new Uint8Array(n), gg = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      yy[i] = y[idx[i]!]!;
      pp[i] = yhat[idx[i]!]!;
      gg[i] = sensitive[idx[i]!]!;
    }
    return fairnessMetrics(yy, pp, gg);
  };
  const resamples = opts.resamples ?? 500;
  // One set of resamples serves all three statistics (same seed → same index draws).
  const ci = (f: (x: FairnessMetrics) => number) => bootstrapInterval(n, sensitive, (idx) => f(pick(idx)), resamples, opts.seed);
  return { ...m, eoDifferenceCI: ci((x) => x.eoDifference), dpDifferenceCI: ci((x) => x.dpDifference), accuracyCI: ci((x) => x.overall.accuracy) };
}

/**
 * Honest estimates for the fairness fit: K-fold cross-fitting on the calibration split. Each fold is
 * predicted by post-processors fitted on the other folds, so the out-of-fold accuracy and constraint gap
 * are what the fit does on rows it did not see, not how well it fits the noise of small groups. Folds come
 * from a hash of (seed, record id), so the result depends on the seed and the data, not on row order.
 */
import { hashUnit, mulberry32 } from '../util/rng.js';
import { applyMethod, expectedGap, fitMethod, FAIR_METHODS, type FairMethod, type FitSpec } from './postprocess.js';

/** The ε grid cross-fitting compares (and --eo-tolerance auto chooses from). */
export const CV_GRID = [0, 0.02, 0.05, 0.1] as const;
const RESAMPLES = 200;

export interface CrossFitRow {
  method: FairMethod;
  tolerance: number;
  /** Out-of-fold accuracy of the decisions actually made. */
  accuracy: number;
  /** Out-of-fold constraint value (max − min rate over the constrained groups) of the decisions made. */
  gap: number;
  /** max(0, gap − tolerance). */
  violation: number;
  /** Bootstrap standard deviation of gap (rows resampled within each group): how much of it is noise. */
  noise: number;
}

export interface CrossFit {
  folds: number;
  seed: number;
  rows: CrossFitRow[];
}

export interface CrossFitInput {
  probs: readonly Float32Array[];
  y: ArrayLike<number>;
  group: ArrayLike<number>;
  ids: readonly string[];
  /** Number of groups (codes 0..groups − 1). */
  groups: number;
  seed: number;
}

/** How to fit at tolerance ε on some calibration rows (the --min-group exclusions depend on the rows). */
export type SpecAt = (tolerance: number, y: ArrayLike<number>, group: ArrayLike<number>) => FitSpec;

export async function crossFit(d: CrossFitInput, folds: number, specAt: SpecAt, grid: readonly number[] = CV_GRID): Promise<CrossFit> {
  const n = d.ids.length;
  const fold = Int32Array.from(d.ids, (id) => Math.min(folds - 1, Math.floor(hashUnit(d.seed, 'cv-fold', id) * folds)));
  const subset = (keep: (i: number) => boolean) => {
    const idx: number[] = [];
    for (let i = 0; i < n; i++) if (keep(i)) idx.push(i);
    return {
      idx,
      y: Uint8Array.from(idx, (i) => d.y[i]!),
      group: Uint8Array.from(idx, (i) => d.group[i]!),
      ids: idx.map((i) => d.ids[i]!),
      probs: d.probs.map((p) => Float32Array.from(idx, (i) => p[i]!)),
    };
  };
  const parts = Array.from({ length: folds }, (_, k) => ({ train: subset((i) => fold[i] !== k), test: subset((i) => fold[i] === k) }));
  const rows: CrossFitRow[] = [];
  for (const tolerance of grid) {
    const full = specAt(tolerance, d.y, d.group);
    for (const method of FAIR_METHODS) {
      const oof = new Uint8Array(n);
      for (const { train, test } of parts) {
        if (test.idx.length === 0) continue;
        const fitted = await fitMethod(method, train.probs, train.y, train.group, { ...specAt(tolerance, train.y, train.group), groups: d.groups });
        const labels = applyMethod(fitted, test.probs, test.group, test.ids, d.seed);
        test.idx.forEach((i, j) => (oof[i] = labels[j]!));
      }
      let correct = 0;
      for (let i = 0; i < n; i++) if (oof[i] === (d.y[i] === 1 ? 1 : 0)) correct++;
      const gap = expectedGap(d.y, d.group, oof, d.groups, full);
      rows.push({ method, tolerance, accuracy: n ? correct / n : 0, gap, violation: Math.max(0, gap - tolerance), noise: bootstrapNoise(d, oof, full, method, tolerance) });
    }
  }
  return { folds, seed: d.seed, rows };
}

/** Standard deviation of the gap over group-stratified bootstrap resamples, seeded by (seed, method, ε). */
function bootstrapNoise(d: CrossFitInput, decisions: Uint8Array, spec: FitSpec, method: string, tolerance: number): number {
  const members: number[][] = Array.from({ length: d.groups }, () => []);
  for (let i = 0; i < d.y.length; i++) members[d.group[i]!]!.push(i);
  // In id order, so a resample picks the same records whatever order the rows came in.
  for (const rows of members) rows.sort((a, b) => (d.ids[a]! < d.ids[b]! ? -1 : d.ids[a]! > d.ids[b]! ? 1 : 0));
  const rand = mulberry32(Math.floor(hashUnit(d.seed, 'cv-bootstrap', `${method}:${tolerance}`) * 2 ** 32));
  const n = d.y.length;
  const y = new Uint8Array(n), g = new Uint8Array(n), p = new Uint8Array(n);
  const gaps: number[] = [];
  for (let r = 0; r < RESAMPLES; r++) {
    let k = 0;
    for (const [code, rows] of members.entries())
      for (let j = 0; j < rows.length; j++) {
        const i = rows[Math.floor(rand() * rows.length)]!;
        (y[k] = d.y[i]!), (g[k] = code), (p[k] = decisions[i]!), k++;
      }
    gaps.push(expectedGap(y, g, p, d.groups, spec));
  }
  const mean = gaps.reduce((s, x) => s + x, 0) / gaps.length;
  return Math.sqrt(gaps.reduce((s, x) => s + (x - mean) ** 2, 0) / (gaps.length - 1));
}

/**
 * --eo-tolerance auto: the smallest ε of the grid at which the votes post-processor's out-of-fold
 * violation is within its bootstrap noise (one standard deviation); the largest ε when none is.
 */
export function chooseTolerance(cv: CrossFit): number {
  const votes = cv.rows.filter((r) => r.method === 'votes').sort((a, b) => a.tolerance - b.tolerance);
  return (votes.find((r) => r.violation <= r.noise) ?? votes[votes.length - 1]!).tolerance;
}

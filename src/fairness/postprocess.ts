/**
 * FairSISA post-processors: derived predictors (equalized odds by default, or the constraint and
 * objective the user picks; see lp.ts) applied to the ensemble in three ways, for any number of groups
 * (group codes 0..G − 1; a binary attribute is codes 0 = other, 1 = in the group).
 *  - per-model: each constituent's hard prediction is post-processed, then the results vote;
 *  - ensemble:  the ensemble's majority vote is post-processed;
 *  - votes:     the number of positive votes k ∈ {0..S} and the group decide (one LP over (S+1) × 2
 *               probabilities); it contains `ensemble` as a special case and is the optimal one.
 * Randomised decisions draw a uniform number from (seed, method, model, record id), so the same record
 * always gets the same decision and a report is reproducible.
 */
import { voteCounts } from '../models/ensemble.js';
import { hashUnit } from '../util/rng.js';
import { constraintRates, solveDerivedPredictor, tally, type Counts, type FairConstraint, type LpSpec } from './lp.js';
import { searchThresholds } from './threshold.js';
import { majority, majorityThreshold, vote } from '../util/vote.js';

export const FAIR_METHODS = ['per-model', 'ensemble', 'votes'] as const;
export type FairMethod = (typeof FAIR_METHODS)[number];

export interface FittedMethod {
  method: FairMethod;
  /** votes/ensemble: [p] with p[g][b]; per-model: one p[g][b] per constituent model. Threshold decisions: every p is 0 or 1. */
  tables: number[][][];
  /** Expected error of the LP solution on the calibration data (per-model: of each model, mean). */
  lpError: number;
  /** What did not go as planned in the fit (a failed tie-break), for `fairness show`; absent when nothing. */
  notes?: string[];
  /** The constraint's value (max − min rate over all groups, constrained or not) reached on calibration, in expectation. */
  calibrationGap?: number;
}

export const FAIR_DECISIONS = ['randomized', 'threshold'] as const;
export type FairDecision = (typeof FAIR_DECISIONS)[number];

/** How a fit is made: the LP's spec, how many groups the codes name, and how decisions are made. */
export interface FitSpec extends LpSpec {
  /** Number of groups G (codes 0..G − 1); default: the largest code + 1, at least 2. */
  groups?: number;
  /** randomized (default): the LP optimum, drawn per record id; threshold: per-group thresholds, no randomness. */
  decision?: FairDecision;
}

/** One table for a decision kind: the LP's (randomised) or the best thresholds' (0/1). */
async function fitTable(counts: Counts, spec: FitSpec): Promise<{ p: number[][]; error: number; note?: string }> {
  if (spec.decision === 'threshold') return searchThresholds(counts, spec);
  const r = await solveDerivedPredictor(counts, spec);
  return { p: r.p, error: r.error, note: r.tieBreak };
}

/** Calibration counts of one group, and whether the constraint holds it. */
export interface GroupCount {
  negatives: number;
  positives: number;
  constrained: boolean;
  /** Why a group is not constrained, e.g. "12 negatives < --min-group 30". */
  reason?: string;
}

/** Negatives and positives per group code. */
export function labelCounts(y: ArrayLike<number>, group: ArrayLike<number>, groups: number): [number, number][] {
  const out = Array.from({ length: groups }, () => [0, 0] as [number, number]);
  for (let i = 0; i < y.length; i++) out[group[i]!]![y[i] === 1 ? 1 : 0] += 1;
  return out;
}

/**
 * Which groups the constraint may hold: a group with too few calibration rows of a kind the constraint's
 * rates count (positives for TPR, negatives for FPR, rows for the selection rate) has rates that are mostly
 * noise, so it is fitted for the objective only.
 */
export function eligibility(counts: readonly [number, number][], constraint: FairConstraint, minGroup: number): GroupCount[] {
  return counts.map(([negatives, positives]) => {
    const short: string[] = [];
    const needPos = constraint === 'equalized-odds' || constraint === 'equal-opportunity';
    const needNeg = constraint === 'equalized-odds' || constraint === 'fpr-parity';
    if (needPos && positives < minGroup) short.push(`${positives} positives`);
    if (needNeg && negatives < minGroup) short.push(`${negatives} negatives`);
    if (constraint === 'demographic-parity' && positives + negatives < minGroup) short.push(`${positives + negatives} rows`);
    return short.length ? { negatives, positives, constrained: false, reason: `${short.join(' and ')} < --min-group ${minGroup}` } : { negatives, positives, constrained: true };
  });
}

function groupCountOf(group: ArrayLike<number>, spec: FitSpec): number {
  if (spec.groups !== undefined) return spec.groups;
  let max = 1;
  for (let i = 0; i < group.length; i++) max = Math.max(max, group[i]!);
  return max + 1;
}

/** The row of a table for a group code, refusing codes the fit has no row for. */
function tableRow(table: number[][], code: number): number[] {
  const row = table[code];
  if (!row) throw new Error(`group code ${code} is not one of the ${table.length} groups the post-processor was fitted on`);
  return row;
}

function majorityLabels(votes: Int32Array, S: number): Uint8Array {
  return Uint8Array.from(votes, (k) => majority(k, S));
}

export async function fitMethod(method: FairMethod, probs: readonly Float32Array[], y: ArrayLike<number>, group: ArrayLike<number>, specOrTolerance: number | FitSpec): Promise<FittedMethod> {
  const spec: FitSpec = typeof specOrTolerance === 'number' ? { tolerance: specOrTolerance } : specOrTolerance;
  const G = groupCountOf(group, spec);
  const S = probs.length;
  let fitted: FittedMethod;
  if (method === 'votes') {
    const r = await fitTable(tally(y, group, voteCounts(probs), S + 1, G), spec);
    fitted = withNotes({ method, tables: [r.p], lpError: r.error }, [r.note]);
  } else if (method === 'ensemble') {
    const r = await fitTable(tally(y, group, majorityLabels(voteCounts(probs), S), 2, G), spec);
    fitted = withNotes({ method, tables: [r.p], lpError: r.error }, [r.note]);
  } else {
    const tables: number[][][] = [];
    const notes: (string | undefined)[] = [];
    let err = 0;
    for (const [m, p] of probs.entries()) {
      const r = await fitTable(tally(y, group, Uint8Array.from(p, vote), 2, G), spec);
      tables.push(r.p);
      notes.push(r.note && `model ${m}: ${r.note}`);
      err += r.error / S;
    }
    fitted = withNotes({ method, tables, lpError: err }, notes);
  }
  // Over every group, constrained or not: the number a user should see next to the groups left out.
  return { ...fitted, calibrationGap: expectedGap(y, group, expectedPositive(fitted, probs, group), G, { ...spec, constrained: undefined }) };
}

/** The constraint's value for expected decisions pPos: max − min of each constrained rate over the constrained groups. */
export function expectedGap(y: ArrayLike<number>, group: ArrayLike<number>, pPos: ArrayLike<number>, groups: number, spec: LpSpec): number {
  const n = Array.from({ length: groups }, () => [0, 0]); // [group][label] rows
  const sum = Array.from({ length: groups }, () => [0, 0]); // [group][label] Σ P(ŷ = 1)
  for (let i = 0; i < y.length; i++) {
    const l = y[i] === 1 ? 1 : 0;
    n[group[i]!]![l]! += 1;
    sum[group[i]!]![l]! += pPos[i]!;
  }
  let gap = 0;
  for (const kind of constraintRates(spec.constraint ?? 'equalized-odds')) {
    const labels = kind === 'tpr' ? [1] : kind === 'fpr' ? [0] : [0, 1];
    const rates: number[] = [];
    for (let g = 0; g < groups; g++) {
      const N = labels.reduce((t, l) => t + n[g]![l]!, 0);
      if (N > 0 && (spec.constrained?.[g] ?? true)) rates.push(labels.reduce((t, l) => t + sum[g]![l]!, 0) / N);
    }
    if (rates.length > 1) gap = Math.max(gap, Math.max(...rates) - Math.min(...rates));
  }
  return gap;
}

function withNotes(fit: FittedMethod, notes: (string | undefined)[]): FittedMethod {
  const said = notes.filter((n): n is string => n !== undefined);
  return said.length ? { ...fit, notes: said } : fit;
}

/** Fair hard predictions for rows identified by `ids`, with their group membership. */
export function applyMethod(fit: FittedMethod, probs: readonly Float32Array[], group: ArrayLike<number>, ids: readonly string[], seed: number): Uint8Array {
  const S = probs.length;
  const n = ids.length;
  const out = new Uint8Array(n);
  // Only a probability strictly between 0 and 1 consults the id hash: a threshold fit (all 0/1) never does.
  const decide = (p: number, key: string, id: string) => (p >= 1 ? 1 : p <= 0 ? 0 : hashUnit(seed, key, id) < p ? 1 : 0);
  if (fit.method === 'per-model') {
    if (fit.tables.length !== S) throw new Error(`per-model post-processor was fitted on ${fit.tables.length} models, ensemble has ${S}`);
    for (let i = 0; i < n; i++) {
      let k = 0;
      for (let m = 0; m < S; m++) k += decide(tableRow(fit.tables[m]!, group[i]!)[vote(probs[m]![i]!)]!, `fair:per-model:${m}`, ids[i]!);
      out[i] = majority(k, S);
    }
    return out;
  }
  const votes = voteCounts(probs);
  const input = fit.method === 'votes' ? votes : majorityLabels(votes, S);
  const table = fit.tables[0]!;
  if (fit.method === 'votes' && table[0]!.length !== S + 1) throw new Error(`votes post-processor was fitted for ${table[0]!.length - 1} models, ensemble has ${S}`);
  for (let i = 0; i < n; i++) out[i] = decide(tableRow(table, group[i]!)[input[i]!]!, `fair:${fit.method}`, ids[i]!);
  return out;
}

/**
 * P(ŷ = 1) for each row under the randomised predictor — the quantity the LP constrains. For
 * per-model, the models' decisions are independent given the row, so the chance that a majority is
 * positive is a Poisson-binomial tail, computed by dynamic programming over the models.
 */
export function expectedPositive(fit: FittedMethod, probs: readonly Float32Array[], group: ArrayLike<number>): Float64Array {
  const S = probs.length;
  const n = probs[0]?.length ?? 0;
  const out = new Float64Array(n);
  if (fit.method === 'per-model') {
    const dist = new Float64Array(S + 1);
    for (let i = 0; i < n; i++) {
      dist.fill(0);
      dist[0] = 1;
      for (let m = 0; m < S; m++) {
        const p = tableRow(fit.tables[m]!, group[i]!)[vote(probs[m]![i]!)]!;
        for (let k = m + 1; k >= 1; k--) dist[k] = dist[k]! * (1 - p) + dist[k - 1]! * p;
        dist[0] = dist[0]! * (1 - p);
      }
      let tail = 0;
      for (let k = majorityThreshold(S); k <= S; k++) tail += dist[k]!;
      out[i] = tail;
    }
    return out;
  }
  const votes = voteCounts(probs);
  const table = fit.tables[0]!;
  for (let i = 0; i < n; i++) {
    const k = votes[i]!;
    out[i] = tableRow(table, group[i]!)[fit.method === 'votes' ? k : majority(k, S)]!;
  }
  return out;
}

/**
 * Expected TPR/FPR per group (by code; a group with no row of a label gets 0 for that rate) and the
 * expected equalized-odds difference of a randomised predictor: the largest max − min of TPR or FPR over
 * the groups that have rows of that label.
 */
export function expectedRates(y: ArrayLike<number>, group: ArrayLike<number>, pPos: ArrayLike<number>): { tpr: number[]; fpr: number[]; eoDifference: number; accuracy: number } {
  let G = 2;
  for (let i = 0; i < group.length; i++) G = Math.max(G, group[i]! + 1);
  const sum = Array.from({ length: G }, () => [0, 0]); // [group][label] Σ P(ŷ=1)
  const cnt = Array.from({ length: G }, () => [0, 0]);
  let correct = 0;
  for (let i = 0; i < y.length; i++) {
    const g = group[i]!;
    const l = y[i] === 1 ? 1 : 0;
    sum[g]![l]! += pPos[i]!;
    cnt[g]![l]! += 1;
    correct += l === 1 ? pPos[i]! : 1 - pPos[i]!;
  }
  const rate = (g: number, l: number) => (cnt[g]![l]! === 0 ? 0 : sum[g]![l]! / cnt[g]![l]!);
  const spread = (l: number) => {
    const present = cnt.flatMap((c, g) => (c[l]! > 0 ? [rate(g, l)] : []));
    return present.length < 2 ? 0 : Math.max(...present) - Math.min(...present);
  };
  const tpr = Array.from({ length: G }, (_, g) => rate(g, 1));
  const fpr = Array.from({ length: G }, (_, g) => rate(g, 0));
  return { tpr, fpr, eoDifference: Math.max(spread(1), spread(0)), accuracy: y.length ? correct / y.length : 0 };
}

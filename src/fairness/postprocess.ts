/**
 * FairSISA post-processors: equalized-odds derived predictors applied to the ensemble in three ways.
 *  - per-model: each constituent's hard prediction is post-processed, then the results vote;
 *  - ensemble:  the ensemble's majority vote is post-processed;
 *  - votes:     the number of positive votes k ∈ {0..S} and the group decide (one LP over (S+1) × 2
 *               probabilities); it contains `ensemble` as a special case and is the optimal one.
 * Randomised decisions draw a uniform number from (seed, method, model, record id), so the same record
 * always gets the same decision and a report is reproducible.
 */
import { voteCounts } from '../models/ensemble.js';
import { hashUnit } from '../util/rng.js';
import { solveDerivedPredictor, tally } from './lp.js';
import { majority, majorityThreshold, vote } from '../util/vote.js';

export const FAIR_METHODS = ['per-model', 'ensemble', 'votes'] as const;
export type FairMethod = (typeof FAIR_METHODS)[number];

export interface FittedMethod {
  method: FairMethod;
  /** votes/ensemble: [p] with p[g][b]; per-model: one p[g][b] per constituent model. */
  tables: number[][][];
  /** Expected error of the LP solution on the calibration data (per-model: of each model, mean). */
  lpError: number;
  /** What did not go as planned in the fit (a failed tie-break), for `fairness show`; absent when nothing. */
  notes?: string[];
}

function majorityLabels(votes: Int32Array, S: number): Uint8Array {
  return Uint8Array.from(votes, (k) => majority(k, S));
}

export async function fitMethod(method: FairMethod, probs: readonly Float32Array[], y: ArrayLike<number>, group: ArrayLike<number>, tolerance: number): Promise<FittedMethod> {
  const S = probs.length;
  if (method === 'votes') {
    const r = await solveDerivedPredictor(tally(y, group, voteCounts(probs), S + 1), tolerance);
    return withNotes({ method, tables: [r.p], lpError: r.error }, [r.tieBreak]);
  }
  if (method === 'ensemble') {
    const r = await solveDerivedPredictor(tally(y, group, majorityLabels(voteCounts(probs), S), 2), tolerance);
    return withNotes({ method, tables: [r.p], lpError: r.error }, [r.tieBreak]);
  }
  const tables: number[][][] = [];
  const notes: (string | undefined)[] = [];
  let err = 0;
  for (const [m, p] of probs.entries()) {
    const r = await solveDerivedPredictor(tally(y, group, Uint8Array.from(p, vote), 2), tolerance);
    tables.push(r.p);
    notes.push(r.tieBreak && `model ${m}: ${r.tieBreak}`);
    err += r.error / S;
  }
  return withNotes({ method, tables, lpError: err }, notes);
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
  const decide = (p: number, key: string, id: string) => (p >= 1 ? 1 : p <= 0 ? 0 : hashUnit(seed, key, id) < p ? 1 : 0);
  if (fit.method === 'per-model') {
    if (fit.tables.length !== S) throw new Error(`per-model post-processor was fitted on ${fit.tables.length} models, ensemble has ${S}`);
    for (let i = 0; i < n; i++) {
      const g = group[i] === 1 ? 1 : 0;
      let k = 0;
      for (let m = 0; m < S; m++) k += decide(fit.tables[m]![g]![vote(probs[m]![i]!)]!, `fair:per-model:${m}`, ids[i]!);
      out[i] = majority(k, S);
    }
    return out;
  }
  const votes = voteCounts(probs);
  const input = fit.method === 'votes' ? votes : majorityLabels(votes, S);
  const table = fit.tables[0]!;
  if (fit.method === 'votes' && table[0]!.length !== S + 1) throw new Error(`votes post-processor was fitted for ${table[0]!.length - 1} models, ensemble has ${S}`);
  for (let i = 0; i < n; i++) out[i] = decide(table[group[i] === 1 ? 1 : 0]![input[i]!]!, `fair:${fit.method}`, ids[i]!);
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
      const g = group[i] === 1 ? 1 : 0;
      dist.fill(0);
      dist[0] = 1;
      for (let m = 0; m < S; m++) {
        const p = fit.tables[m]![g]![vote(probs[m]![i]!)]!;
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
    out[i] = table[group[i] === 1 ? 1 : 0]![fit.method === 'votes' ? k : majority(k, S)]!;
  }
  return out;
}

/** Expected TPR/FPR per group and the expected equalized-odds difference of a randomised predictor. */
export function expectedRates(y: ArrayLike<number>, group: ArrayLike<number>, pPos: ArrayLike<number>): { tpr: [number, number]; fpr: [number, number]; eoDifference: number; accuracy: number } {
  const sum = [[0, 0], [0, 0]]; // [group][label] Σ P(ŷ=1)
  const cnt = [[0, 0], [0, 0]];
  let correct = 0;
  for (let i = 0; i < y.length; i++) {
    const g = group[i] === 1 ? 1 : 0;
    const l = y[i] === 1 ? 1 : 0;
    sum[g]![l]! += pPos[i]!;
    cnt[g]![l]! += 1;
    correct += l === 1 ? pPos[i]! : 1 - pPos[i]!;
  }
  const rate = (g: number, l: number) => (cnt[g]![l]! === 0 ? 0 : sum[g]![l]! / cnt[g]![l]!);
  const tpr: [number, number] = [rate(0, 1), rate(1, 1)];
  const fpr: [number, number] = [rate(0, 0), rate(1, 0)];
  return { tpr, fpr, eoDifference: Math.max(Math.abs(tpr[0] - tpr[1]), Math.abs(fpr[0] - fpr[1])), accuracy: y.length ? correct / y.length : 0 };
}

/**
 * Deterministic post-processing: one integer threshold per group on the input (the vote count, or a hard
 * vote), flag iff input ≥ t_g, chosen by exhaustive search to minimise the objective subject to the
 * constraint within ε. No randomness, so a decision never depends on a record's id, and monotone by
 * construction. Never flagging anyone (t_g past the top for every group) sets every rate to 0, so some
 * threshold vector always meets any ε: the search cannot come back empty.
 */
import { usageError } from '../util/errors.js';
import { constraintGap, expectedLoss, lossWeights, type Counts, type LpSpec } from './lp.js';

/** Threshold vectors searched at most; (B + 1)^(constrained groups) beyond it is refused, not sampled. */
export const THRESHOLD_SEARCH_CAP = 2_000_000;

export interface ThresholdPredictor {
  /** t[g] in 0..B: flag iff input ≥ t[g] (0: always, B: never). */
  t: number[];
  /** The same as a table: p[g][b] = 1 if b ≥ t[g] else 0. */
  p: number[][];
  error: number;
  loss: number;
  /** The constraint's value among the constrained groups (≤ ε). */
  gap: number;
  /** Threshold vectors tried. */
  searched: number;
}

const tableFor = (t: number[], B: number) => t.map((tg) => Array.from({ length: B }, (_, b) => (b >= tg ? 1 : 0)));

export function searchThresholds(counts: Counts, spec: LpSpec): ThresholdPredictor {
  const G = counts.length;
  const B = counts[0]!.length;
  const constrained = Array.from({ length: G }, (_, g) => spec.constrained?.[g] ?? true);
  const free = constrained.map((c) => !c);
  // The objective is a sum over groups, so a group the constraint does not hold takes its own best
  // threshold (the lowest one among equals, to be deterministic), whatever the others do.
  // The weights are the whole table's (balanced accuracy divides by all positives and negatives).
  const w = lossWeights(counts, spec);
  const alone = (g: number) => {
    let best = 0, bestLoss = Infinity;
    for (let t = 0; t <= B; t++) {
      const l = counts[g]!.reduce((s, [n0, n1], b) => s + (b >= t ? w.fp * n0 : w.fn * n1), 0);
      if (l < bestLoss - 1e-15) (best = t), (bestLoss = l);
    }
    return best;
  };
  const t = counts.map((_, g) => (free[g] ? alone(g) : 0));
  const members = constrained.flatMap((c, g) => (c ? [g] : []));
  const combos = (B + 1) ** members.length;
  if (combos > THRESHOLD_SEARCH_CAP)
    throw usageError(`--decision threshold would search ${combos} threshold vectors for ${members.length} constrained groups (cap ${THRESHOLD_SEARCH_CAP}); use --decision randomized, fewer groups, or a larger --min-group`);
  let best: number[] | null = null;
  let bestLoss = Infinity;
  for (let i = 0; i < combos; i++) {
    let code = i;
    for (const g of members) {
      t[g] = code % (B + 1);
      code = Math.floor(code / (B + 1));
    }
    const p = tableFor(t, B);
    if (constraintGap(counts, p, spec) > spec.tolerance + 1e-12) continue;
    const l = expectedLoss(counts, p, spec);
    if (l < bestLoss - 1e-15) (best = [...t]), (bestLoss = l);
  }
  const chosen = best!; // never null: the all-never vector has every rate 0 (see the file comment)
  const p = tableFor(chosen, B);
  const total = counts.flat().reduce((s, [n0, n1]) => s + n0 + n1, 0);
  const errors = counts.reduce((s, row, g) => s + row.reduce((e, [n0, n1], b) => e + (p[g]![b]! ? n0 : n1), 0), 0);
  return { t: chosen, p, error: total ? errors / total : 0, loss: expectedLoss(counts, p, spec), gap: constraintGap(counts, p, spec), searched: combos };
}

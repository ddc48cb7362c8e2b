/**
 * The two decisions every part of sisa makes the same way: whether one model's probability is a positive
 * vote, and whether k positive votes out of S models make the ensemble's label positive. predict, evaluate,
 * report and the fairness post-processors all call these, so their notion of a vote cannot drift apart.
 * Ties go to the positive class in both: p = 0.5 is a positive vote and k = S/2 (even S) is a majority.
 */

/** 1 when probability p is a positive vote (p ≥ 0.5; NaN is not), else 0. */
export function vote(p: number): 0 | 1 {
  return p >= 0.5 ? 1 : 0;
}

/** 1 when k positive votes out of S models make a positive label (2k ≥ S: an even split counts as positive). */
export function majority(k: number, S: number): 0 | 1 {
  return 2 * k >= S ? 1 : 0;
}

/** The fewest positive votes out of S that make a majority: the smallest k with majority(k, S) = 1. */
export function majorityThreshold(S: number): number {
  return Math.ceil(S / 2);
}

/**
 * The Hardt–Price–Srebro derived predictor as a linear program, solved by HiGHS (WebAssembly).
 *
 * Input: for each group g and each value b of what the predictor may look at (a hard prediction, or
 * the number of positive votes), the number of calibration rows with label 0 and label 1. Output:
 * p[g][b] = probability of predicting positive. The LP minimises the expected number of errors,
 * Σ p·n0 + (1 − p)·n1, subject to |TPR_g − TPR_h| ≤ ε and |FPR_g − FPR_h| ≤ ε between the groups and
 * to monotonicity: p[g][b] ≤ p[g][b + 1].
 */
import * as highsModule from 'highs';
import { SisaError } from '../util/errors.js';

export type Counts = [number, number][][]; // counts[g][b] = [negatives, positives]

interface Solver {
  solve(problem: string, options?: Record<string, number | string | boolean>): { Status: string; Columns: Record<string, { Primal: number }> };
}
// The package's ESM build default-exports the loader; its type declarations describe it as CommonJS.
const highsLoader = ((highsModule as { default?: unknown }).default ?? highsModule) as () => Promise<Solver>;
let solver: Promise<Solver> | null = null;
function getSolver(): Promise<Solver> {
  solver ??= highsLoader();
  return solver;
}

const num = (x: number) => {
  if (!Number.isFinite(x)) throw new Error(`non-finite LP coefficient ${x}`);
  return x.toPrecision(17).replace(/\.?0+(e|$)/, '$1');
};

function linear(terms: [number, string][]): string {
  const parts = terms.filter(([c]) => c !== 0).map(([c, v]) => `${c < 0 ? '-' : '+'} ${num(Math.abs(c))} ${v}`);
  return parts.length ? parts.join(' ') : '+ 0 p_0_0';
}

export interface DerivedPredictor {
  /** p[g][b]: probability of predicting positive for group g and input value b. */
  p: number[][];
  /** Expected error rate on the fitting data. */
  error: number;
  /** Set when the tie-break among optimal solutions failed: says so, and that the first optimum is used. */
  tieBreak?: string;
}

export async function solveDerivedPredictor(counts: Counts, tolerance: number): Promise<DerivedPredictor> {
  if (!(tolerance >= 0 && tolerance <= 1)) throw new SisaError('USAGE', `--eo-tolerance must be in [0, 1], got ${tolerance}`);
  const G = counts.length;
  const B = counts[0]!.length;
  const v = (g: number, b: number) => `p_${g}_${b}`;
  const total = counts.flat().reduce((s, [n0, n1]) => s + n0 + n1, 0);
  const objective: [number, string][] = [];
  for (let g = 0; g < G; g++) for (let b = 0; b < B; b++) objective.push([(counts[g]![b]![0] - counts[g]![b]![1]) / total, v(g, b)]);
  // Rate of group g as a linear expression: Σ_b p[g][b] · n[g][b][label] / N[g][label].
  const rate = (g: number, label: 0 | 1, sign: number): [number, string][] => {
    const N = counts[g]!.reduce((s, c) => s + c[label], 0);
    return N === 0 ? [] : counts[g]!.map((c, b) => [(sign * c[label]) / N, v(g, b)] as [number, string]);
  };
  const constraints: string[] = [];
  for (let g = 1; g < G; g++) {
    for (const label of [1, 0] as const) {
      const a = rate(0, label, 1);
      const b = rate(g, label, -1);
      if (a.length === 0 || b.length === 0) continue; // a rate undefined in a group constrains nothing
      const expr = linear([...a, ...b]);
      const name = `${label ? 'tpr' : 'fpr'}_${g}`;
      constraints.push(` ${name}_hi: ${expr} <= ${num(tolerance)}`, ` ${name}_lo: ${expr} >= ${num(-tolerance)}`);
    }
  }
  // Monotone by construction: more toxic evidence (a higher vote count, a positive hard vote) is never
  // flagged less often. A hard constraint of the one LP, so the optimum is the best monotone predictor;
  // the LP stays feasible, since a constant predictor is monotone and has equal rates in every group.
  for (let g = 0; g < G; g++) for (let b = 0; b + 1 < B; b++) constraints.push(` mono_${g}_${b}: ${v(g, b)} - ${v(g, b + 1)} <= 0`);
  const bounds: string[] = [];
  for (let g = 0; g < G; g++) for (let b = 0; b < B; b++) bounds.push(` 0 <= ${v(g, b)} <= 1`);
  if (total === 0) return { p: Array.from({ length: G }, () => new Array<number>(B).fill(0)), error: 0 };
  const solve = (objectiveLine: string, extra: string[]) => {
    const lp = ['Minimize', ` obj: ${objectiveLine}`, 'Subject To', ...(constraints.length + extra.length ? [...constraints, ...extra] : [' trivial: p_0_0 >= 0']), 'Bounds', ...bounds, 'End'].join('\n');
    // Tighter than HiGHS's default 1e-7, so the fitted rates meet ε (and the tie-break's keep_optimal) to 1e-9.
    return getSolver().then((solver) => solver.solve(lp, { primal_feasibility_tolerance: 1e-10, dual_feasibility_tolerance: 1e-10 }));
  };
  // HiGHS meets constraints to its feasibility tolerance (1e-7), so a solution may step down by 1e-9 where
  // the LP says it may not. Values that close to 0 or 1 are snapped to them (a decision drawn against
  // 0.9999999984 is not meant to be random), then a running maximum makes each row exactly monotone; both
  // move p by no more than the solver's own tolerance.
  const read = (cols: Record<string, { Primal: number }>) =>
    Array.from({ length: G }, (_, g) => {
      let floor = 0;
      return Array.from({ length: B }, (_, b) => {
        const x = cols[v(g, b)]?.Primal ?? 0;
        floor = Math.max(floor, x < 1e-7 ? 0 : x > 1 - 1e-7 ? 1 : x);
        return floor;
      });
    });
  const first = await solve(linear(objective), []);
  if (first.Status !== 'Optimal') throw new SisaError('TRAIN', `fairness LP not solved: ${first.Status}`);
  let p = read(first.Columns);
  let tieBreak: string | undefined;
  if (B > 2 || G > 1) {
    // Many predictors reach the optimum (the error depends only on the rates each group reaches), and the
    // solver returns whichever vertex it meets first: on the demo corpus one that flags 9% of comments no
    // model calls toxic and only 73% of those all models do. Second stage, a tie-breaker only: keep the
    // optimum and push p towards 0 at low evidence and 1 at high, the extremes first (weights doubling
    // towards both ends): a comment every model calls toxic is flagged, and one none does is not,
    // whenever some optimal predictor does so.
    const best = objectiveValue(objective, p, B);
    const push: [number, string][] = [];
    for (let g = 0; g < G; g++)
      for (let b = 0; b < B; b++) {
        const m = B - 1 - 2 * b;
        push.push([Math.sign(m) * 2 ** Math.abs(m), v(g, b)]);
      }
    const second = await solve(linear(push), [` keep_optimal: ${linear(objective)} <= ${num(best + 1e-9)}`]);
    if (second.Status === 'Optimal') p = read(second.Columns);
    else tieBreak = `tie-break among optimal solutions not solved (${second.Status}); the first optimal solution found is used`;
  }
  const positives = counts.flat().reduce((s, c) => s + c[1], 0);
  return { p, error: positives / total + objectiveValue(objective, p, B), ...(tieBreak ? { tieBreak } : {}) };
}

function objectiveValue(objective: [number, string][], p: number[][], B: number): number {
  return objective.reduce((s, [c], i) => s + c * p[Math.floor(i / B)]![i % B]!, 0);
}

/** Counts of (negatives, positives) per group and input value. */
export function tally(y: ArrayLike<number>, group: ArrayLike<number>, input: ArrayLike<number>, bins: number): Counts {
  const counts: Counts = [0, 1].map(() => Array.from({ length: bins }, () => [0, 0] as [number, number]));
  for (let i = 0; i < y.length; i++) counts[group[i] === 1 ? 1 : 0]![input[i]!]![y[i] === 1 ? 1 : 0] += 1;
  return counts;
}

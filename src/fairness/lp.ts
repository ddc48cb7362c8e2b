/**
 * The Hardt–Price–Srebro derived predictor as a linear program, solved by HiGHS (WebAssembly).
 *
 * Input: for each group g and each value b of what the predictor may look at (a hard prediction, or
 * the number of positive votes), the number of calibration rows with label 0 and label 1. Output:
 * p[g][b] = probability of predicting positive. The LP minimises the expected number of errors,
 * Σ p·n0 + (1 − p)·n1, subject to |TPR_g − TPR_h| ≤ ε and |FPR_g − FPR_h| ≤ ε between the groups.
 */
import * as highsModule from 'highs';
import { SisaError } from '../util/errors.js';

export type Counts = [number, number][][]; // counts[g][b] = [negatives, positives]

interface Solver {
  solve(problem: string): { Status: string; Columns: Record<string, { Primal: number }> };
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
  const bounds: string[] = [];
  for (let g = 0; g < G; g++) for (let b = 0; b < B; b++) bounds.push(` 0 <= ${v(g, b)} <= 1`);
  const solve = async (objectiveLine: string, extra: string[], extraBounds: string[]) => {
    const lp = ['Minimize', ` obj: ${objectiveLine}`, 'Subject To', ...(constraints.length || extra.length ? [...constraints, ...extra] : [' trivial: p_0_0 >= 0']), 'Bounds', ...bounds, ...extraBounds, 'End'].join('\n');
    const result = (await getSolver()).solve(lp);
    if (result.Status !== 'Optimal') throw new SisaError('TRAIN', `fairness LP not solved: ${result.Status}`);
    return result.Columns;
  };
  const first = await solve(linear(objective), [], []);
  const read = (cols: Record<string, { Primal: number }>) =>
    Array.from({ length: G }, (_, g) => Array.from({ length: B }, (_, b) => Math.min(1, Math.max(0, cols[v(g, b)]?.Primal ?? 0))));
  let p = read(first);
  const best = objectiveValue(objective, p, B);
  if (B > 2 || G > 1) {
    // Many solutions reach the optimal error (within a group it depends only on the rates achieved), and
    // a vertex may be perverse: an input the models call more toxic flagged less often. Second stage:
    // keep the error optimal and minimise the total decrease of p along increasing input values.
    const viol: string[] = [];
    const extra: string[] = [];
    for (let g = 0; g < G; g++)
      for (let b = 0; b + 1 < B; b++) {
        const d = `d_${g}_${b}`;
        viol.push(d);
        extra.push(` mono_${g}_${b}: ${v(g, b)} - ${v(g, b + 1)} - ${d} <= 0`);
      }
    extra.push(` keep_optimal: ${linear(objective)} <= ${num(best + 1e-9)}`);
    try {
      p = read(await solve(viol.map((d) => `+ 1 ${d}`).join(' '), extra, viol.map((d) => ` 0 <= ${d} <= 1`)));
    } catch {
      // keep the first-stage solution: it is optimal, only less tidy
    }
  }
  const positives = counts.flat().reduce((s, c) => s + c[1], 0);
  return { p, error: positives / total + objectiveValue(objective, p, B) };
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

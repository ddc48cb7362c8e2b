/**
 * The Hardt–Price–Srebro derived predictor as a linear program, solved by HiGHS (WebAssembly).
 *
 * Input: for each group g and each value b of what the predictor may look at (a hard prediction, or
 * the number of positive votes), the number of calibration rows with label 0 and label 1. Output:
 * p[g][b] = probability of predicting positive. The LP minimises the user's objective (errors, balanced
 * error, or the cost of false negatives and false positives), subject to, between EVERY pair of
 * constrained groups, max_g rate − min_g rate ≤ ε for each rate the constraint names (TPR and FPR for
 * equalized odds, TPR for equal opportunity, FPR for FPR parity, selection rate for demographic
 * parity), and to monotonicity: p[g][b] ≤ p[g][b + 1]. The objective is linear in p and so are the
 * rates, so the optimum is the best monotone predictor that sees only the input and the group.
 */
import { SisaError, usageError } from '../util/errors.js';

export type Counts = [number, number][][]; // counts[g][b] = [negatives, positives]

export const FAIR_CONSTRAINTS = ['equalized-odds', 'equal-opportunity', 'fpr-parity', 'demographic-parity'] as const;
export type FairConstraint = (typeof FAIR_CONSTRAINTS)[number];
export const FAIR_OBJECTIVES = ['accuracy', 'balanced-accuracy', 'cost'] as const;
export type FairObjective = (typeof FAIR_OBJECTIVES)[number];

/** What the post-processor is held to and what it optimises. */
export interface LpSpec {
  /** Allowed max − min of each constrained rate between groups, in [0, 1]. */
  tolerance: number;
  /** Which rates must be equal between groups (default equalized-odds: TPR and FPR). */
  constraint?: FairConstraint;
  /** What to minimise (default accuracy: the expected error rate). */
  objective?: FairObjective;
  /** objective cost: the price of a missed toxic row and of a wrongly flagged clean one, both > 0. */
  fnCost?: number;
  fpCost?: number;
  /** Per group: whether the constraint applies to it (default every group). An unconstrained group's p is fitted for the objective only. */
  constrained?: readonly boolean[];
}

interface Solver {
  solve(problem: string, options?: Record<string, number | string | boolean>): { Status: string; Columns: Record<string, { Primal: number }> };
}
let solver: Promise<Solver> | null = null;
/** The HiGHS solver, loaded on the first LP: a command that only applies fitted tables never pays for it. */
function getSolver(): Promise<Solver> {
  solver ??= import('highs').then((highsModule) => {
    // The package's ESM build default-exports the loader; its type declarations describe it as CommonJS.
    const highsLoader = ((highsModule as { default?: unknown }).default ?? highsModule) as () => Promise<Solver>;
    return highsLoader();
  });
  return solver;
}

/** A number for the LP text: 17 significant digits, trailing zeros of the mantissa dropped (never the exponent's: 1e-10 stays e-10). */
const num = (x: number) => {
  if (!Number.isFinite(x)) throw new Error(`non-finite LP coefficient ${x}`);
  const [mantissa, exponent] = x.toPrecision(17).split('e');
  const m = mantissa!.includes('.') ? mantissa!.replace(/\.?0+$/, '') : mantissa!;
  return exponent === undefined ? m : `${m}e${exponent}`;
};

function linear(terms: [number, string][]): string {
  const parts = terms.filter(([c]) => c !== 0).map(([c, v]) => `${c < 0 ? '-' : '+'} ${num(Math.abs(c))} ${v}`);
  return parts.length ? parts.join(' ') : '+ 0 p_0_0';
}

export type RateKind = 'tpr' | 'fpr' | 'selection';

/** The rates a constraint equalises between groups. */
export function constraintRates(constraint: FairConstraint): RateKind[] {
  return constraint === 'equalized-odds' ? ['tpr', 'fpr'] : constraint === 'equal-opportunity' ? ['tpr'] : constraint === 'fpr-parity' ? ['fpr'] : ['selection'];
}

/** The rows of a cell a rate counts: positives for TPR, negatives for FPR, all rows for the selection rate. */
const rateRows = (kind: RateKind, [n0, n1]: [number, number]) => (kind === 'tpr' ? n1 : kind === 'fpr' ? n0 : n0 + n1);

/** Checks a spec's values; one-line usage errors naming the flag. */
export function checkSpec(spec: LpSpec): void {
  const { tolerance, constraint = 'equalized-odds', objective = 'accuracy', fnCost, fpCost } = spec;
  if (!(tolerance >= 0 && tolerance <= 1)) throw usageError(`--eo-tolerance must be in [0, 1], got ${tolerance}`);
  if (!FAIR_CONSTRAINTS.includes(constraint)) throw usageError(`--constraint must be one of ${FAIR_CONSTRAINTS.join(', ')}, got '${constraint}'`);
  if (!FAIR_OBJECTIVES.includes(objective)) throw usageError(`--objective must be one of ${FAIR_OBJECTIVES.join(', ')}, got '${objective}'`);
  if (objective === 'cost') {
    if (fnCost === undefined || fpCost === undefined) throw usageError('--objective cost needs both --fn-cost and --fp-cost');
    if (!(fnCost > 0 && Number.isFinite(fnCost))) throw usageError(`--fn-cost must be a number > 0, got ${fnCost}`);
    if (!(fpCost > 0 && Number.isFinite(fpCost))) throw usageError(`--fp-cost must be a number > 0, got ${fpCost}`);
  } else if (fnCost !== undefined || fpCost !== undefined) throw usageError(`--fn-cost and --fp-cost apply only to --objective cost (got --objective ${objective})`);
}

/**
 * The loss as weights per row: loss(p) = Σ_cells fp·p·n0 + fn·(1 − p)·n1. accuracy: the error rate;
 * balanced-accuracy: (FPR + FNR) / 2 over all groups pooled (1 − balanced accuracy); cost: the mean cost
 * per row.
 */
export function lossWeights(counts: Counts, spec: LpSpec): { fp: number; fn: number } {
  const cells = counts.flat();
  const N0 = cells.reduce((s, c) => s + c[0], 0);
  const N1 = cells.reduce((s, c) => s + c[1], 0);
  const total = N0 + N1;
  if (total === 0) return { fp: 0, fn: 0 };
  const objective = spec.objective ?? 'accuracy';
  if (objective === 'balanced-accuracy') return { fp: N0 ? 1 / (2 * N0) : 0, fn: N1 ? 1 / (2 * N1) : 0 };
  if (objective === 'cost') return { fp: spec.fpCost! / total, fn: spec.fnCost! / total };
  return { fp: 1 / total, fn: 1 / total };
}

/** The objective's value for a table p (lower is better). */
export function expectedLoss(counts: Counts, p: number[][], spec: LpSpec): number {
  const w = lossWeights(counts, spec);
  return counts.reduce((s, row, g) => s + row.reduce((t, [n0, n1], b) => t + w.fp * p[g]![b]! * n0 + w.fn * (1 - p[g]![b]!) * n1, 0), 0);
}

/** Rate of each group for a table p (null where the group has no row the rate counts). */
export function groupRatesOf(counts: Counts, p: number[][], kind: RateKind): (number | null)[] {
  return counts.map((row, g) => {
    const N = row.reduce((s, c) => s + rateRows(kind, c), 0);
    return N === 0 ? null : row.reduce((s, c, b) => s + p[g]![b]! * rateRows(kind, c), 0) / N;
  });
}

/** The constraint's value: the largest max − min, over its rates, among the constrained groups where the rate is defined. */
export function constraintGap(counts: Counts, p: number[][], spec: LpSpec): number {
  let gap = 0;
  for (const kind of constraintRates(spec.constraint ?? 'equalized-odds')) {
    const rates = groupRatesOf(counts, p, kind).filter((r, g): r is number => r !== null && (spec.constrained?.[g] ?? true));
    if (rates.length > 1) gap = Math.max(gap, Math.max(...rates) - Math.min(...rates));
  }
  return gap;
}

export interface DerivedPredictor {
  /** p[g][b]: probability of predicting positive for group g and input value b. */
  p: number[][];
  /** Expected error rate on the fitting data. */
  error: number;
  /** The objective's value on the fitting data (for accuracy, the error rate). */
  loss: number;
  /** The constraint's value reached on the fitting data (≤ ε up to solver precision). */
  gap: number;
  /** Set when the tie-break among optimal solutions failed: says so, and that the first optimum is used. */
  tieBreak?: string;
}

export async function solveDerivedPredictor(counts: Counts, specOrTolerance: number | LpSpec): Promise<DerivedPredictor> {
  const spec: LpSpec = typeof specOrTolerance === 'number' ? { tolerance: specOrTolerance } : specOrTolerance;
  checkSpec(spec);
  const G = counts.length;
  const B = counts[0]!.length;
  const v = (g: number, b: number) => `p_${g}_${b}`;
  const total = counts.flat().reduce((s, [n0, n1]) => s + n0 + n1, 0);
  const w = lossWeights(counts, spec);
  // loss = Σ fn·n1 (a constant) + Σ p·(fp·n0 − fn·n1): only the second part is the LP's objective.
  const objective: [number, string][] = [];
  for (let g = 0; g < G; g++) for (let b = 0; b < B; b++) objective.push([w.fp * counts[g]![b]![0] - w.fn * counts[g]![b]![1], v(g, b)]);
  const constraints: string[] = [];
  const extraBounds: string[] = [];
  // max_g rate − min_g rate ≤ ε over every pair at once: two auxiliary variables per rate bracket every
  // constrained group's rate, lo ≤ rate_g ≤ hi, and hi − lo ≤ ε. A rate undefined in a group (no row it
  // counts) constrains nothing there.
  for (const kind of constraintRates(spec.constraint ?? 'equalized-odds')) {
    const members: number[] = [];
    for (let g = 0; g < G; g++) {
      const N = counts[g]!.reduce((s, c) => s + rateRows(kind, c), 0);
      if (N > 0 && (spec.constrained?.[g] ?? true)) members.push(g);
    }
    if (members.length < 2) continue;
    for (const g of members) {
      const N = counts[g]!.reduce((s, c) => s + rateRows(kind, c), 0);
      const expr = linear(counts[g]!.map((c, b) => [rateRows(kind, c) / N, v(g, b)] as [number, string]));
      constraints.push(` ${kind}_${g}_hi: ${expr} - hi_${kind} <= 0`, ` ${kind}_${g}_lo: ${expr} - lo_${kind} >= 0`);
    }
    constraints.push(` ${kind}_gap: + 1 hi_${kind} - 1 lo_${kind} <= ${num(spec.tolerance)}`);
    extraBounds.push(` 0 <= hi_${kind} <= 1`, ` 0 <= lo_${kind} <= 1`);
  }
  // Monotone by construction: more toxic evidence (a higher vote count, a positive hard vote) is never
  // flagged less often. A hard constraint of the one LP, so the optimum is the best monotone predictor;
  // the LP stays feasible, since a constant predictor is monotone and has equal rates in every group.
  for (let g = 0; g < G; g++) for (let b = 0; b + 1 < B; b++) constraints.push(` mono_${g}_${b}: ${v(g, b)} - ${v(g, b + 1)} <= 0`);
  const bounds: string[] = [];
  for (let g = 0; g < G; g++) for (let b = 0; b < B; b++) bounds.push(` 0 <= ${v(g, b)} <= 1`);
  bounds.push(...extraBounds);
  if (total === 0) {
    const p = Array.from({ length: G }, () => new Array<number>(B).fill(0));
    return { p, error: 0, loss: 0, gap: 0 };
  }
  const solve = (objectiveLine: string, extra: string[]) => {
    const lp = ['Minimize', ` obj: ${objectiveLine}`, 'Subject To', ...(constraints.length + extra.length ? [...constraints, ...extra] : [' trivial: p_0_0 >= 0']), 'Bounds', ...bounds, 'End'].join('\n');
    // Tighter than HiGHS's default 1e-7, so the fitted rates meet ε (and the tie-break's keep_optimal) to 1e-9.
    return getSolver().then((solver) => solver.solve(lp, { primal_feasibility_tolerance: 1e-10, dual_feasibility_tolerance: 1e-10 }));
  };
  // HiGHS meets constraints to its feasibility tolerance, so a solution may step down by 1e-9 where the
  // LP says it may not: a running maximum makes each row exactly monotone. Values within ε of 0 or 1 are
  // also snapped to them (a decision drawn against 0.9999999984 is not meant to be random), with the
  // widest ε of 1e-6, 1e-7, 1e-9 that keeps the constraint: snapping one group's 1 − 1e-7 to 1 and not
  // another's opens a gap of 1e-7 at a tolerance of 0 (found by the property test), and the tie-break
  // stage may leave every p that far below 1. Both move p by no more than 1e-6.
  const read = (cols: Record<string, { Primal: number }>) => {
    const table = (snap: number) =>
      Array.from({ length: G }, (_, g) => {
        let floor = 0;
        return Array.from({ length: B }, (_, b) => {
          const x = Math.min(1, Math.max(0, cols[v(g, b)]?.Primal ?? 0));
          floor = Math.max(floor, x < snap ? 0 : x > 1 - snap ? 1 : x);
          return floor;
        });
      });
    const exact = table(0);
    const allowed = Math.max(spec.tolerance, constraintGap(counts, exact, spec));
    for (const snap of [1e-6, 1e-7, 1e-9]) {
      const snapped = table(snap);
      if (constraintGap(counts, snapped, spec) <= allowed) return snapped;
    }
    return exact;
  };
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
    const second = await solve(linear(push), [` keep_optimal: ${linear(objective)} <= ${num(best + 1e-9 * (1 + Math.abs(best)))}`]);
    if (second.Status === 'Optimal') p = read(second.Columns);
    else tieBreak = `tie-break among optimal solutions not solved (${second.Status}); the first optimal solution found is used`;
  }
  const errors = counts.reduce((s, row, g) => s + row.reduce((t, [n0, n1], b) => t + p[g]![b]! * n0 + (1 - p[g]![b]!) * n1, 0), 0);
  return { p, error: errors / total, loss: expectedLoss(counts, p, spec), gap: constraintGap(counts, p, spec), ...(tieBreak ? { tieBreak } : {}) };
}

function objectiveValue(objective: [number, string][], p: number[][], B: number): number {
  return objective.reduce((s, [c], i) => s + c * p[Math.floor(i / B)]![i % B]!, 0);
}

/** Counts of (negatives, positives) per group (codes 0..groups − 1) and input value. */
export function tally(y: ArrayLike<number>, group: ArrayLike<number>, input: ArrayLike<number>, bins: number, groups = 2): Counts {
  const counts: Counts = Array.from({ length: groups }, () => Array.from({ length: bins }, () => [0, 0] as [number, number]));
  for (let i = 0; i < y.length; i++) {
    const row = counts[group[i]!];
    if (!row) throw new SisaError('TRAIN', `group code ${group[i]} of row ${i} is outside 0..${groups - 1}`);
    row[input[i]!]![y[i] === 1 ? 1 : 0] += 1;
  }
  return counts;
}

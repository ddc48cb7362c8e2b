/**
 * Fitting, storing and refitting the post-processors. `manifests/fairness.json` records the fitted
 * tables with the model versions and hashes they were fitted on; when the models change (train,
 * delete) the fit is stale, and is refitted automatically when a calibration split exists.
 * `manifests/fairness-history.json` keeps one snapshot of test-split fairness per model revision, so a
 * report can show how fairness moved with each deletion batch (old models themselves are deleted).
 */
import { pullReferenced } from '../state/remote.js';
import path from 'node:path';
import { z } from 'zod';
import { readRowsFile, type Rows } from '../data/shardFile.js';
import { loadEnsemble, memberProbabilities, aggregate, type Ensemble } from '../models/ensemble.js';
import { canFitFairness, loadState, requireTrained, type State } from '../state/manifest.js';
import { workspace, type Workspace } from '../state/workspace.js';
import { errorMessage, stateError, usageError } from '../util/errors.js';
import { fairnessMetrics } from '../fairness/metrics.js';
import { applyMethod, eligibility, fitMethod, labelCounts, FAIR_DECISIONS, FAIR_METHODS, type FairDecision, type FairMethod, type FitSpec, type GroupCount } from '../fairness/postprocess.js';
import { chooseTolerance, crossFit } from '../fairness/crossfit.js';
import { checkSpec, FAIR_CONSTRAINTS, FAIR_OBJECTIVES, type FairConstraint, type FairObjective } from '../fairness/lp.js';
import { ANY } from '../fairness/terms.js';
import { checkOptions, rule, type OptionSpec } from './options.js';
import { readLog } from '../state/deletionLog.js';
import { runOperation } from '../state/operation.js';
import { assertLeaseHeld } from '../state/lock.js';
import { crashPoint } from '../util/faults.js';

const FittedSchema = z.object({
  method: z.enum(FAIR_METHODS),
  tables: z.array(z.array(z.array(z.number()))),
  lpError: z.number(),
  notes: z.array(z.string()).optional(),
  calibrationGap: z.number().optional(),
});
const GroupSchema = z.object({ name: z.string(), negatives: z.number().int(), positives: z.number().int(), constrained: z.boolean(), reason: z.string().optional() });
const CvSchema = z.object({
  folds: z.number().int(),
  seed: z.number().int(),
  rows: z.array(z.object({ method: z.enum(FAIR_METHODS), tolerance: z.number(), accuracy: z.number(), gap: z.number(), violation: z.number(), noise: z.number() })),
  /** Set when --eo-tolerance auto chose the fit's tolerance from these rows. */
  chosenTolerance: z.number().optional(),
});
const FitSchema = z.object({
  attribute: z.string(),
  tolerance: z.number(),
  // Fits written before these were recorded were equalized odds for accuracy, every group constrained.
  constraint: z.enum(FAIR_CONSTRAINTS).default('equalized-odds'),
  objective: z.enum(FAIR_OBJECTIVES).default('accuracy'),
  decision: z.enum(FAIR_DECISIONS).default('randomized'),
  fnCost: z.number().optional(),
  fpCost: z.number().optional(),
  /** Absent in older fits (no group was left out); a refit of one uses the current default. */
  minGroup: z.number().int().optional(),
  /** Calibration counts per group code (absent in older fits). */
  groups: z.array(GroupSchema).optional(),
  /** Cross-fitting on the calibration split (--cv K), when asked for. */
  cv: CvSchema.optional(),
  seed: z.number().int(),
  fittedAt: z.string(),
  models: z.array(z.object({ shard: z.number().int(), version: z.number().int(), modelHash: z.string() })),
  calibrationRows: z.number().int(),
  /**
   * The workspace revision and calibration split the fit was made on. Absent in fits written before they
   * were recorded: such a fit counts as stale, since it cannot show which calibration rows it saw.
   */
  revision: z.number().int().optional(),
  calibrationSha256: z.string().optional(),
  methods: z.array(FittedSchema),
});
export type FairnessFit = z.infer<typeof FitSchema>;

const HistorySchema = z.array(
  z.object({
    revision: z.number().int(),
    deletions: z.number().int(),
    deletedRecords: z.number().int(),
    time: z.string(),
    attribute: z.string(),
    methods: z.array(z.object({ name: z.string(), accuracy: z.number(), eoDifference: z.number() })),
  }),
);
export type FairnessHistory = z.infer<typeof HistorySchema>;

/** Documents in the workspace's metadata store (manifests/). */
const FIT_DOC = 'fairness.json';
const HISTORY_DOC = 'fairness-history.json';

export async function loadFit(ws: Workspace): Promise<FairnessFit | null> {
  const text = await ws.meta.read(FIT_DOC).catch(() => null);
  if (text === null) return null;
  try {
    return FitSchema.parse(JSON.parse(text));
  } catch (err) {
    throw stateError(`${ws.fairnessPath}: damaged fairness manifest (${errorMessage(err)}); run 'sisa fairness fit'`);
  }
}

/**
 * Whether a stored fit is for this state. The models alone are not enough: a deletion of calibration
 * rows leaves every model as it was, yet a fit made before it was computed with the deleted record. So
 * the fit must name the state revision and calibration split it was made on.
 */
export function isFittedFor(fit: FairnessFit, state: State): boolean {
  if (fit.revision !== state.revision) return false;
  if (fit.calibrationSha256 !== state.heldout.calibration?.sha256) return false;
  if (fit.models.length !== state.models.length) return false;
  return fit.models.every((m, i) => state.models[i]?.version === m.version && state.models[i]?.modelHash === m.modelHash);
}

export function isStale(fit: FairnessFit, state: State): boolean {
  return !isFittedFor(fit, state);
}

/** One line for a stale fit: what it was made on, what changed, what to run. */
export function staleFitMessage(fit: FairnessFit): string {
  const on = fit.revision === undefined ? 'an unrecorded revision' : `revision ${fit.revision}`;
  return `the fairness post-processor was fitted on ${on} of this workspace, and the models or the calibration data have changed since; run 'sisa fairness fit'`;
}

export function attributeValues(state: State, rows: Rows, attribute: string): Uint8Array {
  const g = rows.groups[attribute];
  if (!g) {
    const known = state.config.groups.map((x) => x.name);
    throw usageError(
      known.length
        ? `unknown sensitive attribute '${attribute}' (this workspace has: ${known.join(', ')})`
        : "this workspace has no sensitive groups; ingest with --group-terms or --group-col",
    );
  }
  return g;
}

export async function heldoutRows(ws: Workspace, state: State, split: 'test' | 'calibration'): Promise<Rows> {
  const ref = split === 'test' ? state.heldout.test : state.heldout.calibration;
  if (!ref) throw stateError('this workspace has no calibration split; ingest with --calibration (e.g. 0.2) to fit fairness post-processing');
  await pullReferenced(ws, state, ['heldout']);
  return readRowsFile(path.join(ws.shardsDir, ref.file), ref.sha256);
}

export interface FitOptions {
  /** Workspace folder with trained models, a calibration split and sensitive groups. */
  workdir: string;
  /** Sensitive attribute: a group name given at ingest, or 'any' (default: in any group). */
  attribute?: string;
  /** Allowed max − min of each constrained rate between groups (default 0: the constraint exactly). */
  tolerance?: number;
  /** Rates held equal between groups (default equalized-odds; a refit keeps the stored fit's). */
  constraint?: FairConstraint;
  /** What the fit minimises (default accuracy); cost needs fnCost and fpCost. */
  objective?: FairObjective;
  /** Cost of a missed toxic row (objective cost). */
  fnCost?: number;
  /** Cost of a wrongly flagged clean row (objective cost). */
  fpCost?: number;
  /** Groups with fewer calibration positives or negatives than this are not constrained (default 30). */
  minGroup?: number;
  /** randomized (default): the LP optimum, drawn per record id; threshold: per-group vote thresholds, no randomness. */
  decision?: FairDecision;
  /** Cross-fit on the calibration split with this many folds (≥ 2) and record out-of-fold accuracy and gap per method and ε. */
  cv?: number;
  /** Choose the tolerance by cross-fitting (--eo-tolerance auto; folds from cv, default 5) instead of `tolerance`. */
  autoTolerance?: boolean;
  /** Wait for another sisa process holding the workspace instead of failing. */
  wait?: boolean;
}

const FIT_OPTIONS: OptionSpec<FitOptions> = {
  workdir: rule.req('string'),
  attribute: rule.opt('string'),
  tolerance: rule.opt('number'),
  constraint: rule.opt({ oneOf: FAIR_CONSTRAINTS }),
  objective: rule.opt({ oneOf: FAIR_OBJECTIVES }),
  fnCost: rule.opt('number'),
  fpCost: rule.opt('number'),
  minGroup: rule.opt('number'),
  decision: rule.opt({ oneOf: FAIR_DECISIONS }),
  cv: rule.opt('number'),
  autoTolerance: rule.opt('boolean'),
  wait: rule.opt('boolean'),
};

export const DEFAULT_MIN_GROUP = 30;

/** The choices a fit is made with; computeFit takes them, a refit carries them over from the stored fit. */
export interface FitChoices {
  attribute: string;
  /** The attribute's group names by code (default: a binary attribute's 'other' and itself). */
  groupNames?: readonly string[];
  tolerance: number;
  constraint?: FairConstraint;
  objective?: FairObjective;
  fnCost?: number;
  fpCost?: number;
  /** Default 0 here (every group constrained), so a report or library call without it fits as before. */
  minGroup?: number;
  decision?: FairDecision;
  /** Folds for cross-fitting (none when absent). */
  cv?: number;
  /** Pick the tolerance from the cross-fit (folds: cv, default 5). */
  autoTolerance?: boolean;
}

/**
 * The spec to fit with these choices on calibration rows (y, group codes): which groups --min-group leaves
 * out depends on the rows, so a report re-split must call this on each of its calibration parts.
 */
export function fitSpecFor(o: FitChoices, y: ArrayLike<number>, group: ArrayLike<number>): { spec: FitSpec; counts: GroupCount[] } {
  const constraint = o.constraint ?? 'equalized-odds';
  const names = o.groupNames ?? groupNames(o.attribute);
  const counts = eligibility(labelCounts(y, group, names.length), constraint, o.minGroup ?? 0);
  const spec: FitSpec = {
    tolerance: o.tolerance,
    constraint,
    objective: o.objective ?? 'accuracy',
    ...(o.objective === 'cost' ? { fnCost: o.fnCost, fpCost: o.fpCost } : {}),
    constrained: counts.map((c) => c.constrained),
    groups: names.length,
    decision: o.decision ?? 'randomized',
  };
  return { spec, counts };
}

/** The choices a stored fit was made with, for fitting the same way on other data (the report's re-splits). */
export function choicesOf(fit: FairnessFit): FitChoices {
  const { attribute, tolerance, constraint, objective, fnCost, fpCost, minGroup, decision } = fit;
  return { attribute, tolerance, constraint, objective, fnCost, fpCost, minGroup, decision, cv: fit.cv?.folds, autoTolerance: fit.cv?.chosenTolerance !== undefined, ...(fit.groups ? { groupNames: fit.groups.map((g) => g.name) } : {}) };
}

/**
 * Group names by code: a binary attribute's code 0 is everyone outside the group; a many-valued
 * attribute's (`--group-values`, `--overlap`) are its values, in the order the ingest met them.
 */
export function groupNames(attribute: string, state?: State): string[] {
  const spec = state?.config.groups.find((g) => g.name === attribute);
  return spec?.kind === 'values' ? [...spec.values] : ['other', attribute];
}

export async function fitFairness(o: FitOptions): Promise<FairnessFit> {
  checkOptions('fitFairness', o, FIT_OPTIONS);
  return runOperation(o.workdir, 'fairness-fit', { wait: o.wait }, () => fitFairnessLocked(o));
}

/**
 * Fits the post-processors for a state without storing anything: `sisa report` uses this for another
 * attribute or tolerance, so a report never changes what `predict --fair` does in production.
 */
export async function computeFit(ws: Workspace, state: State, o: FitChoices & { ensemble?: Ensemble }): Promise<FairnessFit> {
  requireTrained(state);
  const constraint = o.constraint ?? 'equalized-odds';
  const objective = o.objective ?? 'accuracy';
  const minGroup = o.minGroup ?? 0;
  if (!(Number.isInteger(minGroup) && minGroup >= 0)) throw usageError(`--min-group must be a whole number >= 0, got ${minGroup}`);
  checkSpec({ tolerance: o.tolerance, constraint, objective, fnCost: o.fnCost, fpCost: o.fpCost });
  const folds = o.cv ?? (o.autoTolerance ? 5 : undefined);
  if (folds !== undefined && !(Number.isInteger(folds) && folds >= 2)) throw usageError(`--cv must be a whole number of folds >= 2, got ${folds}`);
  const cal = await heldoutRows(ws, state, 'calibration');
  const group = attributeValues(state, cal, o.attribute);
  const names = groupNames(o.attribute, state);
  o = { ...o, groupNames: names };
  const ens = o.ensemble ?? (await loadEnsemble(ws, state));
  const probs = memberProbabilities(ens, { ...cal, n: cal.ids.length });
  let cv: FairnessFit['cv'];
  if (folds !== undefined) {
    const at = (tolerance: number, y: ArrayLike<number>, g: ArrayLike<number>) => fitSpecFor({ ...o, tolerance }, y, g).spec;
    const result = await crossFit({ probs, y: cal.labels, group, ids: cal.ids, groups: names.length, seed: state.config.seed }, folds, at);
    cv = o.autoTolerance ? { ...result, chosenTolerance: chooseTolerance(result) } : result;
  }
  const tolerance = cv?.chosenTolerance ?? o.tolerance;
  const { spec, counts } = fitSpecFor({ ...o, tolerance }, cal.labels, group);
  const decision = spec.decision!;
  const methods = [];
  for (const m of FAIR_METHODS) methods.push(await fitMethod(m, probs, cal.labels, group, spec));
  return {
    attribute: o.attribute,
    tolerance,
    constraint,
    objective,
    decision,
    ...(objective === 'cost' ? { fnCost: o.fnCost, fpCost: o.fpCost } : {}),
    minGroup,
    groups: counts.map((c, g) => ({ name: names[g]!, ...c })),
    ...(cv ? { cv } : {}),
    seed: state.config.seed,
    fittedAt: new Date().toISOString(),
    models: state.models.map((m) => ({ shard: m.shard, version: m.version, modelHash: m.modelHash })),
    calibrationRows: cal.ids.length,
    revision: state.revision,
    calibrationSha256: state.heldout.calibration?.sha256,
    methods,
  };
}

/** The fit itself, for callers that already hold the workspace (train and delete refit after commit). */
async function fitFairnessLocked(o: FitOptions): Promise<FairnessFit> {
  const ws = workspace(o.workdir);
  const state = await loadState(ws);
  requireTrained(state);
  const previous = await loadFit(ws).catch(() => null);
  const ens = await loadEnsemble(ws, state);
  // Choices not given carry over from the stored fit, so the refit after train or delete keeps them.
  const objective = o.objective ?? previous?.objective;
  // Costs carry over only with the objective: naming --objective again means naming its costs again.
  const keepCosts = o.objective === undefined;
  const fit = await computeFit(ws, state, {
    attribute: o.attribute ?? previous?.attribute ?? ANY,
    tolerance: o.tolerance ?? previous?.tolerance ?? 0,
    constraint: o.constraint ?? previous?.constraint,
    objective,
    fnCost: o.fnCost ?? (keepCosts && objective === 'cost' ? previous?.fnCost : undefined),
    fpCost: o.fpCost ?? (keepCosts && objective === 'cost' ? previous?.fpCost : undefined),
    minGroup: o.minGroup ?? previous?.minGroup ?? DEFAULT_MIN_GROUP,
    decision: o.decision ?? previous?.decision,
    // A refit cross-fits again only when the stored fit was cross-fitted (and re-chooses ε if it chose it).
    cv: o.cv ?? (o.tolerance === undefined || o.autoTolerance ? previous?.cv?.folds : undefined),
    autoTolerance: o.autoTolerance ?? (o.tolerance === undefined && previous?.cv?.chosenTolerance !== undefined),
    ensemble: ens,
  });
  crashPoint('fairness:before-write');
  await assertLeaseHeld(ws);
  await ws.meta.write(FIT_DOC, JSON.stringify(fit) + '\n');
  await recordHistory(ws, state, ens, fit);
  return fit;
}

/** Hard predictions of the plain ensemble (vote) or of a fitted method, for held-out or external rows. */
export function methodPredictions(fit: FairnessFit | null, method: 'sisa' | FairMethod, probs: readonly Float32Array[], rows: Rows, group: Uint8Array, seed: number): Uint8Array {
  if (method === 'sisa') return aggregate(probs, 'vote').label;
  const fitted = fit?.methods.find((m) => m.method === method);
  if (!fitted) throw stateError(`no fitted '${method}' post-processor; run 'sisa fairness fit'`);
  return applyMethod(fitted, probs, group, rows.ids, seed);
}

async function recordHistory(ws: Workspace, state: State, ens: Ensemble, fit: FairnessFit): Promise<void> {
  const test = await heldoutRows(ws, state, 'test');
  const group = attributeValues(state, test, fit.attribute);
  const probs = memberProbabilities(ens, { ...test, n: test.ids.length });
  const methods = (['sisa', ...FAIR_METHODS] as const).map((name) => {
    const m = fairnessMetrics(test.labels, methodPredictions(fit, name, probs, test, group, fit.seed), group);
    return { name, accuracy: m.overall.accuracy, eoDifference: m.eoDifference };
  });
  const history = await loadHistory(ws);
  const deletedRecords = (await readLog(ws, state)).reduce((s, e) => s + e.deleted.length, 0);
  const entry = { revision: state.revision, deletions: state.deletions, deletedRecords, time: new Date().toISOString(), attribute: fit.attribute, methods };
  const next = [...history.filter((h) => h.revision !== state.revision), entry];
  await ws.meta.write(HISTORY_DOC, JSON.stringify(next, null, 2) + '\n');
}

export async function loadHistory(ws: Workspace): Promise<FairnessHistory> {
  try {
    return HistorySchema.parse(JSON.parse((await ws.meta.read(HISTORY_DOC)) ?? '[]'));
  } catch {
    return [];
  }
}

/** After train or delete: refit when the workspace can (calibration split and groups), else do nothing. */
export async function refitIfPossible(workdir: string): Promise<FairnessFit | null> {
  const ws = workspace(workdir);
  const state = await loadState(ws);
  if (!canFitFairness(state)) return null;
  return fitFairnessLocked({ workdir });
}

/** Refits only when the stored fit no longer matches the models (or is missing); used by recover. */
export async function refitIfStale(workdir: string): Promise<{ refitted: boolean; error?: string }> {
  const ws = workspace(workdir);
  const state = await loadState(ws);
  const fit = await loadFit(ws).catch(() => null);
  if (fit && !isStale(fit, state)) return { refitted: false };
  return refitAfterChange(workdir);
}

/** Refits after a committed change; a failure here must not undo the change, so it is reported instead. */
export async function refitAfterChange(workdir: string): Promise<{ refitted: boolean; error?: string }> {
  try {
    return { refitted: (await refitIfPossible(workdir)) !== null };
  } catch (err) {
    return { refitted: false, error: `fairness post-processing not refitted (${errorMessage(err)}); run 'sisa fairness fit'` };
  }
}

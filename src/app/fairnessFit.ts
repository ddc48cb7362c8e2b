/**
 * Fitting, storing and refitting the post-processors. `manifests/fairness.json` records the fitted
 * tables with the model versions and hashes they were fitted on; when the models change (train,
 * delete) the fit is stale, and is refitted automatically when a calibration split exists.
 * `manifests/fairness-history.json` keeps one snapshot of test-split fairness per model revision, so a
 * report can show how fairness moved with each deletion batch (old models themselves are deleted).
 */
import { pullReferenced } from '../state/remote.js';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { readRowsFile, type Rows } from '../data/shardFile.js';
import { loadEnsemble, memberProbabilities, aggregate, type Ensemble } from '../models/ensemble.js';
import { loadState, requireTrained, type State } from '../state/manifest.js';
import { workspace, type Workspace } from '../state/workspace.js';
import { errorMessage, stateError, usageError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fsx.js';
import { fairnessMetrics } from '../fairness/metrics.js';
import { applyMethod, fitMethod, FAIR_METHODS, type FairMethod } from '../fairness/postprocess.js';
import { ANY } from '../fairness/terms.js';
import { checkOptions, rule, type OptionSpec } from './options.js';
import { readLog } from '../state/deletionLog.js';
import { runOperation } from '../state/operation.js';
import { assertLeaseHeld } from '../state/lock.js';
import { crashPoint } from '../util/faults.js';

const FittedSchema = z.object({ method: z.enum(FAIR_METHODS), tables: z.array(z.array(z.array(z.number()))), lpError: z.number(), notes: z.array(z.string()).optional() });
const FitSchema = z.object({
  attribute: z.string(),
  tolerance: z.number(),
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

const historyPath = (ws: Workspace) => path.join(ws.manifestsDir, 'fairness-history.json');

export async function loadFit(ws: Workspace): Promise<FairnessFit | null> {
  let text: string;
  try {
    text = await fsp.readFile(ws.fairnessPath, 'utf8');
  } catch {
    return null;
  }
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
  /** Allowed |ΔTPR| and |ΔFPR| between groups (default 0: equalized odds exactly). */
  tolerance?: number;
  /** Wait for another sisa process holding the workspace instead of failing. */
  wait?: boolean;
}

const FIT_OPTIONS: OptionSpec<FitOptions> = { workdir: rule.req('string'), attribute: rule.opt('string'), tolerance: rule.opt('number'), wait: rule.opt('boolean') };

export async function fitFairness(o: FitOptions): Promise<FairnessFit> {
  checkOptions('fitFairness', o, FIT_OPTIONS);
  return runOperation(o.workdir, 'fairness-fit', { wait: o.wait }, () => fitFairnessLocked(o));
}

/**
 * Fits the post-processors for a state without storing anything: `sisa report` uses this for another
 * attribute or tolerance, so a report never changes what `predict --fair` does in production.
 */
export async function computeFit(ws: Workspace, state: State, o: { attribute: string; tolerance: number; ensemble?: Ensemble }): Promise<FairnessFit> {
  requireTrained(state);
  const cal = await heldoutRows(ws, state, 'calibration');
  const group = attributeValues(state, cal, o.attribute);
  const ens = o.ensemble ?? (await loadEnsemble(ws, state));
  const probs = memberProbabilities(ens, { ...cal, n: cal.ids.length });
  const methods = [];
  for (const m of FAIR_METHODS) methods.push(await fitMethod(m, probs, cal.labels, group, o.tolerance));
  return {
    attribute: o.attribute,
    tolerance: o.tolerance,
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
  const fit = await computeFit(ws, state, { attribute: o.attribute ?? previous?.attribute ?? ANY, tolerance: o.tolerance ?? previous?.tolerance ?? 0, ensemble: ens });
  crashPoint('fairness:before-write');
  await assertLeaseHeld(ws);
  await writeFileAtomic(ws.fairnessPath, JSON.stringify(fit) + '\n');
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
  await writeFileAtomic(historyPath(ws), JSON.stringify(next, null, 2) + '\n');
}

export async function loadHistory(ws: Workspace): Promise<FairnessHistory> {
  try {
    return HistorySchema.parse(JSON.parse(await fsp.readFile(historyPath(ws), 'utf8')));
  } catch {
    return [];
  }
}

/** After train or delete: refit when the workspace can (calibration split and groups), else do nothing. */
export async function refitIfPossible(workdir: string): Promise<FairnessFit | null> {
  const ws = workspace(workdir);
  const state = await loadState(ws);
  if (!state.heldout.calibration || state.config.groups.length === 0 || !state.training) return null;
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

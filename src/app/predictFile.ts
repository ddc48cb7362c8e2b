/** `sisa predict`: scores every row of a file with the ensemble, optionally through a fair post-processor. */
import { aggregate, loadEnsemble, memberProbabilities, predictTextsParallel, voteCounts, type Aggregate } from '../models/ensemble.js';
import { expectedPositive, FAIR_METHODS, type FairMethod } from '../fairness/postprocess.js';
import { loadState, requireTrained } from '../state/manifest.js';
import { workspace } from '../state/workspace.js';
import { stateError } from '../util/errors.js';
import { readInputRecords, readInputRows, type FileColumns } from './inputFile.js';
import { checkOptions, rule, type OptionSpec } from './options.js';

export interface Prediction {
  /** The row's id (its id column, or its row number). */
  id: string;
  /** Ensemble score in [0, 1]: the fraction of toxic votes, or the mean probability. */
  score: number;
  /** 1 toxic, 0 not (from the fair post-processor when `fair` is given). */
  label: number;
}

/** A prediction through a fair post-processor, with what decided it. */
export interface FairPrediction extends Prediction {
  /** Positive votes of the shard models (0..S). */
  votes: number;
  /** The row's group under the fit's attribute ('other' when outside it). */
  group: string;
  /**
   * The post-processor's probability of flagging this row: the table's value for its vote count and group
   * (ensemble: for its majority vote; per-model: that a majority of the post-processed models flag it).
   * 0 or 1 for threshold fits; otherwise `label` is a draw against it, fixed per record id.
   */
  flagProbability: number;
  /** The post-processor that gave the label. */
  method: FairMethod;
}

export interface PredictOptions {
  /** Workspace folder with trained models. */
  workdir: string;
  /** CSV, JSON Lines, Parquet or Arrow file with a text column. */
  file: string;
  /** 'vote' (majority of the shard models, ties count as toxic; default) or 'mean' probability. */
  aggregate?: Aggregate;
  /** Label through a fitted equalized-odds post-processor: 'per-model', 'ensemble' or 'votes'. */
  fair?: FairMethod;
  /** Column with the row id (default: id and the usual names, else the row number). */
  idCol?: string;
  /** Column with the text (default: text and the usual names). */
  textCol?: string;
  /** 'csv', 'jsonl', 'parquet' or 'arrow' (default: from the file's extension). */
  format?: string;
}

const PREDICT_OPTIONS: OptionSpec<PredictOptions> = {
  workdir: rule.req('string'),
  file: rule.req('string'),
  aggregate: rule.opt({ oneOf: ['vote', 'mean'] }),
  fair: rule.opt({ oneOf: FAIR_METHODS }),
  idCol: rule.opt('string'),
  textCol: rule.opt('string'),
  format: rule.opt('string'),
};

/** Scores every row of a file with the ensemble, optionally through a fair post-processor (then each row says why). */
export async function predictFile(o: PredictOptions & { fair: FairMethod }): Promise<FairPrediction[]>;
export async function predictFile(o: PredictOptions): Promise<Prediction[] | FairPrediction[]>;
export async function predictFile(o: PredictOptions): Promise<Prediction[] | FairPrediction[]> {
  checkOptions('predictFile', o, PREDICT_OPTIONS);
  const { workdir, file, fair } = o;
  const how = o.aggregate ?? 'vote';
  const cols: FileColumns = { idCol: o.idCol, textCol: o.textCol, format: o.format };
  const ws = workspace(workdir);
  const state = await loadState(ws);
  requireTrained(state);
  // The fairness module (schemas, LP solver) loads only for --fair: it is most of a plain predict's start-up.
  const fairness = fair ? await import('./fairnessFit.js') : null;
  const fit = fairness ? await fairness.loadFit(ws) : null;
  if (fairness) {
    if (!fit) throw stateError("no fitted fairness post-processor; run 'sisa fairness fit' (needs a calibration split and sensitive groups)");
    if (fairness.isStale(fit, state)) throw stateError(fairness.staleFitMessage(fit));
  }
  const ens = await loadEnsemble(ws, state);
  if (!fair || !fairness) {
    // Hashed and scored on several threads (for a file of more than a few thousand rows).
    const records = await readInputRecords(state, file, cols, false);
    const scored = await predictTextsParallel(ens, records.map((r) => r.text), how);
    return records.map((r, i) => ({ id: r.id, score: scored.score[i]!, label: scored.label[i]! }));
  }
  const rows = await readInputRows(state, file, cols, false, true);
  const probs = memberProbabilities(ens, { ...rows, n: rows.ids.length });
  const agg = aggregate(probs, how);
  const group = fairness.attributeValues(state, rows, fit!.attribute);
  const labels = fairness.methodPredictions(fit, fair, probs, rows, group, fit!.seed);
  const flag = expectedPositive(fit!.methods.find((m) => m.method === fair)!, probs, group);
  const votes = voteCounts(probs);
  const names = fit!.groups?.map((g) => g.name) ?? fairness.groupNames(fit!.attribute, state);
  return rows.ids.map((id, i) => ({ id, score: agg.score[i]!, votes: votes[i]!, group: names[group[i]!]!, flagProbability: flag[i]!, label: labels[i]!, method: fair }));
}

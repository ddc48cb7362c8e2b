/** `sisa predict`: scores every row of a file with the ensemble, optionally through a fair post-processor. */
import { aggregate, loadEnsemble, memberProbabilities, predictTexts, predictTextsParallel, voteCounts, type Aggregate, type Ensemble, type Scored } from '../models/ensemble.js';
import { expectedPositive, FAIR_METHODS, type FairMethod } from '../fairness/postprocess.js';
import { loadState, requireTrained, type State } from '../state/manifest.js';
import { workspace } from '../state/workspace.js';
import { stateError } from '../util/errors.js';
import { detectFormat, readsOnItsOwnThread } from '../data/readers.js';
import { readInputRecordBatches, readInputRows, type FileColumns, type InputRecord } from './inputFile.js';
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
  if (!fair || !fairness) return scoreFile(loadEnsemble(ws, state), state, file, cols, how);
  const ens = await loadEnsemble(ws, state);
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

/**
 * Up to this many models, a batch is hashed and scored on one thread in less time than the CSV parser
 * takes to read it, so scoring while reading hides it behind the parse. Measured with old and new code
 * alternated: `sisa predict` at S = 8, median 1.15 s → 1.06 s on Davidson, 1.96 s → 1.75 s on 100k generated
 * rows; at S = 32 on 300k generated rows, 4.9 s → 6.0 s (one thread scoring fell behind the parser, where
 * scoring after the read uses every core), so larger ensembles keep that.
 */
const SCORE_WHILE_READING_MAX_MODELS = 8;

/**
 * Scores a file's records as they are read. The models load while the reader starts on the file. When the
 * reader parses on a thread of its own (CSV) and the ensemble is linear with at most
 * SCORE_WHILE_READING_MAX_MODELS models, this thread, which would otherwise wait for the parser, hashes and
 * scores each batch as it arrives; when it falls behind, the parser waits (it keeps only a few batches
 * ahead), so the two never need more than two cores. Otherwise (other formats, larger or hidden-layer
 * ensembles) the rows are scored on all cores once read. Every row gets the same bits either way: rows are
 * hashed and scored one by one by the same kernels, and aggregated row by row.
 */
async function scoreFile(loading: Promise<Ensemble>, state: State, file: string, cols: FileColumns, how: Aggregate): Promise<Prediction[]> {
  loading.catch(() => undefined); // awaited below in every case
  const records: InputRecord[] = [];
  const parts: Scored[] = [];
  let scored = 0;
  try {
    const inline = readsOnItsOwnThread(detectFormat(file, cols.format));
    for await (const batch of readInputRecordBatches(state, file, cols, false)) {
      const ens = await loading;
      for (const r of batch) records.push(r);
      if (inline && ens.linear && ens.models.length <= SCORE_WHILE_READING_MAX_MODELS) {
        parts.push(predictTexts(ens, batch.map((r) => r.text), how));
        scored = records.length;
      }
    }
  } catch (err) {
    await loading; // a workspace that cannot load its models says so first, as when they loaded before reading
    throw err;
  }
  const ens = await loading;
  if (scored < records.length) parts.push(await predictTextsParallel(ens, records.slice(scored).map((r) => r.text), how));
  const out: Prediction[] = new Array(records.length);
  let i = 0;
  for (const part of parts)
    for (let k = 0; k < part.score.length; k++, i++) out[i] = { id: records[i]!.id, score: part.score[k]!, label: part.label[k]! };
  return out;
}

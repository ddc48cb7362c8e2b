/** `sisa evaluate`: scores the held-out test split (or another labelled file) with the ensemble. */
import { pullReferenced } from '../state/remote.js';
import path from 'node:path';
import { readRowsFile, type Rows } from '../data/shardFile.js';
import { aggregate, loadEnsemble, memberProbabilities, type Aggregate } from '../models/ensemble.js';
import { loadState, requireTrained } from '../state/manifest.js';
import { workspace } from '../state/workspace.js';
import { stateError } from '../util/errors.js';
import { loadLabelledFile } from './inputFile.js';
import { checkOptions, rule, type OptionSpec } from './options.js';
import { binaryMetrics, confusion, rocAuc } from '../util/metrics.js';
import { vote } from '../util/vote.js';

export interface EvaluateOptions {
  /** Workspace folder with trained models. */
  workdir: string;
  /** 'vote' (majority of the shard models, ties count as toxic; default) or 'mean' probability. */
  aggregate?: Aggregate;
  /** A labelled file to evaluate on instead of the held-out test split. */
  data?: string;
  /** Which held-out split to score when there is no `data` (default 'test'). */
  split?: 'test' | 'calibration';
  /** Text column of `data` (default as at ingest). */
  textCol?: string;
  /** Label column of `data` (default as at ingest). */
  labelCol?: string;
  /** Label values of `data` that mean toxic; all others are not. */
  positiveValues?: string[];
  /** Fractional labels of `data`: toxic when label >= threshold. */
  labelThreshold?: number;
  /** Format of `data`: 'csv', 'jsonl', 'parquet' or 'arrow' (default: from the extension). */
  format?: string;
}

const EVALUATE_OPTIONS: OptionSpec<EvaluateOptions> = {
  workdir: rule.req('string'),
  aggregate: rule.opt({ oneOf: ['vote', 'mean'] }),
  data: rule.opt('string'),
  split: rule.opt({ oneOf: ['test', 'calibration'] }),
  textCol: rule.opt('string'),
  labelCol: rule.opt('string'),
  positiveValues: rule.opt('string[]'),
  labelThreshold: rule.opt('number'),
  format: rule.opt('string'),
};

export interface EvaluateResult {
  source: string;
  rows: number;
  aggregate: Aggregate;
  auc: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  perShard: { shard: number; modelVersion: number; accuracy: number; auc: number }[];
}

export async function evaluate(o: EvaluateOptions): Promise<EvaluateResult> {
  checkOptions('evaluate', o, EVALUATE_OPTIONS);
  const ws = workspace(o.workdir);
  const state = await loadState(ws);
  requireTrained(state);
  const how = o.aggregate ?? 'vote';
  let rows: Rows;
  let source: string;
  if (o.data) {
    rows = await loadLabelledFile(state, o.data, o);
    source = path.resolve(o.data);
  } else {
    const split = o.split ?? 'test';
    const ref = split === 'test' ? state.heldout.test : state.heldout.calibration;
    if (!ref) throw stateError('this workspace has no calibration split (ingest with --calibration)');
    await pullReferenced(ws, state, ['heldout']);
    rows = await readRowsFile(path.join(ws.shardsDir, ref.file), ref.sha256);
    source = `held-out ${split} split`;
  }
  // Metrics of nothing would print as zeros, which reads like a terrible model rather than no data.
  if (rows.ids.length === 0) throw stateError(`${source}: no rows to evaluate on${o.data ? '' : ' (the data set is too small for its held-out fraction; re-ingest more rows)'}`);
  const ens = await loadEnsemble(ws, state);
  const probs = memberProbabilities(ens, { ...rows, n: rows.ids.length });
  const agg = aggregate(probs, how);
  const m = binaryMetrics(confusion(rows.labels, agg.label));
  return {
    source,
    rows: rows.ids.length,
    aggregate: how,
    auc: rocAuc(rows.labels, agg.score),
    accuracy: m.accuracy,
    precision: m.precision,
    recall: m.recall,
    f1: m.f1,
    perShard: probs.map((p, s) => {
      const pred = Uint8Array.from(p, vote);
      return { shard: s, modelVersion: ens.models[s]!.version, accuracy: binaryMetrics(confusion(rows.labels, pred)).accuracy, auc: rocAuc(rows.labels, p) };
    }),
  };
}

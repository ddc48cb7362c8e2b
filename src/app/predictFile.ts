/** `sisa predict`: scores every row of a file with the ensemble, optionally through a fair post-processor. */
import { aggregate, loadEnsemble, memberProbabilities, type Aggregate } from '../models/ensemble.js';
import { attributeValues, isStale, loadFit, methodPredictions } from './fairnessFit.js';
import type { FairMethod } from '../fairness/postprocess.js';
import { loadState, requireTrained } from '../state/manifest.js';
import { workspace } from '../state/workspace.js';
import { stateError } from '../util/errors.js';
import { readInputRows, type FileColumns } from './inputFile.js';

export interface Prediction {
  id: string;
  score: number;
  label: number;
}

export async function predictFile(workdir: string, file: string, how: Aggregate, cols: FileColumns = {}, fair?: FairMethod): Promise<Prediction[]> {
  const ws = workspace(workdir);
  const state = await loadState(ws);
  requireTrained(state);
  const fit = fair ? await loadFit(ws) : null;
  if (fair) {
    if (!fit) throw stateError("no fitted fairness post-processor; run 'sisa fairness fit' (needs a calibration split and sensitive groups)");
    if (isStale(fit, state)) throw stateError("the fairness post-processor was fitted on older models; run 'sisa fairness fit'");
  }
  const ens = await loadEnsemble(ws, state);
  const rows = await readInputRows(state, file, cols, false, fair !== undefined);
  const probs = memberProbabilities(ens, { ...rows, n: rows.ids.length });
  const agg = aggregate(probs, how);
  const labels = fair ? methodPredictions(fit, fair, probs, rows, attributeValues(state, rows, fit!.attribute), fit!.seed) : agg.label;
  return rows.ids.map((id, i) => ({ id, score: agg.score[i]!, label: labels[i]! }));
}

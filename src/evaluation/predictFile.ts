/** `sisa predict`: scores every row of a file with the ensemble. */
import { aggregate, loadEnsemble, memberProbabilities, type Aggregate } from '../models/ensemble.js';
import { loadState, requireTrained } from '../state/manifest.js';
import { workspace } from '../state/workspace.js';
import { readInputRows, type FileColumns } from './labelledFile.js';

export interface Prediction {
  id: string;
  score: number;
  label: number;
}

export async function predictFile(workdir: string, file: string, how: Aggregate, cols: FileColumns = {}): Promise<Prediction[]> {
  const ws = workspace(workdir);
  const state = await loadState(ws);
  requireTrained(state);
  const ens = await loadEnsemble(ws, state);
  const rows = await readInputRows(state, file, cols, false);
  const agg = aggregate(memberProbabilities(ens, { ...rows, n: rows.ids.length }), how);
  return rows.ids.map((id, i) => ({ id, score: agg.score[i]!, label: agg.label[i]! }));
}

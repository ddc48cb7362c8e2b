/** The sisa library: everything the CLI does is available here. */
export { ingest, type IngestOptions, type IngestResult } from './data/ingest.js';
export { readRowsFile, type Rows } from './data/shardFile.js';
export { placeRecord, type Placement } from './data/assign.js';
export { hashText, tokenize, DEFAULT_FEATURES, type FeatureConfig } from './features/hashing.js';
export { train, type TrainOptions, type TrainResult } from './orchestration/train.js';
export { deleteRecords, planDeletion, type DeleteOptions, type DeleteResult } from './unlearning/delete.js';
export { readLog, type DeletionEntry } from './unlearning/log.js';
export { evaluate, type EvaluateOptions, type EvaluateResult } from './evaluation/evaluate.js';
export { predictFile } from './evaluation/predictFile.js';
export { loadEnsemble, predictTexts, aggregate, memberProbabilities, voteCounts, type Ensemble, type Aggregate } from './models/ensemble.js';
export { loadBackend } from './models/backend.js';
export { loadState, type State } from './state/manifest.js';
export { workspace, type Workspace } from './state/workspace.js';
export { status } from './state/status.js';
export { generateCorpus, writeCorpusCsv } from './demo/corpus.js';
export { SisaError } from './util/errors.js';

/**
 * The sisa library: every use case the CLI runs is exported here, with the same options and the same
 * guarantees (locking, journal, recovery). The CLI is a thin layer of flags and printing over these.
 */
// Use cases (src/app)
export { ingest, type IngestOptions, type IngestResult } from './app/ingest.js';
export { train, type TrainOptions, type TrainResult } from './app/train.js';
export { deleteRecords, planDeletion, type DeleteOptions, type DeleteResult, type DeletionPlan } from './app/delete.js';
export { serve, type ServeOptions, type DeletionService, type DeleteRequest, type PredictRequest, type PredictResponse } from './app/serve.js';
export { deleteViaService } from './app/deleteClient.js';
export { evaluate, type EvaluateOptions, type EvaluateResult } from './app/evaluate.js';
export { predictFile, type PredictOptions, type Prediction, type FairPrediction } from './app/predictFile.js';
export { fitFairness, computeFit, loadFit, isStale, isFittedFor, loadHistory, choicesOf, fitSpecFor, type FitOptions, type FitChoices, type FairnessFit, type FairnessHistory } from './app/fairnessFit.js';
export { buildReport, writeReport, reportMarkdown, reportHtml, type ReportOptions, type Report } from './app/report.js';
export { recover, type RecoverOptions, type RecoverResult } from './app/recover.js';
export { verify, type VerifyOptions, type VerifyResult, type Check } from './app/verify.js';
export { status, interruptedOperationWarning, type StatusOptions, type StatusResult } from './app/status.js';
export type { FileColumns } from './app/inputFile.js';
export type { LearnerConfig, GroupSpec } from './state/manifest.js';
// Queue mode (BullMQ)
export { QueueRunner, startQueueWorker, queueStatus, DEFAULT_QUEUE_NAME, type QueueTarget, type QueueWorkerOptions, type QueueStatus } from './orchestration/queue.js';
// Storage seams: immutable blobs by hash, the manifests with one commit point, one writer per workspace
export { FsBlobStore, folderStoreUrl, type FsBlobDirs } from './storage/fsBlobStore.js';
export { FsMetaStore, type MetaStore } from './storage/metaStore.js';
export { BlobMissingError, BlobCorruptError, type BlobStore, type BlobKind, type BlobRef } from './storage/blobStore.js';
export type { Lease } from './storage/lease.js';
export { runShardJob, type ShardJob, type ShardJobResult } from './orchestration/shardJob.js';
// Data, features, models
export { readRowsFile, type Rows } from './data/shardFile.js';
export { placeRecord, type Placement } from './data/assign.js';
export { hashText, tokenize, DEFAULT_FEATURES, type FeatureConfig } from './features/hashing.js';
export { loadEnsemble, predictTexts, predictTextsParallel, Predictor, aggregate, memberProbabilities, voteCounts, type Ensemble, type Aggregate } from './models/ensemble.js';
export { loadBackend } from './models/backend.js';
// State
export { loadState, type State } from './state/manifest.js';
export { readLog, type DeletionEntry } from './state/deletionLog.js';
export { workspace, type Workspace } from './state/workspace.js';
// Tools
export { generateCorpus, writeCorpusCsv } from './demo/corpus.js';
export { SisaError, type ErrorCode } from './util/errors.js';
export { resolveGroups } from './fairness/terms.js';
export { interruptOperations } from './state/lock.js';

/**
 * Each command's usage line and one-line description: all that `sisa --help` lists, and all that the
 * CLI registers for a command that is not being run (see main.ts). Kept apart from the command modules so
 * that listing them loads none of their flags, handlers or libraries.
 */
export const COMMAND_TEXT = {
  ingest: { command: 'ingest <file>', describe: 'Validate, split, shard and slice a labelled data set into Arrow files' },
  train: { command: 'train', describe: 'Train one model per shard, slice by slice, with a checkpoint after every slice' },
  predict: { command: 'predict <file>', describe: 'Score every row of a file with the ensemble (CSV id,score,label on stdout, or --json; with --fair also votes, group, flagProbability, method)' },
  evaluate: { command: 'evaluate', describe: 'AUC, accuracy, precision/recall and per-shard accuracy on the held-out test split (or --data FILE)' },
  delete: { command: 'delete', describe: 'Forget records exactly: retrain only the affected shards from the checkpoint before the affected slice' },
  fairness: { command: 'fairness <action>', describe: 'Fit the fairness post-processors on the calibration split (done automatically after train and delete)' },
  report: { command: 'report', describe: 'Fairness report: a verdict, group sizes, each FairSISA method against the plain ensemble, charts (JSON, Markdown, HTML)' },
  serve: { command: 'serve', describe: "Serve deletions (POST /delete) and predictions (POST /predict) for a workspace over HTTP, from a resident process: no start-up cost per request" },
  worker: { command: 'worker', describe: 'Process shard jobs from a BullMQ queue (on any machine that sees the workspaces at the same path, or, with --cache, that reaches their object store)' },
  recover: { command: 'recover', describe: 'Finish or roll back an operation that was interrupted (kill -9, power loss, full disk)' },
  verify: { command: 'verify', describe: 'Check hashes, receipts, that no deleted id remains anywhere and that every model excludes them; --deep retrains and compares' },
  bench: { command: 'bench', describe: 'Benchmark training, unlearning, ingest and prediction against scikit-learn and fastText on the same split' },
  status: { command: 'status', describe: 'Shards, slices, rows, model versions, deletions and backend (with --queue: queued/active/failed jobs)' },
  demo: { command: 'demo', describe: 'Generate the embedded demo corpus and run ingest → train → evaluate → predict → delete on it' },
} as const;

export type CommandName = keyof typeof COMMAND_TEXT;

/**
 * The workspace state: one small JSON document, `manifests/state.json`, validated with zod on every
 * read and replaced atomically on every write. It is the single commit point of every operation:
 * data and checkpoint files are written first under content-addressed names, then the state that
 * refers to them is renamed into place. Deletion log entries live beside it in `manifests/deletions/`.
 */
import { assertMayCommit } from './lock.js';
import path from 'node:path';
import { matching, number, record, z } from './schema.js';
import { errorMessage, stateError } from '../util/errors.js';
import { sha256 } from '../util/fsx.js';
import { printable } from '../util/format.js';
import { dataFileName, shardRole } from '../storage/fileNames.js';
import type { Workspace } from './workspace.js';

const LabelRule = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('auto') }),
  z.object({ kind: z.literal('positive-values'), values: z.array(z.string()) }),
  z.object({ kind: z.literal('threshold'), threshold: number() }),
]);
export type LabelRule = z.infer<typeof LabelRule>;

const GroupSpec = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('column'), name: z.string(), column: z.string(), positiveValues: z.array(z.string()).optional() }),
  z.object({ kind: z.literal('terms'), name: z.string(), source: z.string(), terms: z.array(z.string()) }),
  z.object({ kind: z.literal('any'), name: z.string(), of: z.array(z.string()) }),
  /**
   * A many-valued attribute: the values of a column (`--group-values C`), or which of the topics a text
   * mentions (`topic`, with --overlap: the combination, or the first topic in the given order). Stored as
   * codes into `values`, in order of first appearance at ingest; code 0 of a topic attribute is 'none'.
   */
  z.object({
    kind: z.literal('values'),
    name: z.string(),
    column: z.string().optional(),
    topics: z.array(z.string()).optional(),
    overlap: z.enum(['intersect', 'first']).optional(),
    values: z.array(z.string()),
  }),
]);
export type GroupSpec = z.infer<typeof GroupSpec>;

const FileRefFields = z.object({ file: z.string(), sha256: matching(/^[0-9a-f]{64}$/), rows: number().int().nonnegative() });

export type FileRef = z.infer<typeof FileRefFields>;

/**
 * A data file is named by its role (shard-007, test, calibration) and the first 12 hex digits of its
 * content hash, as ShardFileWriter names it. A manifest entry naming anything else (damaged or edited)
 * is refused: the name could point outside shards/ or at another entry's file, and the real file, then
 * named by no entry, would be removed as stray by the next garbage collection.
 */
function namedFor<T extends FileRef>(role: (f: T) => string) {
  return (f: T, ctx: z.RefinementCtx): void => {
    const expected = dataFileName(role(f), f.sha256);
    if (f.file !== expected) ctx.addIssue({ code: 'custom', path: ['file'], message: `Invalid file name: expected '${expected}' (its role and hash), got '${printable(f.file)}'` });
  };
}
const heldoutFile = (role: 'test' | 'calibration') => FileRefFields.superRefine(namedFor(() => role));

const SliceInfo = z.object({ slice: number().int().nonnegative(), rows: number().int().nonnegative(), hash: z.string() });

const ShardInfo = FileRefFields.extend({ shard: number().int().nonnegative(), slices: z.array(SliceInfo) }).superRefine(
  namedFor((s: { shard: number } & FileRef) => shardRole(s.shard)),
);
export type ShardInfo = z.infer<typeof ShardInfo>;

export const LearnerConfig = z.object({
  hidden: number().int().nonnegative(),
  optimizer: z.enum(['adagrad', 'sgd']),
  epochs: number().int().positive(),
  batchSize: number().int().positive(),
  learningRate: number().positive(),
  l2: number().nonnegative(),
  /** Fixed width of a padded feature block in a training batch; longer rows are split into blocks. */
  blockWidth: number().int().positive(),
});
export type LearnerConfig = z.infer<typeof LearnerConfig>;

const RuntimeSchema = z.object({ backend: z.string(), versions: record(z.string()).optional() });

const ModelInfo = z.object({
  shard: number().int().nonnegative(),
  /** Increases by one each time the shard's model is (re)trained. */
  version: number().int().positive(),
  /** Checkpoint file (sha256 name) after each slice; the last one is the model. */
  checkpoints: z.array(matching(/^[0-9a-f]{64}$/)),
  /** sha256 of the model's parameters only (not optimiser state), comparable across runs. */
  modelHash: z.string(),
  /** Content hash of the shard file the model was trained on. */
  dataSha256: z.string(),
  /** Per checkpoint i: hash of the content hashes of slices 0..i it was trained on (see lineageOf). */
  lineage: z.array(z.string()),
  trainedAt: z.string(),
  seconds: number().nonnegative(),
  /** The runtime (backend and versions) this model was trained on; a retrain from its checkpoints must match it. */
  runtime: RuntimeSchema.optional(),
});
export type ModelInfo = z.infer<typeof ModelInfo>;

export const StateSchema = z.object({
  formatVersion: z.literal(1),
  dataset: z.object({
    source: z.string(),
    format: z.enum(['csv', 'jsonl', 'parquet', 'arrow']),
    fingerprint: z.string(),
    rows: number().int().nonnegative(),
    accepted: number().int().nonnegative(),
    skipped: number().int().nonnegative(),
    ingestedAt: z.string(),
  }),
  config: z.object({
    shards: number().int().positive(),
    slices: number().int().positive(),
    seed: number().int(),
    test: number().min(0).lt(1),
    calibration: number().min(0).lt(1),
    idCol: z.string().nullable(),
    textCol: z.string(),
    labelCol: z.string(),
    labelRule: LabelRule,
    features: z.object({ buckets: number().int().positive(), ngrams: number().int().positive(), signed: z.boolean(), chars: number().int().nonnegative().optional() }),
    groups: z.array(GroupSpec),
  }),
  shards: z.array(ShardInfo),
  heldout: z.object({ test: heldoutFile('test'), calibration: heldoutFile('calibration').nullable() }),
  training: z
    .object({ backend: z.string(), learner: LearnerConfig, trainedAt: z.string(), runtime: RuntimeSchema.optional() })
    .nullable(),
  models: z.array(ModelInfo),
  /** Number of committed deletion log entries (manifests/deletions/000001.json …). */
  deletions: number().int().nonnegative(),
  /**
   * sha256 of the newest deletion log entry (number `deletions`), committed with it. Each entry carries
   * its predecessor's hash, so the chain proves every entry but the newest; this proves the newest. A
   * deletion refuses to chain onto an entry that does not match it, and verify reports one. Absent in
   * workspaces whose newest entry was written before it existed (then the entry is only checked to be
   * a valid entry).
   */
  lastReceiptSha256: matching(/^[0-9a-f]{64}$/).optional(),
  /**
   * The highest model version of models a re-ingest (--force) discarded. Deletion receipts name the
   * model version each retrain produced, and verify checks that no model is older than a deletion
   * that touched its shard; numbering new models from 1 again made that audit fail on models that
   * `verify --deep` proves exact. Absent until the first re-ingest of a trained workspace.
   */
  retiredModelVersion: number().int().nonnegative().optional(),
  /** Increases on every commit, so that derived artefacts (fairness fits) can tell they are stale. */
  revision: number().int().nonnegative(),
  /**
   * Object store holding the shard files, held-out files and checkpoints (`s3://bucket/prefix`), when
   * the workspace was ingested with --store; its local shards/ folder is then only a verified cache.
   * Never holds credentials: those come from the AWS environment of each process.
   */
  store: matching(/^s3:\/\/[^/@]+(\/.*)?$/).optional(),
});
export type State = z.infer<typeof StateSchema>;

/** The state manifest's name in the metadata store: replacing it is every operation's commit point. */
export const STATE_DOC = 'state.json';

export async function loadState(ws: Workspace): Promise<State> {
  let text: string | null;
  try {
    text = await ws.meta.read(STATE_DOC);
  } catch (err) {
    throw stateError(`${ws.statePath}: cannot read the manifest (${errorMessage(err)})`, err);
  }
  if (text === null) throw stateError(`no sisa workspace at ${ws.root} (missing ${path.relative(ws.root, ws.statePath)}); run 'sisa ingest' first`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw stateError(`${ws.statePath}: not valid JSON (${errorMessage(err)}); the manifest was damaged`);
  }
  const parsed = StateSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw stateError(`${ws.statePath}: invalid manifest at '${issue.path.join('.')}': ${issue.message}`);
  }
  return parsed.data;
}

export async function tryLoadState(ws: Workspace): Promise<State | null> {
  if ((await ws.meta.read(STATE_DOC).catch(() => null)) === null) return null;
  return loadState(ws);
}

export async function saveState(ws: Workspace, state: State): Promise<void> {
  const next = StateSchema.parse(state);
  await assertMayCommit(ws); // the commit point: a process that lost the lock, or was interrupted, stops here
  await ws.meta.write(STATE_DOC, JSON.stringify(next, null, 2) + '\n');
}

export function requireTrained(state: State): asserts state is State & { training: NonNullable<State['training']> } {
  if (!state.training || state.models.length !== state.shards.length)
    throw stateError("no trained models in this workspace; run 'sisa train' first");
}

/**
 * Whether post-processors can be fitted: a calibration split, a sensitive attribute and trained models.
 * A deletion checks it before it loads the fairness modules (their load is part of its latency).
 */
export function canFitFairness(state: State): boolean {
  return Boolean(state.heldout.calibration) && state.config.groups.length > 0 && Boolean(state.training);
}

/** The version the next (re)training of `shard` gets: model versions never go back, not even across re-ingest. */
export function nextModelVersion(state: State, shard: number): number {
  return (state.models.find((m) => m.shard === shard)?.version ?? state.retiredModelVersion ?? 0) + 1;
}

/** What a re-ingest carries over as `retiredModelVersion` from the state it replaces. */
export function retiredModelVersion(previous: State | null): number | undefined {
  if (!previous) return undefined;
  const highest = Math.max(previous.retiredModelVersion ?? 0, ...previous.models.map((m) => m.version));
  return highest > 0 ? highest : undefined;
}

/** The data lineage of each checkpoint of a shard: a hash of the slice content hashes 0..i. */
export function lineageOf(shard: ShardInfo): string[] {
  return shard.slices.map((_, i) => sha256(shard.slices.slice(0, i + 1).map((x) => x.hash).join(',')));
}

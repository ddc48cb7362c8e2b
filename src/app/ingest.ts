/**
 * Ingest: stream an input file once, validate every row, place it
 * in the test split, the calibration split, or a (shard, slice), and write the Arrow files. Nothing in
 * the workspace changes unless the whole file is accepted: files are written under temporary names and
 * the manifest that points to them is committed last.
 */
import { createHash, type Hash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_FEATURES, validateFeatureConfig, type FeatureConfig } from '../features/hashing.js';
import { groupFlagger } from '../data/groups.js';
import { deletedIdMatcher } from '../state/deletionLog.js';
import { retiredModelVersion, saveState, tryLoadState, type GroupSpec, type LabelRule, type ShardInfo, type State } from '../state/manifest.js';
import { FirstSeen } from '../util/firstSeen.js';
import { garbageCollect, referencedShardFiles } from '../state/gc.js';
import { syncBeforeCommit } from '../state/remote.js';
import { parseS3Url } from '../storage/s3Url.js';
import { workspace } from '../state/workspace.js';
import { inputError, stateError, usageError } from '../util/errors.js';
import { sha256File } from '../util/fsx.js';
import { crashPoint, pausePoint } from '../util/faults.js';
import { holdsLease, interruptedError, isInterrupted } from '../state/lock.js';
import { runOperation } from '../state/operation.js';
import { placeRecord, type Placement } from '../data/assign.js';
import { LabelValues, parseLabel } from '../data/labels.js';
import { findColumn, ID_CANDIDATES, LABEL_CANDIDATES, requireColumn, TEXT_CANDIDATES } from '../data/columns.js';
import { detectFormat, readRecordBatches, rowRef } from '../data/readers.js';
import { recordDigest, RowsBuilder, ShardFileWriter, type WrittenFile } from '../data/shardFile.js';
import { shardRole } from '../storage/fileNames.js';
import { checkOptions, rule, type OptionSpec } from './options.js';

export interface IngestOptions {
  /** The labelled data file: CSV, JSON Lines, Parquet or Arrow IPC. */
  input: string;
  /** Workspace folder to create (data in WORKDIR/shards, state in WORKDIR/manifests). */
  workdir: string;
  /** 'csv', 'jsonl', 'parquet' or 'arrow' (default: from the file's extension). */
  format?: string;
  /** Number of shards S, each with its own model (default 8). */
  shards?: number;
  /** Slices per shard R, with a checkpoint after each (default 4). */
  slices?: number;
  /** Seed for splits, shards, slices and training (default 7). */
  seed?: number;
  /** Fraction held out for testing (default 0.2). */
  test?: number;
  /** Fraction held out to fit the fairness post-processors (default 0; fairness needs e.g. 0.2). */
  calibration?: number;
  /** Column with the record id (default: id, rev_id, comment_id, _id or an unnamed first column; else row numbers). */
  idCol?: string;
  /** Column with the text (default: text, comment_text, comment, tweet, content or body). */
  textCol?: string;
  /** Column with the label (default: label, toxic, is_toxic, toxicity, target or class). */
  labelCol?: string;
  /** Label values that mean toxic, e.g. ['0', '1'] for Davidson et al.'s classes; all others are not. */
  positiveValues?: string[];
  /** Fractional labels: toxic when label >= threshold. */
  labelThreshold?: number;
  /** Skip and count invalid rows instead of refusing the file (default false). */
  skipInvalid?: boolean;
  /** Replace a data set already in the workspace; models are discarded, the deletion log is kept (default false). */
  force?: boolean;
  /** Feature hashing (default: 2^18 buckets, word 1-2-grams, signed, character 3-5-grams). */
  features?: FeatureConfig;
  /** Sensitive groups for fairness: `await resolveGroups(['builtin'], [])` for the built-in topic terms. */
  groups?: GroupSpec[];
  /** Called as rows are read, with the count so far. */
  onProgress?: (rowsRead: number) => void;
  /** Object store for the blobs (`s3://bucket/prefix`); the manifests stay in the workspace. */
  store?: string;
  /** Wait for another sisa process holding the workspace instead of failing. */
  wait?: boolean;
}

const FEATURE_FIELDS: OptionSpec<FeatureConfig> = { buckets: rule.req('number'), ngrams: rule.req('number'), signed: rule.req('boolean'), chars: rule.opt('number') };

const INGEST_OPTIONS: OptionSpec<IngestOptions> = {
  input: rule.req('string'),
  workdir: rule.req('string'),
  format: rule.opt('string'),
  shards: rule.opt('number'),
  slices: rule.opt('number'),
  seed: rule.opt('number'),
  test: rule.opt('number'),
  calibration: rule.opt('number'),
  idCol: rule.opt('string'),
  textCol: rule.opt('string'),
  labelCol: rule.opt('string'),
  positiveValues: rule.opt('string[]'),
  labelThreshold: rule.opt('number'),
  skipInvalid: rule.opt('boolean'),
  force: rule.opt('boolean'),
  features: rule.opt({ fields: FEATURE_FIELDS }),
  groups: rule.opt('array'),
  onProgress: rule.opt('function'),
  store: rule.opt('string'),
  wait: rule.opt('boolean'),
};

/** Options with the split and sharding defaults filled in. */
type Resolved = IngestOptions & Required<Pick<IngestOptions, 'shards' | 'slices' | 'seed' | 'test' | 'calibration'>>;

function withDefaults(o: IngestOptions): Resolved {
  return { ...o, shards: o.shards ?? 8, slices: o.slices ?? 4, seed: o.seed ?? 7, test: o.test ?? 0.2, calibration: o.calibration ?? 0 };
}

export interface InvalidRow {
  /** Data row, 1-based, the header not counted (with no id column, the record's id). */
  row: number;
  /** File line where the row starts (CSV and JSON Lines). */
  line?: number;
  reason: string;
}

export interface IngestResult {
  fingerprint: string;
  rows: number;
  accepted: number;
  skipped: number;
  /** Rows dropped because their id was deleted earlier in this workspace (deletions survive re-ingest). */
  previouslyDeleted: number;
  invalid: InvalidRow[];
  shards: { shard: number; rows: number; slices: number[] }[];
  test: number;
  calibration: number;
  /** Columns read; `id` null when ids are row numbers, '' for an unnamed column (a pandas index). */
  columns: { id: string | null; text: string; label: string };
  groups: Record<string, number>;
  /** Rows per value of each many-valued attribute (`--group-values`, `--overlap`). */
  groupValues: Record<string, Record<string, number>>;
  /** Problems that do not stop the ingest but will show later (shards or splits with no rows). */
  warnings: string[];
  seconds: number;
  /** Peak resident memory of this process so far (streaming keeps it flat in the file size). */
  peakRssBytes: number;
}

const MAX_ID_LENGTH = 1024;
/** Rows buffered across all open files before they are written: bounds memory whatever the shard count. */
const BUFFERED_ROWS = 49152;
const BATCH_ROWS = 4096;
const MAX_REPORTED = 20;

/**
 * A data set too small for its shards trains without complaint, and then the empty shards' models (no
 * data: probability 0.5) outvote the rest (ties count as toxic). Say so at ingest, where it can be fixed.
 */
export function sizeWarnings(shardRows: number[], testRows: number): string[] {
  const warnings: string[] = [];
  const empty = shardRows.filter((n) => n === 0).length;
  const total = shardRows.reduce((a, b) => a + b, 0);
  if (empty > 0) {
    const fit = Math.max(1, Math.floor(total / 50));
    warnings.push(
      `${empty} of ${shardRows.length} shards have no training rows (${total} in all); their models learn nothing and still vote, so predictions lean toxic. Re-ingest with --force and fewer --shards (at most ${fit} for ${total} rows)`,
    );
  }
  if (testRows === 0) warnings.push("the held-out test split is empty; 'sisa evaluate' will have nothing to score");
  return warnings;
}

function validateOptions(o: Resolved): void {
  const intIn = (v: number, lo: number, hi: number) => Number.isInteger(v) && v >= lo && v <= hi;
  if (!intIn(o.shards, 1, 4096)) throw usageError(`--shards must be an integer from 1 to 4096, got ${o.shards}`);
  if (!intIn(o.slices, 1, 1024)) throw usageError(`--slices must be an integer from 1 to 1024, got ${o.slices}`);
  if (!Number.isInteger(o.seed)) throw usageError(`--seed must be an integer, got ${o.seed}`);
  if (!(o.test > 0 && o.test < 1)) throw usageError(`--test must be a fraction in (0, 1), got ${o.test}`);
  if (!(o.calibration >= 0 && o.calibration < 1)) throw usageError(`--calibration must be a fraction in [0, 1), got ${o.calibration}`);
  if (o.test + o.calibration >= 0.9) throw usageError(`--test + --calibration must leave at least 10% for training, got ${o.test + o.calibration}`);
  if (o.positiveValues && o.labelThreshold !== undefined) throw usageError('--positive-values and --label-threshold cannot be used together');
  const featureProblem = validateFeatureConfig(o.features ?? DEFAULT_FEATURES);
  if (featureProblem) throw usageError(featureProblem);
}

export async function ingest(options: IngestOptions): Promise<IngestResult> {
  checkOptions('ingest', options, INGEST_OPTIONS);
  const o = withDefaults(options);
  validateOptions(o);
  return runOperation(o.workdir, 'ingest', { wait: o.wait }, () => ingestLocked(o));
}

async function ingestLocked(o: Resolved): Promise<IngestResult> {
  const t0 = performance.now();
  const ws = workspace(o.workdir);
  const previous = await tryLoadState(ws);
  if (previous && !o.force)
    throw stateError(`${ws.root} already holds an ingested data set (${previous.dataset.source}); pass --force to replace it`);
  if (o.store) parseS3Url(o.store); // a malformed URL is refused before the input is read
  if (previous?.store && o.store && o.store !== previous.store)
    throw usageError(`--store ${o.store}: this workspace keeps its blobs in ${previous.store}; re-ingest into a new --workdir to change stores`);
  const store = o.store ?? previous?.store;
  const format = detectFormat(o.input, o.format);
  const features = o.features ?? DEFAULT_FEATURES;
  const labelRule: LabelRule = o.positiveValues
    ? { kind: 'positive-values', values: o.positiveValues }
    : o.labelThreshold !== undefined
      ? { kind: 'threshold', threshold: o.labelThreshold }
      : { kind: 'auto' };
  // A copy: the many-valued attributes' value lists grow while the file is read, and are stored with the state.
  const groups = structuredClone(o.groups ?? []);
  const groupNames = groups.map((g) => g.name);
  const binaryGroups = groups.filter((g) => g.kind !== 'values').map((g) => g.name);
  const manyValued = groups.filter((g) => g.kind === 'values');
  const flagGroups = groupFlagger(groups, { grow: true });
  // A record deleted earlier must not come back when the same file is ingested again.
  const isDeleted = previous ? await deletedIdMatcher(ws, previous) : () => false;

  await fsp.mkdir(ws.shardsDir, { recursive: true });
  // A named pipe or a device would be read to its end here and then again by the reader, or wait for a
  // writer: refused, as predict's reader refuses it.
  const kind = await fsp.stat(o.input).then(
    (st) => (st.isFile() ? null : 'not a regular file'),
    (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied' : err.message),
  );
  if (kind) throw inputError(`${o.input}: cannot read input file (${kind})`);
  const fingerprint = await sha256File(o.input).catch(() => {
    throw inputError(`${o.input}: cannot read input file`);
  });
  const assign = { seed: o.seed, test: o.test, calibration: o.calibration, shards: o.shards, slices: o.slices };

  const flushRows = Math.max(512, Math.floor(BUFFERED_ROWS / (o.shards + 2)));
  const shardWriters = Array.from({ length: o.shards }, (_, s) => new ShardFileWriter(ws.shardsDir, shardRole(s), groupNames, { features }));
  const shardRows = Array.from({ length: o.shards }, () => new RowsBuilder(groupNames));
  const sliceHash: Hash[][] = Array.from({ length: o.shards }, () => Array.from({ length: o.slices }, () => createHash('sha256')));
  const sliceCount: number[][] = Array.from({ length: o.shards }, () => new Array<number>(o.slices).fill(0));
  const testWriter = new ShardFileWriter(ws.shardsDir, 'test', groupNames, { features });
  const testRows = new RowsBuilder(groupNames);
  const calWriter = o.calibration > 0 ? new ShardFileWriter(ws.shardsDir, 'calibration', groupNames, { features }) : null;
  const calRows = new RowsBuilder(groupNames);
  const allWriters = [...shardWriters, testWriter, ...(calWriter ? [calWriter] : [])];

  const seen = new FirstSeen();
  const invalid: InvalidRow[] = [];
  let invalidCount = 0;
  let rows = 0;
  let accepted = 0;
  let previouslyDeleted = 0;
  const labelCounts = [0, 0];
  const labelValues = new LabelValues();
  const groupCounts: Record<string, number> = Object.fromEntries(binaryGroups.map((g) => [g, 0]));
  const valueCounts: Record<string, number[]> = Object.fromEntries(manyValued.map((g) => [g.name, [] as number[]]));
  let cols: { id: string | null; text: string; label: string } | null = null;
  const reject = (at: { row: number; line?: number }, reason: string) => {
    invalidCount += 1;
    if (invalid.length < MAX_REPORTED) invalid.push({ row: at.row, ...(at.line !== undefined ? { line: at.line } : {}), reason });
  };

  // Accepted records go out in batches, written strictly in input order (slice hashes and file contents
  // depend on it). Nothing is hashed here: a shard file stores the feature configuration, and its readers
  // recompute the features from the texts, so hashing at ingest would be thrown away.
  type Pending = { id: string; text: string; label: 0 | 1; groups: Record<string, number>; place: Placement };
  let batch: Pending[] = [];
  const noIndices = new Int32Array(0);
  const noValues = new Float32Array(0);
  // Slice hashes are updated with many records' digests at once: one hash call per record cost more
  // than the hashing. The digest of the concatenation is the digest of the sequence.
  const digestParts: string[][][] = Array.from({ length: o.shards }, () => Array.from({ length: o.slices }, () => []));
  const digestChars: number[][] = Array.from({ length: o.shards }, () => new Array<number>(o.slices).fill(0));
  const flushDigests = (shard: number, slice: number) => {
    sliceHash[shard]![slice]!.update(digestParts[shard]![slice]!.join(''));
    digestParts[shard]![slice] = [];
    digestChars[shard]![slice] = 0;
  };
  // A stored row carries no features: readers recompute them from the text.
  const row = (r: Pending, slice: number) => ({ id: r.id, text: r.text, label: r.label, slice, indices: noIndices, values: noValues, groups: r.groups });
  const place = (r: Pending) => {
    if (r.place.split === 'train') {
      const { shard, slice } = r.place;
      shardRows[shard]!.push(row(r, slice));
      const digest = recordDigest(r.id, r.label, r.text);
      digestParts[shard]![slice]!.push(digest);
      if ((digestChars[shard]![slice]! += digest.length) >= 1 << 16) flushDigests(shard, slice);
      sliceCount[shard]![slice]! += 1;
      if (shardRows[shard]!.length >= flushRows) shardWriters[shard]!.write(shardRows[shard]!.take());
    } else if (r.place.split === 'test') {
      testRows.push(row(r, -1));
      if (testRows.length >= flushRows) testWriter.write(testRows.take());
    } else {
      calRows.push(row(r, -1));
      if (calRows.length >= flushRows) calWriter!.write(calRows.take());
    }
  };
  const submitBatch = async () => {
    if (batch.length === 0) return;
    if (isInterrupted()) throw interruptedError(); // Ctrl-C: stop reading; the writers are aborted below
    for (const r of batch) place(r);
    batch = [];
  };

  try {
    for await (const records of readRecordBatches(o.input, format)) {
      for (const rec of records) {
        rows += 1;
        if (rows % 10000 === 0) o.onProgress?.(rows);
        if (rec.error !== undefined) {
          reject(rec, rec.error);
          continue;
        }
        const fields = rec.fields;
        if (!cols) {
          const names = Object.keys(fields);
          const text = requireColumn(names, o.textCol, TEXT_CANDIDATES, 'text', o.input);
          const label = requireColumn(names, o.labelCol, LABEL_CANDIDATES, 'label', o.input);
          for (const g of groups)
            if ((g.kind === 'column' || g.kind === 'values') && g.column !== undefined && !names.includes(g.column)) throw inputError(`${o.input}: group column '${g.column}' not found`);
          cols = { id: findColumn(names, o.idCol, ID_CANDIDATES, 'id', o.input), text, label };
        }
        labelValues.add(fields[cols.label]);
        const rawId = cols.id === null ? String(rec.row) : fields[cols.id];
        const id = rawId === null || rawId === undefined ? '' : String(rawId).trim();
        if (id === '') {
          reject(rec, 'missing id');
          continue;
        }
        if (id.length > MAX_ID_LENGTH) {
          reject(rec, `id longer than ${MAX_ID_LENGTH} characters`);
          continue;
        }
        if (id.includes('\u0000')) {
          reject(rec, 'id contains a NUL character');
          continue;
        }
        const firstRow = seen.firstRowOrAdd(id, rec.row);
        if (firstRow !== undefined) {
          reject(rec, `duplicate id '${id.slice(0, 60)}' (first seen at row ${firstRow})`);
          continue;
        }
        const rawText = fields[cols.text];
        const text = rawText === null || rawText === undefined ? '' : String(rawText);
        if (text.trim() === '') {
          reject(rec, 'empty text');
          continue;
        }
        const parsed = parseLabel(fields[cols.label], labelRule);
        if (!parsed.ok) {
          reject(rec, parsed.reason);
          continue;
        }
        if (isDeleted(id)) {
          previouslyDeleted += 1;
          continue;
        }
        accepted += 1;
        labelCounts[parsed.label]! += 1;
        const flags = flagGroups(text, fields);
        for (const g of binaryGroups) groupCounts[g]! += flags[g] ?? 0;
        for (const g of manyValued) {
          const c = valueCounts[g.name]!;
          c[flags[g.name]!] = (c[flags[g.name]!] ?? 0) + 1;
        }
        batch.push({ id, text, label: parsed.label, groups: flags, place: placeRecord(id, assign) });
        if (batch.length >= BATCH_ROWS) await submitBatch();
      }
    }
    await submitBatch();
    // Invalid rows are named before "no data rows": a file whose rows all fail to parse (an unclosed
    // quote swallows the rest of the file) has data rows, just none that parse.
    const labelProblem = cols ? labelValues.problem(labelRule, cols.label) : null;
    if (labelProblem) throw inputError(`${o.input}: ${labelProblem}`);
    const shown = () => `${invalid.slice(0, 5).map((r) => `${rowRef(r)}: ${r.reason}`).join('; ')}${invalidCount > 5 ? '; …' : ''}`;
    if (invalidCount > 0 && !o.skipInvalid)
      throw inputError(`${o.input}: ${invalidCount} invalid row${invalidCount > 1 ? 's' : ''} (${shown()}); fix them or pass --skip-invalid`);
    if (!cols) throw inputError(`${o.input}: no data rows${invalidCount > 0 ? ` that are valid (${invalidCount} invalid: ${shown()})` : ''}`);
    if (labelCounts[0] === 0 || labelCounts[1] === 0)
      throw inputError(`${o.input}: label column '${cols.label}' has a single class (${labelCounts[1]} positive, ${labelCounts[0]} negative); a binary label is needed`);
    for (let s = 0; s < o.shards; s++) {
      shardWriters[s]!.write(shardRows[s]!.take());
      for (let r = 0; r < o.slices; r++) flushDigests(s, r);
    }
    testWriter.write(testRows.take());
    calWriter?.write(calRows.take());
  } catch (err) {
    await Promise.all(allWriters.map((w) => w.abort()));
    throw err;
  }

  const written: WrittenFile[] = [];
  try {
    for (const w of allWriters) written.push(await w.finish());
  } catch (err) {
    await Promise.all(allWriters.map((w) => w.abort()));
    await Promise.all(written.map((f) => fsp.rm(path.join(ws.shardsDir, f.file), { force: true })));
    throw err;
  }
  crashPoint('ingest:files-written');
  const shardInfos: ShardInfo[] = written.slice(0, o.shards).map((f, s) => ({
    ...f,
    shard: s,
    slices: sliceHash[s]!.map((h, r) => ({ slice: r, rows: sliceCount[s]![r]!, hash: h.digest('hex') })),
  }));
  const testFile = written[o.shards]!;
  const calFile = calWriter ? written[o.shards + 1]! : null;
  const state: State = {
    formatVersion: 1,
    dataset: {
      source: path.resolve(o.input),
      format,
      fingerprint,
      rows,
      accepted,
      skipped: invalidCount,
      ingestedAt: new Date().toISOString(),
    },
    config: {
      shards: o.shards,
      slices: o.slices,
      seed: o.seed,
      test: o.test,
      calibration: o.calibration,
      idCol: cols.id,
      textCol: cols.text,
      labelCol: cols.label,
      labelRule,
      features,
      groups,
    },
    shards: shardInfos,
    heldout: { test: testFile, calibration: calFile },
    training: null,
    models: [],
    // Deletion numbering and model versions continue: the receipts already issued refer to both.
    deletions: previous?.deletions ?? 0,
    ...(previous?.lastReceiptSha256 !== undefined ? { lastReceiptSha256: previous.lastReceiptSha256 } : {}),
    ...(retiredModelVersion(previous) !== undefined ? { retiredModelVersion: retiredModelVersion(previous) } : {}),
    revision: (previous?.revision ?? 0) + 1,
    ...(store ? { store } : {}),
  };
  try {
    await pausePoint('ingest:files-written');
    await syncBeforeCommit(ws, state);
    await saveState(ws, state);
  } catch (err) {
    // Nothing is committed (a failed upload, Ctrl-C, a lost lock): the new files go, the previous state
    // (if any) stays as it was. Files shared with the previous state (same content) are kept.
    const keep = referencedShardFiles(previous);
    if (await holdsLease(ws)) await Promise.all(written.filter((f) => !keep.has(f.file)).map((f) => fsp.rm(path.join(ws.shardsDir, f.file), { force: true })));
    throw err;
  }
  crashPoint('ingest:committed');
  await garbageCollect(ws, state);
  return {
    fingerprint,
    rows,
    accepted,
    skipped: invalidCount,
    previouslyDeleted,
    invalid,
    shards: shardInfos.map((s) => ({ shard: s.shard, rows: s.rows, slices: s.slices.map((x) => x.rows) })),
    test: testFile.rows,
    calibration: calFile?.rows ?? 0,
    columns: cols,
    groups: groupCounts,
    groupValues: Object.fromEntries(manyValued.map((g) => [g.name, Object.fromEntries(g.values.map((v, code) => [v, valueCounts[g.name]![code] ?? 0]))])),
    warnings: sizeWarnings(shardInfos.map((s) => s.rows), testFile.rows),
    seconds: (performance.now() - t0) / 1000,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
}

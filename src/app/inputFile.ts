/**
 * Reads an external file (for predict, evaluate, or a report's evaluation set) into columnar rows with
 * the workspace's feature hashing, label rule and group definitions. Small enough files only: the
 * result is held in memory.
 */
import { FeaturePool, type CsrBatch } from '../features/pool.js';
import { featurize } from '../models/ensemble.js';
import { groupFlagger } from '../data/groups.js';
import { parseLabel } from '../data/labels.js';
import { detectFormat, readRecordBatches, rowRef } from '../data/readers.js';
import { RowsBuilder, type Rows } from '../data/shardFile.js';
import type { LabelRule, State } from '../state/manifest.js';
import { errorMessage, inputError } from '../util/errors.js';
import { findColumn, ID_CANDIDATES, LABEL_CANDIDATES, requireColumn, TEXT_CANDIDATES } from '../data/columns.js';
import { rule, type OptionSpec } from './options.js';

/** Where a file's columns are, for files other than the ingested one; each defaults as at ingest. */
export interface FileColumns {
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
  /** 'csv', 'jsonl', 'parquet' or 'arrow' (default: from the file's extension). */
  format?: string;
}

/**
 * Columns as a use case reads them: `flagPrefix` is the prefix of the options its messages name ('eval-'
 * for report's --eval file, whose columns are --eval-text-col, …), so that a hint names a flag that exists.
 */
export interface ReadColumns extends FileColumns {
  flagPrefix?: string;
}

/** The rule for a `FileColumns` value, for use cases that take one. */
export const FILE_COLUMNS: OptionSpec<FileColumns> = {
  idCol: rule.opt('string'),
  textCol: rule.opt('string'),
  labelCol: rule.opt('string'),
  positiveValues: rule.opt('string[]'),
  labelThreshold: rule.opt('number'),
  format: rule.opt('string'),
};

/**
 * `requireGroupColumns`: the caller needs the sensitive attributes (fair prediction, a fairness report), so
 * a group defined by a column that this file lacks is an error rather than "nobody is in the group".
 */
export async function readInputRows(state: State, file: string, cols: ReadColumns, labelled: boolean, requireGroupColumns = false): Promise<Rows> {
  const records = await readInputRecords(state, file, cols, labelled, requireGroupColumns);
  const features = await featurizeTexts(records.map((r) => r.text), state.config.features);
  const b = new RowsBuilder(state.config.groups.map((g) => g.name));
  records.forEach((r, i) => {
    const s = features.offsets[i]!;
    const e = features.offsets[i + 1]!;
    b.push({ ...r, slice: -1, indices: features.indices.subarray(s, e), values: features.values.subarray(s, e) });
  });
  return b.take();
}

/** One row of an input file, before feature hashing. */
export interface InputRecord {
  id: string;
  text: string;
  label: number;
  groups: Record<string, number>;
}

/** A file's rows as readInputRows reads and checks them, without hashing their texts (for a caller that hashes them elsewhere). */
export async function readInputRecords(state: State, file: string, cols: ReadColumns, labelled: boolean, requireGroupColumns = false): Promise<InputRecord[]> {
  const records: InputRecord[] = [];
  for await (const batch of readInputRecordBatches(state, file, cols, labelled, requireGroupColumns)) for (const r of batch) records.push(r);
  return records;
}

/**
 * The same records, a batch at a time in file order, as the reader yields them: a caller can work on a
 * batch while the reader, on its own thread for CSV (see readsOnItsOwnThread), parses the next ones. A bad
 * row throws when its batch is reached, after the batches before it were yielded.
 */
export async function* readInputRecordBatches(state: State, file: string, cols: ReadColumns, labelled: boolean, requireGroupColumns = false): AsyncGenerator<InputRecord[]> {
  const cfg = state.config;
  const rule: LabelRule = cols.positiveValues
    ? { kind: 'positive-values', values: cols.positiveValues }
    : cols.labelThreshold !== undefined
      ? { kind: 'threshold', threshold: cols.labelThreshold }
      : cols.labelCol !== undefined
        ? { kind: 'auto' }
        : cfg.labelRule;
  const prefix = `--${cols.flagPrefix ?? ''}`;
  const labelFlags = { positiveValues: `${prefix}positive-values`, labelThreshold: `${prefix}label-threshold` };
  // Without fairness, many-valued attributes are not computed (an unseen value or topic combination would be refused).
  const flag = groupFlagger(requireGroupColumns ? cfg.groups : cfg.groups.filter((g) => g.kind !== 'values'));
  let names: { id: string | null; text: string; label: string | null } | null = null;
  for await (const batch of readRecordBatches(file, detectFormat(file, cols.format))) {
    const records: InputRecord[] = [];
    for (const rec of batch) {
      if (rec.error !== undefined) throw inputError(`${file}: ${rowRef(rec)} ${rec.error}`);
      if (!names) {
        const keys = Object.keys(rec.fields);
        if (requireGroupColumns)
          for (const g of cfg.groups)
            if ((g.kind === 'column' || g.kind === 'values') && g.column !== undefined && !keys.includes(g.column)) throw inputError(`${file}: sensitive-group column '${g.column}' not found; fairness needs it`);
        // The workspace's own column names first, then the usual ones.
        names = {
          id: findColumn(keys, cols.idCol, [cfg.idCol, ...ID_CANDIDATES], 'id', file),
          text: requireColumn(keys, cols.textCol, [cfg.textCol, ...TEXT_CANDIDATES], 'text', file, `${prefix}text-col`),
          label: labelled ? requireColumn(keys, cols.labelCol, [cfg.labelCol, ...LABEL_CANDIDATES], 'label', file, `${prefix}label-col`) : null,
        };
      }
      const rawText = rec.fields[names.text];
      const text = rawText === null || rawText === undefined ? '' : String(rawText);
      let label = 0;
      if (names.label !== null) {
        const parsed = parseLabel(rec.fields[names.label], rule, labelFlags);
        if (!parsed.ok) throw inputError(`${file}: ${rowRef(rec)}: ${parsed.reason}`);
        label = parsed.label;
      }
      const id = names.id === null ? String(rec.row) : String(rec.fields[names.id] ?? rec.row);
      let groups: Record<string, number>;
      try {
        groups = flag(text, rec.fields);
      } catch (err) {
        throw inputError(`${file}: ${rowRef(rec)}: ${errorMessage(err)}`, err);
      }
      records.push({ id, text, label, groups });
    }
    yield records;
  }
  if (!names) throw inputError(`${file}: no data rows`);
}

/** Hashes texts inline when few, on all cores when many (hashing bounds prediction throughput). */
export async function featurizeTexts(texts: readonly string[], cfg: State['config']['features']): Promise<CsrBatch> {
  if (texts.length < PARALLEL_FROM) return featurize(texts, cfg);
  const pool = new FeaturePool(cfg);
  try {
    return await pool.featurizeAll(texts);
  } finally {
    await pool.close();
  }
}

const PARALLEL_FROM = 8192;

export function loadLabelledFile(state: State, file: string, cols: ReadColumns, requireGroupColumns = false): Promise<Rows> {
  return readInputRows(state, file, cols, true, requireGroupColumns);
}

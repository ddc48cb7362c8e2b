/**
 * Streaming readers for the input formats. Each yields one RawRecord per data row, in file order,
 * with a 1-based row number (the header is not counted) so that errors can name the row.
 * None of them holds the whole file in memory: CSV and JSONL stream line by line, Parquet row group
 * by row group, Arrow IPC record batch by record batch.
 */
import { createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { inputError, errorMessage } from '../util/errors.js';
import { utf8Stream } from './csvReader.js';
import { readCsvOffThread } from './csvThread.js';

export type InputFormat = 'csv' | 'jsonl' | 'parquet' | 'arrow';

/**
 * `row` is the data row (1-based, the header not counted, empty lines not counted); `line` is the
 * file line where the row starts, for formats with lines (CSV, JSON Lines).
 */
export type RawRecord =
  | { row: number; line?: number; fields: Record<string, unknown>; error?: undefined }
  | { row: number; line?: number; fields?: undefined; error: string };

/** How messages name a row: "row 5 (line 7)", or "row 5" where a format has no lines. */
export function rowRef(rec: { row: number; line?: number }): string {
  return rec.line === undefined ? `row ${rec.row}` : `row ${rec.row} (line ${rec.line})`;
}

export function detectFormat(file: string, explicit?: string): InputFormat {
  if (explicit) {
    if (['csv', 'jsonl', 'parquet', 'arrow'].includes(explicit)) return explicit as InputFormat;
    throw inputError(`--format must be csv, jsonl, parquet or arrow, got '${explicit}'`);
  }
  const ext = path.extname(file).toLowerCase();
  if (ext === '.csv' || ext === '.tsv' || ext === '.txt') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson' || ext === '.json') return 'jsonl';
  if (ext === '.parquet' || ext === '.pq') return 'parquet';
  if (ext === '.arrow' || ext === '.ipc' || ext === '.feather' || ext === '.arrows') return 'arrow';
  throw inputError(`${file}: cannot tell the format from the extension '${ext}'; pass --format csv|jsonl|parquet|arrow`);
}


/**
 * Whether readRecordBatches parses this format on a thread of its own (CSV: csvThread.ts), so that the
 * calling thread is free, between batches, for work on the records already read.
 */
export function readsOnItsOwnThread(format: InputFormat): boolean {
  return format === 'csv';
}

/**
 * Reads a file's records in batches, in file order. Batches, because a million-row ingest paid more
 * for a million async-iteration steps (a promise and a result object each) than for some of its work.
 */
export async function* readRecordBatches(file: string, format: InputFormat): AsyncGenerator<RawRecord[]> {
  try {
    const st = await fsp.stat(file);
    if (!st.isFile()) throw new Error('not a regular file');
  } catch (err) {
    throw inputError(`${file}: cannot read input file (${errorMessage(err)})`);
  }
  switch (format) {
    case 'csv':
      yield* readCsvOffThread(file);
      return;
    case 'jsonl':
      yield* batched(readJsonl(file));
      return;
    case 'parquet':
      yield* batched(readParquet(file));
      return;
    case 'arrow':
      yield* batched(readArrow(file));
      return;
  }
}

async function* batched(records: AsyncGenerator<RawRecord>, size = 1024): AsyncGenerator<RawRecord[]> {
  let batch: RawRecord[] = [];
  for await (const r of records) {
    batch.push(r);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

async function* readJsonl(file: string): AsyncGenerator<RawRecord> {
  const lines = createInterface({ input: utf8Stream(file).setEncoding('utf8'), crlfDelay: Infinity });
  let row = 0;
  let line = 0;
  for await (let text of lines) {
    line += 1;
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.trim() === '') continue;
    row += 1;
    try {
      const value: unknown = JSON.parse(text);
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        yield { row, line, error: 'is not a JSON object' };
      } else {
        yield { row, line, fields: value as Record<string, unknown> };
      }
    } catch (err) {
      yield { row, line, error: `is not valid JSON (${errorMessage(err)})` };
    }
  }
}

// The Parquet and Arrow libraries are loaded only for files of their format: together they are ~200
// modules, most of the start-up of a command that reads a CSV file.
async function* readParquet(file: string): AsyncGenerator<RawRecord> {
  const { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } = await import('hyparquet');
  let buffer;
  let metadata;
  try {
    buffer = await asyncBufferFromFile(file);
    metadata = await parquetMetadataAsync(buffer);
  } catch (err) {
    throw inputError(`${file}: not a valid Parquet file (${errorMessage(err)})`, err);
  }
  let row = 0;
  let start = 0;
  for (const group of metadata.row_groups) {
    const end = start + Number(group.num_rows);
    let objects: Record<string, unknown>[];
    try {
      objects = await parquetReadObjects({ file: buffer, metadata, rowStart: start, rowEnd: end });
    } catch (err) {
      throw inputError(`${file}: Parquet row group starting at row ${start + 1} is unreadable (${errorMessage(err)})`, err);
    }
    for (const fields of objects) {
      row += 1;
      yield { row, fields };
    }
    start = end;
  }
}

async function* readArrow(file: string): AsyncGenerator<RawRecord> {
  const { RecordBatchReader } = await import('apache-arrow');
  let row = 0;
  try {
    const reader = await RecordBatchReader.from(createReadStream(file));
    for await (const batch of reader) {
      const names = batch.schema.fields.map((f) => f.name);
      const columns = names.map((n) => batch.getChild(n));
      for (let i = 0; i < batch.numRows; i++) {
        row += 1;
        const fields: Record<string, unknown> = {};
        for (let c = 0; c < names.length; c++) fields[names[c]!] = columns[c]?.get(i);
        yield { row, fields };
      }
    }
    if (row === 0 && (await fsp.stat(file)).size > 0 && !reader.schema) throw new Error('no schema');
  } catch (err) {
    throw inputError(`${file}: not a valid Arrow IPC file, or truncated after row ${row} (${errorMessage(err)})`, err);
  }
}

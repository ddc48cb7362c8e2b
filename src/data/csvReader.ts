/**
 * The CSV reader (csv-parse, with rows and lines numbered for messages) and the UTF-8 check every text
 * format goes through. Kept apart from the other readers so that a worker thread can parse a CSV file
 * while the main thread ingests its rows, without loading Arrow or Parquet.
 */
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse';
import { Transform, type Readable } from 'node:stream';
import { inputError, errorMessage, SisaError } from '../util/errors.js';
import type { RawRecord } from './readers.js';
import { fieldsBuilder } from './fields.js';

/**
 * Passes bytes through unchanged while checking they are valid UTF-8: Node would otherwise replace
 * bad bytes with U+FFFD silently, and the text stored in a shard would not be the text in the file.
 */
function utf8Check(file: string): Transform {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let line = 1;
  const fail = (at: number) => inputError(`${file}: invalid UTF-8 in line ${at}; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)`);
  // '\n' never occurs inside a multi-byte sequence, so the chunk's lines can be checked one by one.
  const firstBadLine = (chunk: Buffer): number => {
    let start = 0;
    for (let l = line; start <= chunk.length; l++) {
      const nl = chunk.indexOf(10, start);
      const end = nl === -1 ? chunk.length : nl;
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(chunk.subarray(start, end));
      } catch {
        return l;
      }
      if (nl === -1) break;
      start = nl + 1;
    }
    return line;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      try {
        decoder.decode(chunk, { stream: true });
      } catch {
        cb(fail(firstBadLine(chunk)));
        return;
      }
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) line++;
      cb(null, chunk);
    },
    flush(cb) {
      try {
        decoder.decode();
        cb();
      } catch {
        cb(fail(line));
      }
    },
  });
}

export function utf8Stream(file: string): Transform {
  const check = utf8Check(file);
  createReadStream(file).on('error', (e) => check.destroy(e)).pipe(check);
  return check;
}

/** csv-parse's messages end in "on line N" / "at line N"; the line is stated once, by the caller. */
function withoutLine(message: string): string {
  return message.replace(/,? (at|on) line \d+/, '');
}

/** A skipped CSV row, with the parser's error code (an unclosed quote needs its line looked up). */
type SkippedRow = { row: number; line: number; error: string; code?: string };

/** A data row of a CSV file as its fields, in the header's column order; or why it was skipped. */
export type CsvRow = { row: number; line: number; values: string[]; error?: undefined } | { row: number; line: number; values?: undefined; error: string };

/**
 * A CSV file's columns: its header's names (trimmed), each once, in the order they first appear, and for
 * each the field a row's value comes from (a name that repeats takes its last column's field).
 */
export interface CsvColumns {
  names: string[];
  fieldOf: number[];
  /** The header's names (trimmed) by field, repeats included. */
  header: string[];
}

function csvColumns(fields: readonly string[]): CsvColumns {
  const header = fields.map((h) => h.trim());
  const last = new Map<string, number>();
  header.forEach((name, i) => last.set(name, i));
  const names = [...last.keys()];
  return { names, fieldOf: names.map((n) => last.get(n)!), header };
}

/**
 * csv-parse's message for a skipped row as it said it with its `columns` option, which this reader no
 * longer passes (see readCsvRows): a stray quote names its field by the header's name (or null past the
 * header's end), not by its position.
 */
function asWithColumns(err: Error & { code?: string }, header: readonly string[]): string {
  if (err.code === 'INVALID_OPENING_QUOTE')
    return err.message.replace(/^Invalid Opening Quote: a quote is found on field (\d+) /, (_, i: string) => `Invalid Opening Quote: a quote is found on field ${JSON.stringify(header[Number(i)] ?? null)} `);
  return err.message;
}

/**
 * Reads a CSV (or TSV) file on the calling thread, in batches of the records the parser has ready: an
 * async step per record cost more than a tenth of the parsing thread's time at a million rows.
 * `readRecordBatches` runs it on a worker thread.
 */
export async function* readCsvRecordBatches(file: string): AsyncGenerator<RawRecord[]> {
  let build: ReturnType<typeof fieldsBuilder> | null = null;
  for await (const { columns, rows } of readCsvRows(file))
    // As csv-parse's own records with a `columns` option were: the header's names in order, a repeated
    // name holding its last column's value (see CsvColumns), each an own property.
    yield rows.map((r): RawRecord => (r.error !== undefined ? { row: r.row, line: r.line, error: r.error } : { row: r.row, line: r.line, fields: (build ??= fieldsBuilder(columns!.names))(r.values) }));
}

/**
 * The rows of a CSV file as field arrays (see CsvColumns for the order), in batches, with the file's
 * columns (null only while no header was read). csv-parse returns arrays and the header is taken here:
 * with its `columns` option it built an object per record through Object.defineProperty, which was a
 * third of the parse (Davidson's 24,783 rows, csv-parse alone: 171-289 ms with objects, 108-153 ms as
 * arrays). Rows, lines, skipped rows and their messages are as they were with that option.
 */
export async function* readCsvRows(file: string): AsyncGenerator<{ columns: CsvColumns | null; rows: CsvRow[] }> {
  const delimiter = path.extname(file).toLowerCase() === '.tsv' ? '\t' : ',';
  // Rows are numbered inside the parser's own callbacks, in the order the parser meets them. It reports
  // a row it skips synchronously while it parses a chunk, before the rows that precede it in that chunk
  // reach the consumer: numbering them at consumption shifted those rows by one (and with no id column
  // a row number is the record's id, so `delete --id N` removed another record).
  let dataRows = 0;
  // One row can raise two errors (a stray quote, then the wrong field count at its end); it is still
  // one row. csv-parse collects each row's fields in a fresh array, so the array tells rows apart.
  let failedRecord: unknown = null;
  let lastLine = 1; // where the last good row (at first the header) ended
  let columns: CsvColumns | null = null;
  const skipped: SkippedRow[] = [];
  const parser = parseCsv({
    bom: true,
    delimiter,
    skip_empty_lines: true,
    // Files stitched together from several sources mix line endings; accept both everywhere.
    record_delimiter: ['\r\n', '\n'],
    // A row that does not parse (wrong column count, stray quote) is reported and counted, not fatal
    // by itself: the ingest decides whether invalid rows refuse the whole file.
    skip_records_with_error: true,
    // Row lengths are checked against the header below, with the message csv-parse gave with `columns`.
    relax_column_count: true,
    on_skip: (err: (Error & { code?: string; lines?: number }) | undefined) => {
      if (!err) return undefined;
      const record = (parser as unknown as { state: { record: string[] } }).state.record;
      if (record === failedRecord) return undefined;
      // A header that does not parse names no columns: the file is refused, whatever --skip-invalid says.
      // (With csv-parse's columns option it became row 1's error, its fields the names all the same, and
      // the first data row after it was dropped without a word.)
      if (columns === null) {
        // An unclosed quote is found at the end of the file, whose line csv-parse then gives.
        const where = err.code === 'CSV_QUOTE_NOT_CLOSED' ? 'the header' : `the header (line ${err.lines ?? 1})`;
        const reason = err.code === 'CSV_QUOTE_NOT_CLOSED' ? 'a quoted field that starts in it is never closed' : withoutLine(err.message);
        throw inputError(`${file}: ${where} does not parse as CSV (${reason}); the first line must name the columns`);
      }
      failedRecord = record;
      dataRows += 1;
      const reason = withoutLine(asWithColumns(err, (columns as CsvColumns).header));
      skipped.push({ row: dataRows, line: Math.max(err.lines ?? lastLine, lastLine + 1), error: `does not parse as CSV (${reason})`, code: err.code });
      return undefined;
    },
  });
  // Good rows are numbered where the parser hands them over: it calls its stream's push synchronously
  // while it parses, when its own line counter stands at the row's last line. (The on_record hook would
  // do the same, but it builds an info object per row, which made reading 40% slower.)
  const push = parser.push.bind(parser);
  parser.push = (fields: string[] | null): boolean => {
    if (fields === null) return push(null);
    const cols = columns;
    if (cols === null) {
      columns = csvColumns(fields);
      return true;
    }
    dataRows += 1;
    if (fields.length !== cols.header.length) {
      // As csv-parse said it with the columns option: "Invalid Record Length: columns length is N, got M".
      skipped.push({ row: dataRows, line: Math.max(parser.info.lines, lastLine + 1), error: `does not parse as CSV (Invalid Record Length: columns length is ${cols.header.length}, got ${fields.length})` });
      return true;
    }
    lastLine = parser.info.lines;
    const values = cols.fieldOf.map((i) => fields[i]!);
    // A quoted field may span lines, and a person looks for the line where the row starts.
    return push({ row: dataRows, line: lastLine - newlinesIn(values), values } satisfies CsvRow);
  };
  const release = async (s: SkippedRow): Promise<CsvRow> => {
    if (s.code !== 'CSV_QUOTE_NOT_CLOSED') return { row: s.row, line: s.line, error: s.error };
    // The parser only knows that the file ended inside quotes; the useful line is where they opened.
    const opened = await unclosedQuoteLine(file, lastLine + 1, delimiter).catch(() => null);
    return { row: s.row, line: opened ?? s.line, error: 'does not parse as CSV (a quoted field that starts on this line is never closed)' };
  };
  const input = utf8Stream(file);
  input.on('error', (e) => parser.destroy(e)).pipe(parser);
  try {
    for await (const ready of readableBatches<CsvRow & { values: string[] }>(parser)) {
      const batch: CsvRow[] = [];
      for (const record of ready) {
        while (skipped.length && skipped[0]!.row < record.row) batch.push(await release(skipped.shift()!));
        batch.push(record);
      }
      yield { columns, rows: batch };
    }
  } catch (err) {
    if (err instanceof SisaError) throw err;
    throw inputError(`${file}: CSV parse error after row ${dataRows}: ${errorMessage(err)}`, err);
  } finally {
    // A consumer that stops early (or an error) leaves the file open otherwise.
    input.destroy();
  }
  const rest: CsvRow[] = [];
  while (skipped.length) rest.push(await release(skipped.shift()!));
  if (rest.length) yield { columns, rows: rest };
}

/**
 * The objects of an object-mode stream, as arrays of those it has buffered each time it is readable.
 * Stopping early (a consumer that breaks off, an error) destroys the stream.
 */
async function* readableBatches<T>(stream: Readable): AsyncGenerator<T[]> {
  let failure: { err: unknown } | null = null;
  let ended = false;
  let wake: (() => void) | null = null;
  const onReadable = () => wake?.();
  const onEnd = () => {
    ended = true;
    wake?.();
  };
  const onError = (err: unknown) => {
    failure = { err };
    wake?.();
  };
  // Destroyed without an error (nothing does that today): the records stop short, which must not pass as the end.
  const onClose = () => {
    if (!ended && !failure) failure = { err: new Error('the CSV stream closed before its end') };
    wake?.();
  };
  stream.on('readable', onReadable).on('end', onEnd).on('error', onError).on('close', onClose);
  try {
    for (;;) {
      if (failure) throw (failure as { err: unknown }).err;
      const batch: T[] = [];
      for (let x = stream.read() as T | null; x !== null; x = stream.read() as T | null) batch.push(x);
      if (batch.length) yield batch;
      else if (ended) return;
      else {
        // Events are emitted on later ticks, so none can slip in between the read above and this wait.
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
    }
  } finally {
    stream.off('readable', onReadable).off('end', onEnd).off('error', onError).off('close', onClose);
    if (!ended) stream.destroy();
  }
}

function newlinesIn(values: readonly string[]): number {
  let n = 0;
  for (const v of values) {
    if (!v.includes('\n')) continue;
    for (let i = v.indexOf('\n'); i !== -1; i = v.indexOf('\n', i + 1)) n++;
  }
  return n;
}

/**
 * The line where the quoted field that is still open at the end of the file starts, reading from
 * `fromLine` (the line after the last good row). Only runs on that error, so the file is read again.
 */
async function unclosedQuoteLine(file: string, fromLine: number, delimiter: string): Promise<number | null> {
  let line = 1;
  let atFieldStart = true;
  let quoting = false;
  let quoteSeen = false; // inside quotes, a quote that closes the field or starts an escaped ""
  let openedOn = 0;
  for await (const chunk of createReadStream(file, { encoding: 'utf8' }) as AsyncIterable<string>) {
    for (const c of chunk) {
      if (line < fromLine) {
        if (c === '\n') line++;
        continue;
      }
      if (quoting) {
        if (quoteSeen) {
          quoteSeen = false;
          if (c === '"') continue; // an escaped quote
          quoting = false; // the field closed; this character is read as outside quotes
        } else {
          if (c === '"') quoteSeen = true;
          else if (c === '\n') line++;
          continue;
        }
      }
      if (c === '"' && atFieldStart) {
        quoting = true;
        openedOn = line;
        atFieldStart = false;
      } else if (c === delimiter) atFieldStart = true;
      else if (c === '\n') {
        line++;
        atFieldStart = true;
      } else if (c !== '\r') atFieldStart = false;
    }
  }
  return quoting && !quoteSeen ? openedOn : null;
}

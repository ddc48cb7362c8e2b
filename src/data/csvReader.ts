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

/** A skipped CSV row, with the parser's error code (an unclosed quote needs its line looked up). */
type SkippedRow = { row: number; line: number; error: string; code?: string };

/**
 * Reads a CSV (or TSV) file on the calling thread, in batches of the records the parser has ready: an
 * async step per record cost more than a tenth of the parsing thread's time at a million rows.
 * `readRecordBatches` runs it on a worker thread.
 */
export async function* readCsvRecordBatches(file: string): AsyncGenerator<RawRecord[]> {
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
  const skipped: SkippedRow[] = [];
  const parser = parseCsv({
    columns: (header: string[]) => header.map((h) => h.trim()),
    bom: true,
    delimiter,
    skip_empty_lines: true,
    // Files stitched together from several sources mix line endings; accept both everywhere.
    record_delimiter: ['\r\n', '\n'],
    // A row that does not parse (wrong column count, stray quote) is reported and counted, not fatal
    // by itself: the ingest decides whether invalid rows refuse the whole file.
    skip_records_with_error: true,
    on_skip: (err: (Error & { code?: string; lines?: number }) | undefined) => {
      if (!err) return undefined;
      const record = (parser as unknown as { state: { record: unknown } }).state.record;
      if (record === failedRecord) return undefined;
      failedRecord = record;
      dataRows += 1;
      // csv-parse's messages end in "on line N" / "at line N"; the line is stated once, by the caller.
      const reason = err.message.replace(/,? (at|on) line \d+/, '');
      skipped.push({ row: dataRows, line: Math.max(err.lines ?? lastLine, lastLine + 1), error: `does not parse as CSV (${reason})`, code: err.code });
      return undefined;
    },
  });
  // Good rows are numbered where the parser hands them over: it calls its stream's push synchronously
  // while it parses, when its own line counter stands at the row's last line. (The on_record hook would
  // do the same, but it builds an info object per row, which made reading 40% slower.)
  const push = parser.push.bind(parser);
  parser.push = (fields: Record<string, unknown> | null): boolean => {
    if (fields === null) return push(null);
    dataRows += 1;
    lastLine = parser.info.lines;
    // A quoted field may span lines, and a person looks for the line where the row starts.
    return push({ row: dataRows, line: lastLine - newlinesIn(fields), fields });
  };
  const release = async (s: SkippedRow): Promise<RawRecord> => {
    if (s.code !== 'CSV_QUOTE_NOT_CLOSED') return { row: s.row, line: s.line, error: s.error };
    // The parser only knows that the file ended inside quotes; the useful line is where they opened.
    const opened = await unclosedQuoteLine(file, lastLine + 1, delimiter).catch(() => null);
    return { row: s.row, line: opened ?? s.line, error: 'does not parse as CSV (a quoted field that starts on this line is never closed)' };
  };
  const input = utf8Stream(file);
  input.on('error', (e) => parser.destroy(e)).pipe(parser);
  try {
    for await (const ready of readableBatches<RawRecord & { row: number }>(parser)) {
      const batch: RawRecord[] = [];
      for (const record of ready) {
        while (skipped.length && skipped[0]!.row < record.row) batch.push(await release(skipped.shift()!));
        batch.push(record);
      }
      yield batch;
    }
  } catch (err) {
    if (err instanceof SisaError) throw err;
    throw inputError(`${file}: CSV parse error after row ${dataRows}: ${errorMessage(err)}`, err);
  } finally {
    // A consumer that stops early (or an error) leaves the file open otherwise.
    input.destroy();
  }
  const rest: RawRecord[] = [];
  while (skipped.length) rest.push(await release(skipped.shift()!));
  if (rest.length) yield rest;
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

function newlinesIn(fields: Record<string, unknown>): number {
  let n = 0;
  for (const v of Object.values(fields)) {
    if (typeof v !== 'string' || !v.includes('\n')) continue;
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

/**
 * Parses a CSV file on a worker thread and hands its records to the caller in order. Parsing is half
 * of an ingest's work (csv-parse reads a character at a time); on its own thread it runs beside the
 * main thread's checks, placement and shard writing instead of before them.
 *
 * Records cross in column-major batches (row and line numbers in typed arrays, the field values in one
 * flat string array), which are cheaper to copy between threads than one object per record. The
 * worker keeps at most a few batches ahead of the consumer, so memory stays flat in the file size.
 * Everything the reader does (row and line numbering, skipped rows, its errors) is the thread-local
 * reader's, unchanged: errors are sent back and thrown here as the same SisaError.
 */
import { Worker } from 'node:worker_threads';
import { SisaError, type ErrorCode } from '../util/errors.js';
import type { RawRecord } from './readers.js';
import { fieldsBuilder } from './fields.js';

/** One batch of records, in file order. Record i is an error when `errors[i]` is a string. */
export interface CsvBatch {
  type: 'batch';
  names: string[];
  rows: Int32Array;
  lines: Int32Array;
  /** Row-major: record i's value for names[c] is values[i * names.length + c] (records with errors take no slots). */
  values: string[];
  errors: (string | null)[];
}
export type CsvWorkerMessage = CsvBatch | { type: 'done' } | { type: 'error'; message: string; code: ErrorCode | null };
/** The consumer's acknowledgement of one batch: the worker may send one more. */
export type CsvWorkerAck = { type: 'ack' };

/** Records per batch, and batches the worker may send ahead of the consumer. */
export const CSV_BATCH = 2048;
export const CSV_AHEAD = 4;

/** The file's records, one batch per worker batch. */
export async function* readCsvOffThread(file: string): AsyncGenerator<RawRecord[]> {
  const worker = new Worker(new URL('./csvWorker.js', import.meta.url), { workerData: { file } });
  const queue: CsvWorkerMessage[] = [];
  let wake: (() => void) | null = null;
  let failure: Error | null = null;
  worker.on('message', (m: CsvWorkerMessage) => {
    queue.push(m);
    wake?.();
  });
  worker.on('error', (err) => {
    failure = err;
    wake?.();
  });
  worker.on('exit', () => wake?.());
  try {
    for (;;) {
      while (queue.length === 0 && !failure) await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
      if (failure) throw failure;
      const m = queue.shift()!;
      if (m.type === 'done') return;
      if (m.type === 'error') {
        throw m.code ? new SisaError(m.code, m.message) : new Error(m.message);
      }
      worker.postMessage({ type: 'ack' } satisfies CsvWorkerAck);
      const { names, rows, lines, values, errors } = m;
      const width = names.length;
      const build = fieldsBuilder(names); // the fields as the reader on the calling thread builds them
      let at = 0;
      const records: RawRecord[] = new Array(rows.length);
      for (let i = 0; i < rows.length; i++) {
        const error = errors[i];
        if (typeof error === 'string') {
          records[i] = { row: rows[i]!, line: lines[i]!, error };
          continue;
        }
        records[i] = { row: rows[i]!, line: lines[i]!, fields: build(values, at) };
        at += width;
      }
      yield records;
    }
  } finally {
    // Also when the consumer stopped early (an error, Ctrl-C): the worker must not keep reading. A
    // worker that is done still listens for acknowledgements, which would keep the process alive.
    await worker.terminate();
  }
}

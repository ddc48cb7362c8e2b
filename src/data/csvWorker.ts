/** Worker-thread entry point of readCsvOffThread: runs the CSV reader and posts its records in batches. */
import { parentPort, workerData } from 'node:worker_threads';
import { SisaError } from '../util/errors.js';
import { readCsvRows, type CsvRow } from './csvReader.js';
import { CSV_AHEAD, CSV_BATCH, type CsvWorkerMessage } from './csvThread.js';

const port = parentPort!;
let ahead = 0;
let resume: (() => void) | null = null;
port.on('message', () => {
  ahead -= 1;
  resume?.();
});

function post(m: CsvWorkerMessage): void {
  port.postMessage(m);
}

/** The batch being gathered: rows and lines in typed arrays (whose element type never changes). */
interface Pending {
  count: number;
  rows: Int32Array;
  lines: Int32Array;
  values: string[];
  errors: (string | null)[];
}

const emptyBatch = (): Pending => ({ count: 0, rows: new Int32Array(CSV_BATCH), lines: new Int32Array(CSV_BATCH), values: [], errors: [] });

/**
 * Moves records from `from` on into the batch, until the records end or the batch is full; returns where it
 * stopped. A plain function, not a loop in run(): this thread lives for one file, with its code cold, and
 * V8 compiled run()'s loop again at each of its first surprises (three or four times on Davidson's file,
 * with a flush closure in it), on the cores that the reading and the scoring share.
 */
function gather(batch: Pending, records: readonly CsvRow[], from: number): number {
  let i = from;
  let n = batch.count;
  for (; i < records.length && n < CSV_BATCH; i++, n++) {
    const rec = records[i]!;
    batch.rows[n] = rec.row;
    batch.lines[n] = rec.line;
    if (rec.error !== undefined) {
      batch.errors.push(rec.error);
    } else {
      const { values } = rec;
      for (let j = 0; j < values.length; j++) batch.values.push(values[j]!);
      batch.errors.push(null);
    }
  }
  batch.count = n;
  return i;
}

/** Posts the batch, then waits while the consumer has CSV_AHEAD batches it has not acknowledged. */
async function send(names: string[] | null, batch: Pending): Promise<void> {
  const { count } = batch;
  // A posted subarray carries its whole buffer (CSV_BATCH entries); the reader uses only its length and entries.
  post({ type: 'batch', names: names ?? [], rows: batch.rows.subarray(0, count), lines: batch.lines.subarray(0, count), values: batch.values, errors: batch.errors });
  ahead += 1;
  while (ahead >= CSV_AHEAD) await new Promise<void>((resolve) => (resume = resolve));
  resume = null;
}

async function run(file: string): Promise<void> {
  let names: string[] | null = null;
  let batch = emptyBatch();
  for await (const ready of readCsvRows(file)) {
    names ??= ready.columns?.names ?? null;
    for (let i = 0; i < ready.rows.length; ) {
      i = gather(batch, ready.rows, i);
      if (batch.count >= CSV_BATCH) {
        await send(names, batch);
        batch = emptyBatch();
      }
    }
  }
  if (batch.count > 0) await send(names, batch);
}

const { file } = workerData as { file: string };
run(file).then(
  () => post({ type: 'done' }),
  (err: unknown) => post({ type: 'error', message: err instanceof Error ? err.message : String(err), code: err instanceof SisaError ? err.code : null }),
);

/** Worker-thread entry point of readCsvOffThread: runs the CSV reader and posts its records in batches. */
import { parentPort, workerData } from 'node:worker_threads';
import { SisaError } from '../util/errors.js';
import { readCsvRows } from './csvReader.js';
import { CSV_AHEAD, CSV_BATCH, type CsvBatch, type CsvWorkerMessage } from './csvThread.js';

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

async function run(file: string): Promise<void> {
  let names: string[] | null = null;
  let rows: number[] = [];
  let lines: number[] = [];
  let values: string[] = [];
  let errors: (string | null)[] = [];
  const flush = async () => {
    if (rows.length === 0) return;
    const batch: CsvBatch = { type: 'batch', names: names ?? [], rows: Int32Array.from(rows), lines: Int32Array.from(lines), values, errors };
    rows = [];
    lines = [];
    values = [];
    errors = [];
    ahead += 1;
    post(batch);
    while (ahead >= CSV_AHEAD) await new Promise<void>((resolve) => (resume = resolve));
    resume = null;
  };
  for await (const ready of readCsvRows(file)) {
    names ??= ready.columns?.names ?? null;
    for (const rec of ready.rows) {
      rows.push(rec.row);
      lines.push(rec.line);
      if (rec.error !== undefined) {
        errors.push(rec.error);
      } else {
        for (const v of rec.values) values.push(v);
        errors.push(null);
      }
      if (rows.length >= CSV_BATCH) await flush();
    }
  }
  await flush();
}

const { file } = workerData as { file: string };
run(file).then(
  () => post({ type: 'done' }),
  (err: unknown) => post({ type: 'error', message: err instanceof Error ? err.message : String(err), code: err instanceof SisaError ? err.code : null }),
);

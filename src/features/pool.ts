/**
 * Feature hashing on several cores. Hashing text bounds ingest and prediction throughput; this pool
 * sends batches of texts to worker threads and returns their CSR features in submission order, so a
 * caller can keep parsing the next batch while earlier ones are hashed.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { FeatureConfig } from './hashing.js';
import type { FeatureReply, FeatureRequest } from './featureWorker.js';

export interface CsrBatch {
  offsets: Int32Array;
  indices: Int32Array;
  values: Float32Array;
}

export class FeaturePool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { resolve: (r: CsrBatch) => void; reject: (e: Error) => void }>();
  private next = 0;
  private nextId = 1;

  constructor(
    private readonly cfg: FeatureConfig,
    threads = os.availableParallelism(),
  ) {
    for (let i = 0; i < Math.max(1, threads); i++) {
      const w = new Worker(new URL('./featureWorker.js', import.meta.url));
      w.on('message', (r: FeatureReply) => {
        const p = this.pending.get(r.id);
        this.pending.delete(r.id);
        p?.resolve({ offsets: r.offsets, indices: r.indices, values: r.values });
      });
      w.on('error', (err) => {
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      });
      this.workers.push(w);
    }
  }

  /** Hashes a batch on the next worker in turn; batches resolve independently, callers await in order. */
  featurize(texts: string[]): Promise<CsrBatch> {
    const id = this.nextId++;
    const worker = this.workers[this.next++ % this.workers.length]!;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, texts, cfg: this.cfg } satisfies FeatureRequest);
    });
  }

  /** Hashes many texts, split into one batch per worker, and joins the results in order. */
  async featurizeAll(texts: readonly string[], batch = 4096): Promise<CsrBatch> {
    const parts: Promise<CsrBatch>[] = [];
    for (let i = 0; i < texts.length; i += batch) parts.push(this.featurize(texts.slice(i, i + batch)));
    return concatCsr(await Promise.all(parts));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

export function concatCsr(parts: readonly CsrBatch[]): CsrBatch {
  const rows = parts.reduce((s, p) => s + p.offsets.length - 1, 0);
  const nnz = parts.reduce((s, p) => s + p.indices.length, 0);
  const offsets = new Int32Array(rows + 1);
  const indices = new Int32Array(nnz);
  const values = new Float32Array(nnz);
  let r = 0;
  let at = 0;
  for (const p of parts) {
    indices.set(p.indices, at);
    values.set(p.values, at);
    for (let i = 1; i < p.offsets.length; i++) offsets[r + i] = at + p.offsets[i]!;
    r += p.offsets.length - 1;
    at += p.indices.length;
  }
  return { offsets, indices, values };
}

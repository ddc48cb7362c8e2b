/**
 * Feature hashing on several cores. Hashing text bounds ingest and prediction throughput; this pool
 * sends batches of texts to worker threads and returns their CSR features in submission order, so a
 * caller can keep parsing the next batch while earlier ones are hashed.
 */
import os from 'node:os';
import { PooledWorkers, RequestPool } from '../util/workerPool.js';
import type { FeatureConfig } from './hashing.js';
import type { FeatureReply, FeatureRequest } from './featureWorker.js';

export interface CsrBatch {
  offsets: Int32Array;
  indices: Int32Array;
  values: Float32Array;
}

export class FeaturePool extends PooledWorkers<Omit<FeatureRequest, 'id'>, FeatureReply> {
  constructor(
    private readonly cfg: FeatureConfig,
    threads = os.availableParallelism(),
  ) {
    super(new RequestPool(new URL('./featureWorker.js', import.meta.url), threads));
  }

  /** Hashes a batch on the next worker in turn; batches resolve independently, callers await in order. */
  async featurize(texts: string[]): Promise<CsrBatch> {
    const r = await this.pool.request({ texts, cfg: this.cfg });
    return { offsets: r.offsets, indices: r.indices, values: r.values };
  }

  /** Hashes many texts, split into one batch per worker, and joins the results in order. */
  async featurizeAll(texts: readonly string[], batch = 4096): Promise<CsrBatch> {
    const parts: Promise<CsrBatch>[] = [];
    for (let i = 0; i < texts.length; i += batch) parts.push(this.featurize(texts.slice(i, i + batch)));
    return concatCsr(await Promise.all(parts));
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

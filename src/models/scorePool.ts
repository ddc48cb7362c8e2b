/**
 * Prediction on several cores for an all-linear ensemble: each worker hashes and scores whole batches,
 * so the only data crossing threads are the texts and S floats per row (not each row's features), and
 * no single thread scores everything. Batches resolve in any order; callers await them in order.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { FeatureConfig } from '../features/hashing.js';
import type { LinearMembers } from './linearScore.js';
import type { ScoreInit, ScoreReply, ScoreRequest } from './scoreWorker.js';

export class ScorePool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { resolve: (r: Float32Array) => void; reject: (e: Error) => void }>();
  private next = 0;
  private nextId = 1;

  /** `members.weights` should live in a SharedArrayBuffer: otherwise each worker gets a copy. */
  constructor(features: FeatureConfig, members: LinearMembers, threads = os.availableParallelism()) {
    const init: ScoreInit = { features, members };
    for (let i = 0; i < Math.max(1, threads); i++) {
      const w = new Worker(new URL('./scoreWorker.js', import.meta.url), { workerData: init });
      w.on('message', (r: ScoreReply) => {
        const p = this.pending.get(r.id);
        this.pending.delete(r.id);
        p?.resolve(r.probs);
      });
      w.on('error', (err) => {
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      });
      this.workers.push(w);
    }
  }

  /** Member probabilities of a batch, probs[m·n + r], computed on the next worker in turn. */
  score(texts: string[]): Promise<Float32Array> {
    const id = this.nextId++;
    const worker = this.workers[this.next++ % this.workers.length]!;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, texts } satisfies ScoreRequest);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

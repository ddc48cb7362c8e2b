/**
 * Prediction on several cores for an all-linear ensemble: each worker hashes and scores whole batches,
 * so the only data crossing threads are the texts and S floats per row (not each row's features), and
 * no single thread scores everything. Batches resolve in any order; callers await them in order.
 */
import os from 'node:os';
import { RequestPool } from '../util/workerPool.js';
import type { FeatureConfig } from '../features/hashing.js';
import { releaseScoringRegions, type LinearMembers } from './linearScore.js';
import type { ScoreInit, ScoreReply, ScoreRequest } from './scoreWorker.js';

export class ScorePool {
  private readonly pool: RequestPool<Omit<ScoreRequest, 'id'>, ScoreReply>;

  /** `members` from newLinearMembers: its memory is shared with the workers, not copied to each. */
  constructor(
    features: FeatureConfig,
    private readonly members: LinearMembers,
    threads = os.availableParallelism(),
  ) {
    const init: ScoreInit = { features, members };
    this.pool = new RequestPool(new URL('./scoreWorker.js', import.meta.url), threads, { workerData: init });
  }

  /** Member probabilities of a batch, probs[m·n + r], computed on the next worker in turn. */
  async score(texts: string[]): Promise<Float32Array> {
    return (await this.pool.request({ texts })).probs;
  }

  /** Stops the workers, and frees the scoring regions of any that was stopped in the middle of a batch. */
  async close(): Promise<void> {
    const ids = this.pool.threadIds();
    await this.pool.close();
    releaseScoringRegions(this.members, ids);
  }
}

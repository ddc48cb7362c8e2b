/**
 * The job runner interface, and the runner that needs no worker thread: kept apart from the worker pool
 * so that a deletion retrained in-process does not load the pool's queue library.
 */
import { runShardJob, type InMemoryShard, type ShardJob, type ShardJobResult } from './shardJob.js';

export interface JobRunner {
  run(job: ShardJob): Promise<ShardJobResult>;
  close(): Promise<void>;
}

/**
 * Runs jobs one after another on the calling thread: for work the fused kernel does in-process (a
 * deletion's one-shard retrain), where a worker thread and a tfjs start-up would cost more than the job.
 */
export class InProcessRunner implements JobRunner {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly backend: string,
    private readonly onProgress?: (shard: number, slice: number) => void,
  ) {}

  /** Shards already in memory, by file hash: a job for one of them uses these rows instead of reading the file. */
  private readonly inMemory = new Map<string, InMemoryShard>();

  /** Hands over the rows of a shard file the caller has just written (see InMemoryShard). */
  provide(shardSha256: string, shard: InMemoryShard): void {
    this.inMemory.set(shardSha256, shard);
  }

  run(job: ShardJob): Promise<ShardJobResult> {
    const next = this.chain.then(() =>
      runShardJob(
        job,
        { choice: this.backend, loadTf: async () => (await import('../models/backend.js')).loadBackend(this.backend) },
        (slice) => this.onProgress?.(job.shard, slice),
        this.inMemory.get(job.shardSha256),
      ),
    );
    this.chain = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    await this.chain;
  }
}

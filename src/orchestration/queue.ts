/**
 * Distributed mode: shard jobs on BullMQ (Redis) instead of local worker threads. The command that
 * needs the work (train, delete) enqueues one job per shard and waits; `sisa worker` processes on any
 * machine that sees the workspace at the same path (a shared filesystem). Jobs carry the shard's
 * content hash and the checkpoint they start from; a worker whose inputs do not match refuses the job
 * for good (no retry can fix it), other failures retry with backoff, and a worker that dies mid-job
 * leaves the job to BullMQ's stalled-job handling, which hands it to another worker. The waiting command
 * commits the manifest only after every job succeeded, exactly as in local mode.
 */
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis as IORedis } from 'ioredis';
import { SisaError, usageError } from '../util/errors.js';
import { WorkerPool, type JobRunner } from './pool.js';
import { inObjectStore, notVisibleYet, type ShardJob, type ShardJobResult } from './shardJob.js';
import { fetchJobInputs, knownStores, sweepCache, uploadCheckpoints } from './storeCache.js';
import { isTransient } from '../storage/blobStore.js';

export const DEFAULT_QUEUE_NAME = 'sisa-shards';

export interface QueueTarget {
  url: string;
  name?: string;
}

/** How long a waiting command tolerates a queue with no live worker, by default (ms). */
export const DEFAULT_QUEUE_TIMEOUT_MS = 10 * 60 * 1000;

export interface QueueRunnerOptions {
  /** Fail after this long with no worker connected to the queue (ms). */
  timeoutMs?: number;
  /** Where to say that the command is waiting for workers (stderr in the CLI). */
  onWaiting?: (line: string) => void;
}

function connect(url: string): IORedis {
  if (!/^rediss?:\/\//.test(url)) throw usageError(`--queue must be a redis:// or rediss:// URL, got '${url}'`);
  // BullMQ needs blocking commands to wait indefinitely.
  return new IORedis(url, { maxRetriesPerRequest: null, enableOfflineQueue: true });
}

/** Runs shard jobs on the queue and waits for each to finish. */
export class QueueRunner implements JobRunner {
  private readonly queue: Queue;
  private readonly events: QueueEvents;
  private readonly runId = randomUUID().slice(0, 8);
  private readonly connections: IORedis[] = [];
  private readonly where: string;
  private watching: Promise<never> | null = null;
  private closed = false;
  private stopWatch: (() => void) | null = null;

  constructor(
    target: QueueTarget,
    private readonly onProgress?: (shard: number, slice: number) => void,
    private readonly opts: QueueRunnerOptions = {},
  ) {
    const name = target.name ?? DEFAULT_QUEUE_NAME;
    this.where = `queue '${name}' at ${target.url}`;
    const c1 = connect(target.url);
    const c2 = connect(target.url);
    this.connections.push(c1, c2);
    this.queue = new Queue(name, { connection: c1 });
    this.events = new QueueEvents(name, { connection: c2 });
    this.events.on('progress', ({ jobId, data }) => {
      // Another command's jobs on the same queue report progress here too.
      if (!jobId.startsWith(`${this.runId}-`)) return;
      const p = data as { shard?: number; slice?: number };
      if (typeof p?.shard === 'number' && typeof p.slice === 'number') this.onProgress?.(p.shard, p.slice);
    });
  }

  async run(job: ShardJob): Promise<ShardJobResult> {
    await this.events.waitUntilReady();
    const added = await this.queue.add(job.fromSlice === 0 ? 'train' : 'retrain', job, {
      jobId: `${this.runId}-shard-${job.shard}`,
      // 5 attempts, 0.5 s to 4 s apart: a worker that cannot see a new file yet (NFS) gets ~7 s for it to appear.
      attempts: 5,
      backoff: { type: 'exponential', delay: 500 },
      removeOnComplete: { age: 3600 },
      removeOnFail: { age: 7 * 24 * 3600 },
    });
    this.watching ??= this.watchWorkers();
    let result: ShardJobResult;
    try {
      result = (await Promise.race([added.waitUntilFinished(this.events), this.watching])) as ShardJobResult;
    } catch (err) {
      if (err instanceof SisaError) {
        await added.remove().catch(() => undefined); // no worker will take it; do not leave it for a later one
        throw err;
      }
      throw new SisaError('TRAIN', `shard ${job.shard}: job failed on the queue: ${err instanceof Error ? err.message : String(err)}`);
    }
    return result;
  }

  /**
   * Rejects once the queue has had no worker connected for the whole timeout; says so on the first
   * poll that sees none. Polls once a second: BullMQ lists workers by their Redis connection names.
   */
  private watchWorkers(): Promise<never> {
    const timeoutMs = this.opts.timeoutMs ?? DEFAULT_QUEUE_TIMEOUT_MS;
    return new Promise<never>((_, reject) => {
      let noneSince: number | null = null;
      let said = false;
      const timer = setInterval(() => {
        this.queue
          .getWorkersCount()
          .then((n) => {
            if (this.closed) return;
            if (n > 0) {
              noneSince = null;
              return;
            }
            noneSince ??= Date.now();
            if (!said) {
              said = true;
              this.opts.onWaiting?.(`waiting for workers (0 seen) on ${this.where}; start one with 'sisa worker --queue URL'`);
            }
            if (Date.now() - noneSince >= timeoutMs) {
              clearInterval(timer);
              reject(new SisaError('TRAIN', `no worker on ${this.where} for ${Math.round(timeoutMs / 1000)} s (--queue-timeout); nothing was committed: start 'sisa worker --queue URL' and run the command again`));
            }
          })
          .catch(() => undefined); // Redis trouble shows up in the job wait itself
      }, Math.min(1000, Math.max(100, timeoutMs / 4)));
      this.stopWatch = () => clearInterval(timer);
    });
  }

  /** Idempotent: a second call (or one after a failed start) does nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopWatch?.();
    this.watching?.catch(() => undefined);
    await this.events.close().catch(() => undefined);
    await this.queue.close().catch(() => undefined);
    for (const c of this.connections) c.disconnect();
  }
}

export interface QueueWorkerOptions extends QueueTarget {
  concurrency: number;
  backend: string;
  /** How long a job's lock lasts without renewal before the job counts as stalled (ms). */
  lockDuration?: number;
  log?: (line: string) => void;
  /** Folder for blobs fetched from the jobs' object stores (`sisa worker --cache`). */
  cache?: string;
  /** While idle, drop cached blobs the stores no longer hold this often (ms); default 5 minutes. */
  cacheSweepMs?: number;
}

/** `sisa worker`: processes shard jobs from the queue in local worker threads until closed. */
export async function startQueueWorker(o: QueueWorkerOptions): Promise<{ close(): Promise<void> }> {
  const log = o.log ?? (() => undefined);
  const active = new Map<number, Job>();
  const pool = new WorkerPool(o.concurrency, o.backend, (shard, slice) => {
    void active.get(shard)?.updateProgress({ shard, slice });
  });
  if (o.cacheSweepMs !== undefined && !(o.cacheSweepMs >= 1000)) throw usageError(`--cache-sweep must be at least 1 second, got ${o.cacheSweepMs / 1000}`);
  const connection = connect(o.url);
  const lockDuration = o.lockDuration ?? 30_000;
  // Blobs superseded by a deletion still hold the deleted records: a worker drops them from its cache
  // before its next job, and also while it waits for one. A job waits for a sweep in progress, and a
  // sweep starts only while no job runs (a running job's new checkpoints are not in the store yet).
  let sweeping: Promise<void> | null = null;
  const sweep = (stores: string[]): Promise<void> =>
    (sweeping = (async () => {
      for (const store of stores) {
        const dropped = await sweepCache(store, o.cache!);
        if (dropped) log(`dropped ${dropped} cached blob(s) no longer in ${store}`);
      }
    })().finally(() => (sweeping = null)));
  const timer =
    o.cache &&
    setInterval(() => {
      if (active.size > 0 || sweeping) return;
      void knownStores(o.cache!)
        .then((stores) => (active.size === 0 && !sweeping ? sweep(stores) : undefined))
        .catch((err) => log(`cache sweep failed (will retry): ${err instanceof Error ? err.message : String(err)}`));
    }, o.cacheSweepMs ?? 300_000);
  if (timer) timer.unref();
  const worker = new Worker(
    o.name ?? DEFAULT_QUEUE_NAME,
    async (job: Job<ShardJob>) => {
      const data = job.data;
      log(`start ${job.id} shard ${data.shard} from slice ${data.fromSlice} (${data.store})`);
      const idle = active.size === 0;
      active.set(data.shard, job);
      try {
        let run = data;
        await sweeping;
        const remote = inObjectStore(data);
        if (remote && !o.cache) throw new SisaError('STATE', `shard ${data.shard}: this job's blobs are in ${data.store}; start the worker with --cache DIR to fetch them`);
        if (remote) {
          if (idle) await sweep([data.store]);
          run = await fetchJobInputs(data, o.cache!);
        }
        const result = await pool.run(run);
        if (remote) await uploadCheckpoints(data.store, o.cache!, result.checkpoints);
        log(`done ${job.id} shard ${data.shard} in ${result.seconds.toFixed(2)} s`);
        return result;
      } catch (err) {
        log(`failed ${job.id} shard ${data.shard}: ${err instanceof Error ? err.message : String(err)}`);
        // Inputs that do not match (hash, checkpoint) will not match on a retry either, nor will this
        // worker's runtime change. An unreachable store is not an input problem: BullMQ retries it with backoff.
        if (err instanceof SisaError && err.code === 'BACKEND') throw new UnrecoverableError(err.message);
        // A file in a shared folder that this host cannot see yet (NFS attribute caching: ENOENT, or
        // ESTALE after the coordinator renamed over it) may appear on a retry; a wrong hash will not.
        if (!inObjectStore(data) && notVisibleYet(err)) throw new Error(`${err instanceof Error ? err.message : String(err)} (retried: the shared folder may not show it on this host yet)`);
        if (err instanceof SisaError && err.code === 'STATE' && !isTransient(err)) throw new UnrecoverableError(err.message);
        throw err;
      } finally {
        active.delete(data.shard);
      }
    },
    { connection, concurrency: o.concurrency, lockDuration, stalledInterval: Math.max(1000, Math.floor(lockDuration / 2)), maxStalledCount: 2 },
  );
  await worker.waitUntilReady();
  log(`worker ready on ${o.name ?? DEFAULT_QUEUE_NAME} (concurrency ${o.concurrency}, backend ${o.backend})`);
  return {
    async close() {
      if (timer) clearInterval(timer);
      await worker.close();
      await pool.close();
      connection.disconnect();
    },
  };
}

export interface QueueStatus {
  queue: string;
  counts: Record<string, number>;
  /** This workspace's jobs (all jobs when no stores were given), each with the store URL its blobs are in. */
  shards: { store: string; shard: number; state: string; attempts: number; failedReason?: string }[];
}

/** `stores`: the store URLs of one workspace's jobs (its folder's URL and its object store), to list only those. */
export async function queueStatus(target: QueueTarget, stores?: readonly string[]): Promise<QueueStatus> {
  const connection = connect(target.url);
  const queue = new Queue(target.name ?? DEFAULT_QUEUE_NAME, { connection });
  try {
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
    const shards: QueueStatus['shards'] = [];
    for (const state of ['waiting', 'active', 'delayed', 'failed'] as const) {
      for (const job of await queue.getJobs([state], 0, 1000)) {
        const data = job.data as ShardJob;
        if (stores && !stores.includes(data.store)) continue;
        shards.push({ store: data.store, shard: data.shard, state, attempts: job.attemptsMade, ...(job.failedReason ? { failedReason: job.failedReason } : {}) });
      }
    }
    return { queue: queue.name, counts, shards: shards.sort((a, b) => a.shard - b.shard) };
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

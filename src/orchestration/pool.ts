/**
 * Local execution of shard jobs: a p-queue bounds how many run at once, and each runs in its own
 * worker thread so that shards really use separate cores. Workers are started lazily and reused.
 */
import { isInterrupted } from '../state/lock.js';
import { Worker } from 'node:worker_threads';
import PQueue from 'p-queue';
import { errorMessage, SisaError, type ErrorCode } from '../util/errors.js';
import type { ShardJob, ShardJobResult } from './shardJob.js';
import type { FromWorker } from './worker.js';
import type { JobRunner } from './inProcess.js';

// The runner interface only: importing the pool does not load the job code (Arrow, the kernels) on the
// main thread, which only the worker threads run.
export type { JobRunner } from './inProcess.js';

export class WorkerPool implements JobRunner {
  private readonly queue: PQueue;
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private nextId = 1;

  constructor(
    private readonly concurrency: number,
    private readonly backend: string,
    private readonly onProgress?: (shard: number, slice: number) => void,
  ) {
    this.queue = new PQueue({ concurrency });
  }

  private acquire(): Worker {
    return this.idle.pop() ?? this.spawn();
  }

  private spawn(): Worker {
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: { backend: this.backend } });
    this.all.push(worker);
    return worker;
  }

  /** Starts `n` workers and their backends ahead of the first job (hides start-up latency). */
  warm(n = 1): void {
    while (this.all.length < Math.min(n, this.concurrency)) {
      const w = this.spawn();
      w.postMessage({ type: 'warm' });
      this.idle.push(w);
    }
  }

  run(job: ShardJob): Promise<ShardJobResult> {
    return this.queue.add(() => this.runOn(this.acquire(), job)) as Promise<ShardJobResult>;
  }

  private runOn(worker: Worker, job: ShardJob): Promise<ShardJobResult> {
    const id = this.nextId++;
    return new Promise<ShardJobResult>((resolve, reject) => {
      const cleanup = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      const onMessage = (msg: FromWorker) => {
        if (msg.id !== id) return;
        if (msg.type === 'progress') return this.onProgress?.(msg.shard, msg.slice);
        cleanup();
        this.idle.push(worker);
        if (msg.type === 'done') resolve(msg.result);
        else reject(jobFailure(job.shard, msg));
      };
      const onError = (err: Error) => {
        cleanup();
        reject(new SisaError('TRAIN', `shard ${job.shard}: worker crashed: ${err.message}`));
      };
      const onExit = (code: number) => {
        cleanup();
        reject(new SisaError('TRAIN', `shard ${job.shard}: worker exited with code ${code}`));
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      worker.postMessage({ type: 'job', id, job });
    });
  }

  async close(): Promise<void> {
    // After Ctrl-C the queued jobs are dropped and running ones stopped: their results would be discarded.
    if (isInterrupted()) this.queue.clear();
    else await this.queue.onIdle();
    await Promise.all(this.all.map((w) => w.terminate()));
  }
}

/**
 * A job's failure in a worker as an error here: a SisaError keeps its code and journal note; an
 * operating-system error (a full disk) is worded as the main thread words its own (errorMessage), from
 * its code and path, not as Node's 'ENOSPC: no space left on device, write'.
 */
function jobFailure(shard: number, msg: Extract<FromWorker, { type: 'failed' }>): SisaError {
  const system = msg.code === null && msg.systemCode !== undefined ? Object.assign(new Error(msg.message), { code: msg.systemCode, path: msg.path }) : undefined;
  const text = system ? errorMessage(system) : msg.message;
  const err = new SisaError((msg.code as ErrorCode | null) ?? 'TRAIN', text.startsWith(`shard ${shard}:`) ? text : `shard ${shard}: ${text}`, { cause: system, journalNote: msg.journalNote });
  return msg.notVisibleYet ? Object.assign(err, { notVisibleYet: true }) : err;
}

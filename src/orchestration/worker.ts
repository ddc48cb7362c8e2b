/** Worker-thread entry point: loads the backend once, then runs shard jobs sent by the pool. */
import { parentPort, workerData } from 'node:worker_threads';
import type { LoadedBackend } from '../models/backend.js';
import { SisaError } from '../util/errors.js';
import { notVisibleYet, runShardJob, type ShardJob } from './shardJob.js';

export type ToWorker = { type: 'job'; id: number; job: ShardJob } | { type: 'warm' };
export type FromWorker =
  | { type: 'progress'; id: number; shard: number; slice: number }
  | { type: 'done'; id: number; result: Awaited<ReturnType<typeof runShardJob>> }
  | {
      type: 'failed';
      id: number;
      message: string;
      /** A SisaError's code, else null. */
      code: string | null;
      notVisibleYet: boolean;
      /** An operating-system error's code (ENOSPC…) and path, so that the main thread words it as for its own. */
      systemCode?: string;
      path?: string;
      journalNote?: string;
    };

const port = parentPort!;
const backendChoice = (workerData as { backend: string }).backend;
let backend: Promise<LoadedBackend> | null = null;
// tfjs is imported only when a job needs it: a fused-kernel job never pays for it.
const loadBackend = async (choice: string) => (await import('../models/backend.js')).loadBackend(choice);

port.on('message', async (msg: ToWorker) => {
  if (msg.type === 'warm') {
    // Start loading the backend now, while the main thread is still preparing the job.
    backend ??= loadBackend(backendChoice);
    backend.catch(() => undefined);
    return;
  }
  try {
    const result = await runShardJob(msg.job, { choice: backendChoice, loadTf: () => (backend ??= loadBackend(backendChoice)) }, (slice) =>
      port.postMessage({ type: 'progress', id: msg.id, shard: msg.job.shard, slice } satisfies FromWorker),
    );
    port.postMessage({ type: 'done', id: msg.id, result } satisfies FromWorker);
  } catch (err) {
    const sys = err as NodeJS.ErrnoException;
    port.postMessage({
      type: 'failed',
      id: msg.id,
      message: err instanceof Error ? err.message : String(err),
      code: err instanceof SisaError ? err.code : null,
      notVisibleYet: notVisibleYet(err),
      systemCode: typeof sys?.code === 'string' && !(err instanceof SisaError) ? sys.code : undefined,
      path: typeof sys?.path === 'string' ? sys.path : undefined,
      journalNote: err instanceof SisaError ? err.journalNote : undefined,
    } satisfies FromWorker);
  }
});

import type { Argv } from 'yargs';
import { COMMAND_TEXT } from './text.js';
import os from 'node:os';
import { BACKEND_CHOICES } from '../../models/backendChoice.js';
import { note } from '../output.js';
export function workerCommand(y: Argv): Argv {
  return y.command(
      COMMAND_TEXT.worker.command,
      COMMAND_TEXT.worker.describe,
      (y) =>
        y
          .option('queue', { type: 'string', demandOption: true, describe: 'Redis URL, e.g. redis://10.0.0.5:6379' })
          .option('queue-name', { type: 'string', describe: 'BullMQ queue name (default sisa-shards)' })
          .option('concurrency', { type: 'number', default: os.availableParallelism(), describe: 'Jobs at once, each in a worker thread' })
          .option('backend', { type: 'string', default: 'auto', describe: `Compute backend for the jobs: ${BACKEND_CHOICES.join('|')}` })
          .option('lock-duration', { type: 'number', default: 30000, describe: 'Milliseconds before a job of a dead worker is handed to another' })
          .option('cache', { type: 'string', describe: 'Local folder for blobs fetched by hash from the object store of --store workspaces (no shared folder needed)' })
          .option('cache-sweep', { type: 'number', default: 300, describe: 'While idle, drop cached blobs the store no longer holds every N seconds' })
          .option('quiet', { type: 'boolean', default: false, describe: 'No log lines on stderr' })
          .example('$0 worker --queue redis://10.0.0.5:6379', 'Run shard jobs for every workspace this machine sees at the same path')
          .example('$0 worker --queue redis://10.0.0.5:6379 --cache /var/cache/sisa', 'Fetch job inputs from the object store instead'),
      async (a) => {
        const { startQueueWorker } = await import('../../orchestration/queue.js');
        const handle = await startQueueWorker({
          url: a.queue,
          name: a['queue-name'],
          concurrency: a.concurrency,
          backend: a.backend,
          lockDuration: a['lock-duration'],
          cache: a.cache,
          cacheSweepMs: a['cache-sweep'] * 1000,
          log: (l) => note(a, `[${new Date().toISOString()}] ${l}`),
        });
        await new Promise<void>((resolve) => {
          const stop = () => resolve();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
        note(a, 'worker stopping: finishing active jobs');
        await handle.close();
      },
  );
}

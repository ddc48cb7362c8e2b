/** Flags and helpers shared by several commands. */
import os from 'node:os';
import type { Argv } from 'yargs';
import { BACKEND_CHOICES } from '../models/backendChoice.js';
import { usageError } from '../util/errors.js';
import type { OutputFlags } from './output.js';

export const FAIR_METHODS = ['per-model', 'ensemble', 'votes'] as const;

export interface Common extends OutputFlags {
  workdir: string;
}

export const list = (v: unknown): string[] | undefined =>
  v === undefined ? undefined : String(v).split(',').map((s) => s.trim()).filter((s) => s.length > 0);

export function common<T>(y: Argv<T>) {
  return y
    .option('workdir', { type: 'string', default: '.', describe: 'Workspace folder (data in DIR/shards, state in DIR/manifests)' })
    .option('json', { type: 'boolean', default: false, describe: 'Print one JSON document on stdout' })
    .option('quiet', { type: 'boolean', default: false, describe: 'No progress bar or notes on stderr' })
    .option('wait', { type: 'boolean', default: false, describe: 'If another sisa process holds the workspace, wait for it instead of failing' });
}

/** Read-only commands refuse, like writers, while an interrupted operation awaits 'sisa recover'. */
/** Read-only commands: answer from the last committed state, with the library's one-line warning. */
export async function warnIfInterrupted(workdir: string): Promise<void> {
  const { interruptedOperationWarning } = await import('../app/status.js');
  const warning = await interruptedOperationWarning(workdir);
  if (warning) process.stderr.write(`sisa: warning: ${warning}\n`);
}

export function queueFlags<T>(y: Argv<T>) {
  return y
    .option('queue', { type: 'string', describe: 'Run shard jobs on BullMQ at this Redis URL (redis://host:6379) instead of locally' })
    .option('queue-name', { type: 'string', describe: 'BullMQ queue name (default sisa-shards)' })
    .option('queue-timeout', { type: 'number', default: 600, describe: 'With --queue: fail after this many seconds with no worker connected to the queue' });
}

/** A queue runner when --queue is given; the caller closes it. */
export async function queueRunner(a: { queue?: string; 'queue-name'?: string; 'queue-timeout'?: number }, onProgress: (shard: number, slice: number) => void) {
  if (!a.queue) return undefined;
  const timeout = a['queue-timeout'] ?? 600;
  if (!(timeout > 0)) throw usageError(`--queue-timeout must be a positive number of seconds, got ${a['queue-timeout']}`);
  const { QueueRunner } = await import('../orchestration/queue.js');
  return new QueueRunner({ url: a.queue, name: a['queue-name'] }, onProgress, { timeoutMs: timeout * 1000, onWaiting: (line) => process.stderr.write(`sisa: ${line}\n`) });
}

export function learnerFlags<T>(y: Argv<T>) {
  return queueFlags(y)
    .option('backend', { type: 'string', describe: `Compute backend: ${BACKEND_CHOICES.join('|')} (default: auto, or the one the models were trained with)` })
    .option('concurrency', { type: 'number', describe: `Shards trained at once, each in a worker thread (default: cores = ${os.availableParallelism()})` });
}

export function fileColumnFlags<T>(y: Argv<T>) {
  return y
    .option('format', { type: 'string', describe: 'Input format: csv|jsonl|parquet|arrow (default: from the extension)' })
    .option('id-col', { type: 'string', describe: 'Column with the record id' })
    .option('text-col', { type: 'string', describe: 'Column with the text' })
    .option('label-col', { type: 'string', describe: 'Column with the label' })
    .option('positive-values', { type: 'string', describe: 'Comma-separated label values that mean toxic; all others are not' })
    .option('label-threshold', { type: 'number', describe: 'Fractional labels: toxic when label >= threshold' });
}


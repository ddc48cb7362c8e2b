/** Helpers shared by every use case that runs shard jobs: concurrency, learner settings, scheduling. */
import { interruptedError, isInterrupted, whenInterrupted } from '../state/lock.js';
import os from 'node:os';
import { LearnerConfig, type State } from '../state/manifest.js';
import { DEFAULT_LEARNER } from '../models/learner.js';
import { SisaError, usageError } from '../util/errors.js';
import type { JobRunner } from './pool.js';
import { inObjectStore, localBlobs, type ShardJob, type ShardJobResult } from './shardJob.js';
import { BlobCorruptError, BlobMissingError } from '../storage/blobStore.js';

export function defaultConcurrency(): number {
  return Math.max(1, os.availableParallelism());
}

export function resolveLearner(base: LearnerConfig | undefined, overrides: Partial<LearnerConfig> | undefined): LearnerConfig {
  const merged = { ...(base ?? DEFAULT_LEARNER), ...Object.fromEntries(Object.entries(overrides ?? {}).filter(([, v]) => v !== undefined)) };
  const parsed = LearnerConfig.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw usageError(`invalid learner setting --${String(issue.path[0])}: ${issue.message}`);
  }
  return parsed.data;
}

/** Examples processed by a full train under the SISA schedule: epochs × Σ_i |slices 0..i|. */
export function scheduledExamples(state: State, learner: LearnerConfig, fromSlice: (shard: number) => number = () => 0): number {
  let total = 0;
  for (const s of state.shards) {
    let cumulative = 0;
    s.slices.forEach((sl, i) => {
      cumulative += sl.rows;
      if (i >= fromSlice(s.shard)) total += cumulative * learner.epochs;
    });
  }
  return total;
}

export function checkConcurrency(c: number | undefined): number {
  const n = c ?? defaultConcurrency();
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw usageError(`--concurrency must be a positive integer, got ${c}`);
  return n;
}

/** Runs jobs and returns their results, or throws the first failure after every job has settled. */
export async function runJobs(runner: JobRunner, jobs: ShardJob[]): Promise<ShardJobResult[]> {
  // Ctrl-C stops waiting at once; the caller's clean-up closes the runner (terminating its workers).
  const interrupted = whenInterrupted().then(() => 'interrupted' as const);
  const settled = await Promise.race([Promise.allSettled(jobs.map((j) => runner.run(j))), interrupted]);
  if (settled === 'interrupted' || isInterrupted()) throw interruptedError();
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason instanceof SisaError ? failed.reason : new SisaError('TRAIN', String(failed.reason));
  const results = settled.map((s) => (s as PromiseFulfilledResult<ShardJobResult>).value);
  for (let i = 0; i < jobs.length; i++) await checkOutputs(jobs[i]!, results[i]!);
  return results;
}

/**
 * What a runner reports is not trusted before the commit: a queue worker may see another folder, or its
 * write may have been lost. Every returned checkpoint must be there with the content its hash names.
 * Store workspaces are checked against the store by syncBeforeCommit instead (the local cache may lack them).
 */
async function checkOutputs(job: ShardJob, r: ShardJobResult): Promise<void> {
  const expected = job.slices - job.fromSlice;
  if (r.shard !== job.shard || r.fromSlice !== job.fromSlice || r.checkpoints.length !== expected)
    throw new SisaError('TRAIN', `shard ${job.shard}: the runner returned ${r.checkpoints.length} checkpoint(s) for shard ${r.shard} from slice ${r.fromSlice}, expected ${expected} from slice ${job.fromSlice}; nothing was committed`);
  if (inObjectStore(job)) return;
  const blobs = localBlobs(job);
  const dir = blobs.dirs.checkpointsDir;
  for (const sha of r.checkpoints) {
    try {
      await blobs.get('checkpoint', sha);
    } catch (err) {
      if (err instanceof BlobMissingError)
        throw new SisaError('TRAIN', `shard ${job.shard}: checkpoint ${sha.slice(0, 12)} returned by the runner is not in ${dir}; nothing was committed (does the worker see this workspace?)`);
      if (err instanceof BlobCorruptError) throw new SisaError('TRAIN', `shard ${job.shard}: checkpoint ${sha.slice(0, 12)} returned by the runner does not match its hash in ${dir}; nothing was committed`);
      throw err;
    }
  }
}

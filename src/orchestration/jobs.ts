/** Helpers shared by every use case that runs shard jobs: concurrency, learner settings, scheduling. */
import os from 'node:os';
import { LearnerConfig, type State } from '../state/manifest.js';
import { DEFAULT_LEARNER } from '../models/learner.js';
import { SisaError, usageError } from '../util/errors.js';
import type { JobRunner } from './pool.js';
import type { ShardJob, ShardJobResult } from './shardJob.js';

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
  const settled = await Promise.allSettled(jobs.map((j) => runner.run(j)));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason instanceof SisaError ? failed.reason : new SisaError('TRAIN', String(failed.reason));
  return settled.map((s) => (s as PromiseFulfilledResult<ShardJobResult>).value);
}


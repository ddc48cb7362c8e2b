/**
 * `sisa worker --cache DIR`: a worker with no view of the workspace. It fetches a job's inputs from the
 * job's object store by content hash into a local cache, checking each hash, runs the job there, and
 * uploads the checkpoints it made; the coordinator checks them again before it commits. Cached blobs
 * that the store no longer holds (gc removed them: they may hold deleted records) are dropped.
 */
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { checkpointPath } from '../models/checkpoint.js';
import { openStore } from '../state/remote.js';
import { workspace } from '../state/workspace.js';
import type { BlobKind } from '../storage/blobStore.js';
import { sha256File, writeFileAtomic } from '../util/fsx.js';
import type { ShardJob } from './shardJob.js';
import { folderStoreUrl } from '../storage/fsBlobStore.js';

/** One cache folder per store, so that sweeping one store's cache never touches another's blobs. */
function cacheWorkspace(cacheDir: string, storeUrl: string) {
  return workspace(path.join(cacheDir, createHash('sha256').update(storeUrl).digest('hex').slice(0, 16)));
}

async function ensureCached(storeUrl: string, kind: BlobKind, sha: string, file: string): Promise<void> {
  // A cached copy is used only if it still matches its hash; otherwise it is fetched again.
  if ((await sha256File(file).catch(() => null)) === sha) return;
  const store = await openStore(storeUrl);
  await writeFileAtomic(file, await store.get(kind, sha));
}

/** The stores this cache holds blobs of (each sub-folder records its store URL, never credentials). */
export async function knownStores(cacheDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await fsp.readdir(cacheDir).catch(() => [] as string[])) {
    const url = await fsp.readFile(path.join(cacheDir, d, 'store.url'), 'utf8').catch(() => null);
    if (url && cacheWorkspace(cacheDir, url.trim()).root === path.resolve(cacheDir, d)) out.push(url.trim());
  }
  return out;
}

/** Fetches the job's shard file and start checkpoint; returns the job pointed at the cache folder. */
export async function fetchJobInputs(job: ShardJob, cacheDir: string): Promise<ShardJob> {
  const ws = cacheWorkspace(cacheDir, job.store);
  const urlFile = path.join(ws.root, 'store.url');
  if ((await fsp.readFile(urlFile, 'utf8').catch(() => null)) !== job.store) await writeFileAtomic(urlFile, job.store);
  await ensureCached(job.store, 'shard', job.shardSha256, path.join(ws.shardsDir, `${job.shardSha256}.arrow`));
  if (job.startCheckpoint) await ensureCached(job.store, 'checkpoint', job.startCheckpoint, checkpointPath(ws.checkpointsDir, job.startCheckpoint));
  return { ...job, store: folderStoreUrl(ws.root) };
}

/** Uploads the checkpoints a job wrote into the cache (each skipped if the store already has it). */
export async function uploadCheckpoints(storeUrl: string, cacheDir: string, shas: readonly string[]): Promise<void> {
  const ws = cacheWorkspace(cacheDir, storeUrl);
  const store = await openStore(storeUrl);
  for (const sha of shas) await store.putFile('checkpoint', checkpointPath(ws.checkpointsDir, sha), sha);
}

/** Drops cached blobs the store no longer holds. Call only while no job of this worker is running. */
export async function sweepCache(storeUrl: string, cacheDir: string): Promise<number> {
  const ws = cacheWorkspace(cacheDir, storeUrl);
  const store = await openStore(storeUrl);
  const live = new Set((await store.list()).map((b) => `${b.kind}/${b.sha256}`));
  let dropped = 0;
  const sweep = async (dir: string, kind: BlobKind, ext: string) => {
    for (const f of await fsp.readdir(dir).catch(() => [] as string[])) {
      if (!f.endsWith(ext) || live.has(`${kind}/${f.slice(0, -ext.length)}`)) continue;
      await fsp.rm(path.join(dir, f), { force: true });
      dropped++;
    }
  };
  await sweep(ws.shardsDir, 'shard', '.arrow');
  await sweep(ws.checkpointsDir, 'checkpoint', '.ckpt');
  return dropped;
}

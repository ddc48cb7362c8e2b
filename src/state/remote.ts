/**
 * A workspace whose blobs live in an object store (`ingest --store s3://…`). The manifests stay in the
 * workspace folder; its shards/ folder becomes a local cache of blobs, each verified by hash when it is
 * fetched. The writing command is the single writer: before it commits a state, every blob that state
 * names must be in the store with the right size and hash (blobs made here are uploaded, blobs a remote
 * worker made are downloaded and checked), and after the commit the store is swept of every blob the
 * state no longer names, because superseded shard files and checkpoints still hold deleted records.
 *
 * The S3 client is imported lazily so that plain local workspaces never load the SDK.
 */
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import type { BlobKind, BlobRef } from '../storage/blobStore.js';
import type { S3BlobStore } from '../storage/s3BlobStore.js';
import { SisaError } from '../util/errors.js';
import { exists, writeFileAtomic } from '../util/fsx.js';
import type { State } from './manifest.js';
import type { Workspace } from './workspace.js';

const opened = new Map<string, S3BlobStore>();

/** One store client per URL and process (clients pool their connections). */
export async function openStore(url: string): Promise<S3BlobStore> {
  let s = opened.get(url);
  if (!s) {
    const { S3BlobStore, parseS3Url } = await import('../storage/s3BlobStore.js');
    s = new S3BlobStore(parseS3Url(url));
    opened.set(url, s);
  }
  return s;
}

export function closeStores(): void {
  for (const s of opened.values()) s.close();
  opened.clear();
}

interface LocalBlob extends BlobRef {
  /** Path of the workspace's cached copy. */
  local: string;
}

/** Every blob a state names, with the path of its cached copy in the workspace. */
export function referencedBlobs(ws: Workspace, state: State): LocalBlob[] {
  const out: LocalBlob[] = state.shards.map((s) => ({ kind: 'shard' as BlobKind, sha256: s.sha256, local: path.join(ws.shardsDir, s.file) }));
  for (const h of [state.heldout.test, state.heldout.calibration]) if (h) out.push({ kind: 'heldout', sha256: h.sha256, local: path.join(ws.shardsDir, h.file) });
  for (const sha of new Set(state.models.flatMap((m) => m.checkpoints))) out.push({ kind: 'checkpoint', sha256: sha, local: path.join(ws.checkpointsDir, `${sha}.ckpt`) });
  return out;
}

const refKey = (r: BlobRef) => `${r.kind}/${r.sha256}`;

/**
 * Makes the store hold every blob `state` names, before `state` is committed: blobs cached here are
 * uploaded (skipped when already there with the same size); blobs only in the store (remote workers'
 * checkpoints) are downloaded, which verifies their hash, and cached. Throws, committing nothing, when
 * a blob is in neither place or does not match.
 */
export async function syncBeforeCommit(ws: Workspace, state: State): Promise<{ uploaded: number; verified: number }> {
  if (!state.store) return { uploaded: 0, verified: 0 };
  const store = await openStore(state.store);
  const inStore = new Map((await store.list()).map((b) => [refKey(b), b.size]));
  let uploaded = 0;
  let verified = 0;
  for (const b of referencedBlobs(ws, state)) {
    const stat = await fsp.stat(b.local).catch(() => null);
    const remoteSize = inStore.get(refKey(b));
    if (stat) {
      if (remoteSize === stat.size) continue;
      await store.putFile(b.kind, b.local, b.sha256);
      uploaded++;
    } else {
      if (remoteSize === undefined) throw new SisaError('STATE', `${b.kind} blob ${b.sha256.slice(0, 12)} is neither in ${store.location} nor cached in ${ws.root}; nothing was committed`);
      const bytes = await store.get(b.kind, b.sha256);
      if (bytes.byteLength !== remoteSize) throw new SisaError('STATE', `${b.kind} blob ${b.sha256.slice(0, 12)}: size changed while it was read; nothing was committed`);
      await writeFileAtomic(b.local, bytes);
      verified++;
    }
  }
  return { uploaded, verified };
}

/** Downloads (hash verified) the blobs of `kinds` that the workspace cache lacks; readers then work as on a local workspace. */
export async function pullReferenced(ws: Workspace, state: State, kinds: readonly BlobKind[] = ['shard', 'heldout', 'checkpoint']): Promise<number> {
  if (!state.store) return 0;
  let pulled = 0;
  for (const b of referencedBlobs(ws, state)) {
    if (!kinds.includes(b.kind) || (await exists(b.local))) continue;
    const store = await openStore(state.store);
    await writeFileAtomic(b.local, await store.get(b.kind, b.sha256));
    pulled++;
  }
  return pulled;
}

/** Removes from the store every blob `state` does not name (after a commit, or after a failed run). */
export async function gcStore(ws: Workspace, state: State): Promise<string[]> {
  if (!state.store) return [];
  const store = await openStore(state.store);
  const keep = new Set(referencedBlobs(ws, state).map(refKey));
  const stale = (await store.list()).filter((b) => !keep.has(refKey(b)));
  await store.remove(stale);
  return stale.map((b) => `${store.location}/${refKey(b)}`);
}

/** Objects under the store's prefix that the state does not name (verify: deletions must reach the bucket too). */
export async function storeStrays(ws: Workspace, state: State): Promise<{ strays: string[]; missing: string[]; blobs: number }> {
  if (!state.store) return { strays: [], missing: [], blobs: 0 };
  const store = await openStore(state.store);
  const refs = referencedBlobs(ws, state);
  const prefix = store.loc.prefix ? `${store.loc.prefix}/` : '';
  const keep = new Set(refs.map((r) => `${prefix}${refKey(r)}`));
  const keys = await store.listKeys();
  const present = new Set(keys);
  return {
    strays: keys.filter((k) => !keep.has(k)).map((k) => `s3://${store.loc.bucket}/${k}`),
    missing: [...keep].filter((k) => !present.has(k)).map((k) => `s3://${store.loc.bucket}/${k}`),
    blobs: keep.size,
  };
}

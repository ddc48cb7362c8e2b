/**
 * Removes files that the committed state no longer refers to: old shard files and checkpoints.
 * This matters for unlearning, not only for disk space: a superseded shard file or checkpoint still
 * carries the deleted records, so it must not outlive the commit that replaced it.
 */
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import type { State } from './manifest.js';
import type { Workspace } from './workspace.js';
import { crashPoint } from '../util/faults.js';
import { gcStore } from './remote.js';
import { assertLeaseHeld } from './lock.js';
import { fsyncDir } from '../util/fsx.js';

export function referencedShardFiles(state: State | null): Set<string> {
  if (!state) return new Set();
  const files = new Set(state.shards.map((s) => s.file));
  files.add(state.heldout.test.file);
  if (state.heldout.calibration) files.add(state.heldout.calibration.file);
  return files;
}

export function referencedCheckpoints(state: State | null): Set<string> {
  return new Set(state?.models.flatMap((m) => m.checkpoints) ?? []);
}

export async function listDir(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch {
    return [];
  }
}

/** `state` null: nothing is committed yet (a first ingest died), so every data file goes. */
export async function garbageCollect(ws: Workspace, state: State | null): Promise<{ removed: string[] }> {
  // A process that lost the workspace lock must not remove files: they may be the new holder's.
  await assertLeaseHeld(ws);
  const removed: string[] = [];
  /** The folders that lost an entry: only their removals need a directory fsync. */
  const touched = new Set<string>();
  const keepShards = referencedShardFiles(state);
  for (const f of await listDir(ws.shardsDir)) {
    if (f.endsWith('.arrow') && !keepShards.has(f)) {
      await fsp.rm(path.join(ws.shardsDir, f), { force: true });
      removed.push(path.join('shards', f));
      touched.add(ws.shardsDir);
      crashPoint('gc:removed-file');
    }
  }
  const keepCkpt = referencedCheckpoints(state);
  for (const f of await listDir(ws.checkpointsDir)) {
    if (f.endsWith('.ckpt') && !keepCkpt.has(f.slice(0, -'.ckpt'.length))) {
      await fsp.rm(path.join(ws.checkpointsDir, f), { force: true });
      removed.push(path.join('shards', 'checkpoints', f));
      touched.add(ws.checkpointsDir);
    }
  }
  // Temporary files of writes that never completed (a crash between write and rename).
  for (const dir of [ws.shardsDir, ws.checkpointsDir, ws.manifestsDir, ws.deletionsDir]) {
    for (const f of await listDir(dir)) {
      if (f.startsWith('.') && f.endsWith('.tmp')) {
        await fsp.rm(path.join(dir, f), { force: true });
        removed.push(path.join(path.relative(ws.root, dir), f));
        touched.add(dir);
      }
    }
  }
  // Removal is durable only once the directories are synced: until then a power loss can bring a removed
  // file (with the deleted records in it) back. Synced before the caller journals the operation's end;
  // a folder that lost nothing is not synced (a deletion removes from two folders of the four).
  for (const dir of [ws.shardsDir, ws.checkpointsDir, ws.manifestsDir, ws.deletionsDir].filter((d) => touched.has(d))) await fsyncDir(dir).catch((err) => {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  });
  // The object store, when there is one: superseded blobs hold deleted records there too.
  if (state?.store) removed.push(...(await gcStore(ws, state)));
  return { removed };
}

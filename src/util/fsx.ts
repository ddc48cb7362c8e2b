import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { crashPoint } from './faults.js';
import { listDirBeforeSync, noteDirSynced, noteFileSynced } from './powerLoss.js';

/**
 * Errors that mean "this filesystem cannot fsync a directory" (some network and FUSE filesystems, and
 * platforms without directory handles): the rename or unlink is still atomic there, just not provably
 * durable, so they are tolerated. Anything else (EIO above all) means the directory entry may not be on
 * disk, and is raised.
 */
export const DIR_FSYNC_UNSUPPORTED: ReadonlySet<string> = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EISDIR', 'EPERM', 'EBADF']);

/** fsync a directory so that a rename or unlink inside it survives power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  let synced = false;
  const before = listDirBeforeSync(dir);
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
    synced = true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || !code || !DIR_FSYNC_UNSUPPORTED.has(code)) throw err;
  } finally {
    await fh?.close();
  }
  // Outside the try: a failure of the test-only recorder must not pass for an fsync error.
  if (synced) noteDirSynced(before);
}

let tmpCounter = 0;
/** A temporary path in the same directory as `target`, so that rename() is atomic. */
export function tempPathFor(target: string): string {
  tmpCounter += 1;
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${tmpCounter}.tmp`);
}

/** Writes `data` to a temporary file beside `target` and fsyncs it; returns its path (removed on failure). */
export async function writeSyncedTemp(target: string, data: string | Uint8Array): Promise<string> {
  const tmp = tempPathFor(target);
  const fh = await fsp.open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await syncHandle(fh, tmp);
  } catch (err) {
    await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  return tmp;
}

/** Writes `data` to `target` atomically: temporary file, fsync, rename, fsync of the directory. */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  await fsp.mkdir(path.dirname(target), { recursive: true });
  const tmp = await writeSyncedTemp(target, data);
  crashPoint('write:before-rename');
  await commitTempFile(tmp, target);
  crashPoint('write:after-rename');
}

/** Moves an already fsynced temporary file into place and makes the rename durable. */
export async function commitTempFile(tmp: string, target: string): Promise<void> {
  await fsp.rename(tmp, target);
  await fsyncDir(path.dirname(target));
}

/**
 * Removes a file and makes the removal durable. Without the directory fsync a power cut can bring the
 * file back: a kept deletion request that was already applied, or a lock owner that has gone.
 */
export async function removeFileDurably(file: string): Promise<void> {
  await fsp.rm(file, { force: true });
  await fsyncDir(path.dirname(file)).catch((err) => {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  });
}

/**
 * fsyncs an open file. Every fsync of a workspace file goes through here or the functions above, so the
 * crash tests' power-loss simulation (util/powerLoss) knows what is durable.
 */
export async function syncHandle(fh: fsp.FileHandle, file: string): Promise<void> {
  await fh.sync();
  noteFileSynced(file);
}

/** fsyncs a file that was written through a stream. */
export async function fsyncFile(file: string): Promise<void> {
  const fh = await fsp.open(file, 'r+');
  try {
    await syncHandle(fh, file);
  } finally {
    await fh.close();
  }
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * The storage seam for a workspace's small mutable metadata: the state manifest (whose replacement is
 * the single commit point of every operation), the operation journal, the deletion receipts, the pending
 * deletion requests, the salt, and the fairness fit. Documents are named by relative paths
 * (`state.json`, `deletions/000003.json`); every change is durable when its promise resolves.
 *
 * FsMetaStore keeps them in the workspace's `manifests/` folder, written as temporary file, fsync,
 * rename, directory fsync. The crash tests' power-loss simulation (util/powerLoss) sits below it, at the
 * fsync calls, so it covers this store and the blob store alike.
 */
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, removeFileDurably, syncHandle, writeFileAtomic } from '../util/fsx.js';

export interface MetaStore {
  /** Printable location of the store (a folder). */
  readonly location: string;
  /** Where a document lives, for messages that must name a file a person can open. */
  where(name: string): string;
  /** A document's text, or null when there is none. Other read errors are thrown. */
  read(name: string): Promise<string | null>;
  /** A document's bytes, or null when there is none (receipts are hashed as stored). */
  readBytes(name: string): Promise<Uint8Array | null>;
  /** Replaces a document atomically and durably: a reader sees the old or the new text, never a mix. */
  write(name: string, text: string): Promise<void>;
  /** Appends one line durably (the journal). */
  append(name: string, line: string): Promise<void>;
  /** Removes a document durably; absent is not an error. */
  remove(name: string): Promise<void>;
  /** The document names in a sub-folder (e.g. `pending`), sorted; empty when there is no such folder. */
  list(folder: string): Promise<string[]>;
}

const absent = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

/** Whether a file opened for reading is empty or ends with a newline. */
async function endsWithNewline(fh: fsp.FileHandle): Promise<boolean> {
  const { size } = await fh.stat();
  if (size === 0) return true;
  const last = Buffer.alloc(1);
  await fh.read(last, 0, 1, size - 1);
  return last[0] === 0x0a;
}

export class FsMetaStore implements MetaStore {
  constructor(readonly location: string) {}

  where(name: string): string {
    return path.join(this.location, name);
  }

  async read(name: string): Promise<string | null> {
    try {
      return await fsp.readFile(this.where(name), 'utf8');
    } catch (err) {
      if (absent(err)) return null;
      throw err;
    }
  }

  async readBytes(name: string): Promise<Uint8Array | null> {
    try {
      return await fsp.readFile(this.where(name));
    } catch (err) {
      if (absent(err)) return null;
      throw err;
    }
  }

  async write(name: string, text: string): Promise<void> {
    await writeFileAtomic(this.where(name), text);
  }

  async append(name: string, line: string): Promise<void> {
    const file = this.where(name);
    await fsp.mkdir(path.dirname(file), { recursive: true });
    // 'ax' tells whether this append creates the file: then its directory entry must be synced too.
    let fh = await fsp.open(file, 'ax').catch(() => null);
    const created = fh !== null;
    fh ??= await fsp.open(file, 'a+');
    try {
      // A crash during an earlier append can leave a torn last line without its newline: this line must
      // not be glued onto it (the reader skips a line that does not parse, and would lose this one too).
      const torn = !created && !(await endsWithNewline(fh));
      await fh.appendFile(`${torn ? '\n' : ''}${line}${line.endsWith('\n') ? '' : '\n'}`);
      await syncHandle(fh, file);
    } finally {
      await fh.close();
    }
    if (created) await fsyncDir(path.dirname(file));
  }

  async remove(name: string): Promise<void> {
    await removeFileDurably(this.where(name));
  }

  async list(folder: string): Promise<string[]> {
    try {
      return (await fsp.readdir(this.where(folder))).filter((n) => !n.startsWith('.')).sort();
    } catch (err) {
      if (absent(err)) return [];
      throw err;
    }
  }
}

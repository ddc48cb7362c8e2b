/**
 * The local implementation of the blob seam: a workspace's `shards/` folder (shard and held-out files)
 * and `shards/checkpoints/` (checkpoints), or a worker's cache laid out the same way. S3BlobStore is the
 * other implementation; a shard job reads its inputs and the coordinator checks a job's outputs through
 * this interface, so a job names blobs by hash and a store URL, never by path.
 *
 * Layout: a checkpoint is `checkpoints/<sha256>.ckpt`. A shard or held-out file keeps the name its
 * writer gave it (`shard-003-<sha12>.arrow`, `test-<sha12>.arrow`, or `<sha256>.arrow` when put here),
 * and is found by the 12 hex digits of its hash in the name, then checked against the full hash.
 * Shard and held-out blobs share the folder: the same bytes are the same blob whatever their kind.
 */
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fsyncDir, sha256File, writeFileAtomic } from '../util/fsx.js';
import { SisaError } from '../util/errors.js';
import { hashSuffix } from './fileNames.js';
import { BlobCorruptError, BlobMissingError, type BlobKind, type BlobRef, type BlobStore } from './blobStore.js';

export interface FsBlobDirs {
  /** Folder of shard and held-out files. */
  shardsDir: string;
  /** Folder of checkpoints. */
  checkpointsDir: string;
}

const HEX64 = /^[0-9a-f]{64}$/;
const sha256Of = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A workspace (or cache) folder as a store URL: what a shard job carries instead of paths. */
export function folderStoreUrl(root: string): string {
  return pathToFileURL(path.resolve(root)).href;
}

/** The folder a `file:` store URL names. */
export function folderOfStoreUrl(url: string): string {
  if (!url.startsWith('file:')) throw new SisaError('USAGE', `not a local store URL: ${url}`);
  return fileURLToPath(url);
}

export class FsBlobStore implements BlobStore {
  readonly location: string;

  constructor(readonly dirs: FsBlobDirs) {
    this.location = dirs.shardsDir;
  }

  private dirOf(kind: BlobKind): string {
    return kind === 'checkpoint' ? this.dirs.checkpointsDir : this.dirs.shardsDir;
  }

  /**
   * The path of a blob, or null when the folder has none with that hash in its name. The content is not
   * read here: callers that use the path (a shard file streamed into a job) check the hash as they read.
   */
  async file(kind: BlobKind, sha256: string): Promise<string | null> {
    if (!HEX64.test(sha256)) throw new SisaError('STATE', `not a sha256 blob name: ${sha256}`);
    const dir = this.dirOf(kind);
    if (kind === 'checkpoint') {
      const file = path.join(dir, `${sha256}.ckpt`);
      return (await fsp.stat(file).catch(() => null))?.isFile() ? file : null;
    }
    const names = await fsp.readdir(dir).catch(() => [] as string[]);
    const exact = `${sha256}.arrow`;
    if (names.includes(exact)) return path.join(dir, exact);
    const tag = hashSuffix(sha256);
    const match = names.find((n) => n.endsWith(tag) && !n.startsWith('.'));
    return match ? path.join(dir, match) : null;
  }

  async put(kind: BlobKind, bytes: Uint8Array): Promise<string> {
    const sha = sha256Of(bytes);
    if (await this.file(kind, sha)) return sha;
    await writeFileAtomic(path.join(this.dirOf(kind), kind === 'checkpoint' ? `${sha}.ckpt` : `${sha}.arrow`), bytes);
    return sha;
  }

  async putFile(kind: BlobKind, localPath: string, sha256: string): Promise<void> {
    const bytes = await fsp.readFile(localPath);
    const actual = sha256Of(bytes);
    if (actual !== sha256) throw new BlobCorruptError({ kind, sha256 }, localPath, actual);
    await this.put(kind, bytes);
  }

  async get(kind: BlobKind, sha256: string): Promise<Uint8Array> {
    const file = await this.file(kind, sha256);
    const bytes = file ? await fsp.readFile(file).catch(() => null) : null;
    if (!bytes) throw new BlobMissingError({ kind, sha256 }, this.dirOf(kind));
    const actual = sha256Of(bytes);
    if (actual !== sha256) throw new BlobCorruptError({ kind, sha256 }, this.dirOf(kind), actual);
    return bytes;
  }

  async has(kind: BlobKind, sha256: string): Promise<{ size: number } | null> {
    const file = await this.file(kind, sha256);
    const st = file ? await fsp.stat(file).catch(() => null) : null;
    return st ? { size: st.size } : null;
  }

  /** Shard files named by their writer are hashed to be listed: listing reads them all. */
  async list(kind?: BlobKind): Promise<(BlobRef & { size: number })[]> {
    const out: (BlobRef & { size: number })[] = [];
    if (kind === undefined || kind === 'checkpoint') {
      for (const n of await fsp.readdir(this.dirs.checkpointsDir).catch(() => [] as string[])) {
        const sha = n.slice(0, -'.ckpt'.length);
        if (!n.endsWith('.ckpt') || !HEX64.test(sha)) continue;
        const st = await fsp.stat(path.join(this.dirs.checkpointsDir, n)).catch(() => null);
        if (st?.isFile()) out.push({ kind: 'checkpoint', sha256: sha, size: st.size });
      }
    }
    if (kind === undefined || kind !== 'checkpoint') {
      for (const n of await fsp.readdir(this.dirs.shardsDir).catch(() => [] as string[])) {
        if (!n.endsWith('.arrow') || n.startsWith('.')) continue;
        const file = path.join(this.dirs.shardsDir, n);
        const st = await fsp.stat(file).catch(() => null);
        if (!st?.isFile()) continue;
        const named = n.slice(0, -'.arrow'.length);
        const sha = HEX64.test(named) ? named : await sha256File(file);
        out.push({ kind: kind ?? 'shard', sha256: sha, size: st.size });
      }
    }
    return out.sort((a, b) => (a.kind + a.sha256 < b.kind + b.sha256 ? -1 : 1));
  }

  async remove(refs: readonly BlobRef[]): Promise<void> {
    const touched = new Set<string>();
    for (const ref of refs) {
      const file = await this.file(ref.kind, ref.sha256);
      if (!file) continue;
      await fsp.rm(file, { force: true });
      touched.add(path.dirname(file));
    }
    // Durable before it resolves: a removed blob may hold deleted records, and must not come back.
    for (const dir of touched) await fsyncDir(dir);
  }
}

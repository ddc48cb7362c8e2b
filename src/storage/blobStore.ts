/**
 * The storage seam for immutable, content-addressed blobs (shard files, held-out files, checkpoints):
 * FsBlobStore keeps them in a workspace (or cache) folder, S3BlobStore in an S3-compatible bucket.
 */
import { SisaError } from '../util/errors.js';

export type BlobKind = 'shard' | 'heldout' | 'checkpoint';
export const BLOB_KINDS: readonly BlobKind[] = ['shard', 'heldout', 'checkpoint'];

export interface BlobRef {
  kind: BlobKind;
  sha256: string;
}

export interface BlobStore {
  /** Printable location (never credentials). */
  readonly location: string;
  /** Stores bytes under their sha256; idempotent; durable when it resolves. */
  put(kind: BlobKind, bytes: Uint8Array): Promise<string>;
  /** Streams a local file whose sha256 the caller knows; refused if the content does not match. */
  putFile(kind: BlobKind, localPath: string, sha256: string): Promise<void>;
  /** The blob's bytes, hash verified: BlobMissingError / BlobCorruptError otherwise. */
  get(kind: BlobKind, sha256: string): Promise<Uint8Array>;
  has(kind: BlobKind, sha256: string): Promise<{ size: number } | null>;
  list(kind?: BlobKind): Promise<(BlobRef & { size: number })[]>;
  /** Removes the blobs; durable when it resolves; missing blobs are not an error. */
  remove(refs: readonly BlobRef[]): Promise<void>;
}

export class BlobMissingError extends SisaError {
  constructor(readonly ref: BlobRef, where: string) {
    super('STATE', `${ref.kind} blob ${ref.sha256.slice(0, 12)} is missing from ${where}`);
  }
}

export class BlobCorruptError extends SisaError {
  constructor(readonly ref: BlobRef, where: string, actual: string) {
    super('STATE', `${ref.kind} blob ${ref.sha256.slice(0, 12)} in ${where} does not match its content hash (got ${actual.slice(0, 12)})`);
  }
}

/** The store could not be reached (network, 5xx) even after retries: a later attempt may succeed. */
export class StoreUnavailableError extends SisaError {
  readonly transient = true;
  constructor(message: string, cause?: unknown) {
    super('STATE', message, { cause });
  }
}

export function isTransient(err: unknown): boolean {
  return err instanceof StoreUnavailableError;
}

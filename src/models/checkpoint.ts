/**
 * Checkpoints: the parameters (and optimiser state) of a shard's model after a slice, in a small
 * binary format, stored content-addressed as `shards/checkpoints/<sha256>.ckpt`. The header holds no
 * time stamp, so the same training gives the same bytes and the same name.
 *
 * Layout: "SISACKP1" | u32 LE header length | header JSON | zero padding to 4 bytes | float32 LE data.
 */
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { errorMessage, stateError } from '../util/errors.js';
import { exists, writeFileAtomic } from '../util/fsx.js';
import { crashPoint } from '../util/faults.js';

const MAGIC = 'SISACKP1';

export interface TensorBlob {
  name: string;
  data: Float32Array;
}

export interface Checkpoint {
  meta: { shard: number; slice: number; buckets: number; hidden: number; step: number };
  /** Model parameters, in a fixed order. */
  params: TensorBlob[];
  /** Optimiser state (empty for plain SGD). */
  optimizer: TensorBlob[];
}

export function encodeCheckpoint(c: Checkpoint): Uint8Array {
  const tensors = [...c.params.map((t) => ({ ...t, kind: 'param' })), ...c.optimizer.map((t) => ({ ...t, kind: 'opt' }))];
  const header = JSON.stringify({ ...c.meta, tensors: tensors.map((t) => ({ name: t.name, kind: t.kind, length: t.data.length })) });
  const headerBytes = new TextEncoder().encode(header);
  const dataStart = Math.ceil((12 + headerBytes.length) / 4) * 4;
  const total = dataStart + tensors.reduce((s, t) => s + t.data.length * 4, 0);
  const out = new Uint8Array(total);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, headerBytes.length, true);
  out.set(headerBytes, 12);
  let at = dataStart;
  for (const t of tensors) {
    // Float32Array is little-endian on every platform Node runs on; copy the raw bytes.
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

export function decodeCheckpoint(bytes: Uint8Array): Checkpoint {
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) throw new Error('not a sisa checkpoint');
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerLen))) as Checkpoint['meta'] & {
    tensors: { name: string; kind: string; length: number }[];
  };
  let at = Math.ceil((12 + headerLen) / 4) * 4;
  const params: TensorBlob[] = [];
  const optimizer: TensorBlob[] = [];
  for (const t of header.tensors) {
    const end = at + t.length * 4;
    if (end > bytes.length) throw new Error('truncated checkpoint');
    const data = new Float32Array(t.length);
    new Uint8Array(data.buffer).set(bytes.subarray(at, end));
    (t.kind === 'param' ? params : optimizer).push({ name: t.name, data });
    at = end;
  }
  const { shard, slice, buckets, hidden, step } = header;
  return { meta: { shard, slice, buckets, hidden, step }, params, optimizer };
}

/** sha256 of the parameters only: two models with equal hashes have identical weights. */
export function paramsHash(params: readonly TensorBlob[]): string {
  const h = createHash('sha256');
  for (const p of params) {
    h.update(p.name);
    h.update(new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength));
  }
  return h.digest('hex');
}

export function checkpointPath(dir: string, sha: string): string {
  return path.join(dir, `${sha}.ckpt`);
}

/** Stores a checkpoint under its content hash and returns the hash. Idempotent. */
export async function storeCheckpoint(dir: string, bytes: Uint8Array): Promise<string> {
  const sha = createHash('sha256').update(bytes).digest('hex');
  const file = checkpointPath(dir, sha);
  if (!(await exists(file))) await writeFileAtomic(file, bytes);
  crashPoint('checkpoint:stored');
  return sha;
}

export async function loadCheckpoint(dir: string, sha: string): Promise<Checkpoint> {
  const file = checkpointPath(dir, sha);
  let bytes: Buffer;
  try {
    bytes = await fsp.readFile(file);
  } catch (err) {
    throw stateError(`${file}: checkpoint missing (${errorMessage(err)}); run 'sisa verify'`, err);
  }
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== sha) throw stateError(`${file}: checkpoint content does not match its hash; it was modified or truncated`);
  try {
    return decodeCheckpoint(bytes);
  } catch (err) {
    throw stateError(`${file}: unreadable checkpoint (${errorMessage(err)})`, err);
  }
}

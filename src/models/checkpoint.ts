/**
 * Checkpoints: the parameters (and optimiser state) of a shard's model after a slice, in a small
 * binary format, stored content-addressed as `shards/checkpoints/<sha256>.ckpt`. The header holds no
 * time stamp, so the same training gives the same bytes and the same name.
 *
 * Layout (v2): "SISACKP2" | u32 LE header length | header JSON | zero padding to 4 bytes | per tensor its
 * data. A hashed model touches a small part of its buckets, so a tensor is stored sparse when that is
 * smaller: a fill value (the most common of a few sampled values, e.g. 0 for weights, the initial
 * accumulator for AdaGrad), the indices that differ from it as LEB128 deltas (or "same indices as the
 * previous tensor", which AdaGrad's accumulator usually is), padded to 4 bytes, then their float32 values.
 *
 * v3 ("SISACKP3", written now): the same header (with `body`: the data's length before compression) and
 * the v2 data section compressed with raw deflate at level 3. Float32 weights compress by a third
 * (their high bytes repeat; level 3 was smaller and faster than 1, 6 and 9, and than byte-plane
 * shuffling, on Davidson's checkpoints). Decoding inflates it back, bit for bit. Content hashes are
 * over the stored (compressed) bytes. v1 ("SISACKP1": every tensor dense) and v2 files still decode.
 */
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { deflateRaw, deflateRawSync, inflateRawSync } from 'node:zlib';
import { errorMessage, stateError } from '../util/errors.js';
import { exists, writeFileAtomic } from '../util/fsx.js';
import { crashPoint } from '../util/faults.js';

const MAGIC_V1 = 'SISACKP1';
const MAGIC_V2 = 'SISACKP2';
const MAGIC = 'SISACKP3';
/** zlib's level for v3 bodies. Changing it changes checkpoint bytes (and names): it is part of the format. */
const DEFLATE_LEVEL = 3;
const deflateRawAsync = promisify(deflateRaw);

/**
 * zlib's output buffer for a body: room for all of it (deflate never grows data by more than a few bytes
 * per 16 KiB block), so the thread pool compresses it in one pass; with the default 16 KiB, each chunk
 * made a round trip to this thread (about 40 ms per training worker on Davidson). The bytes are the same.
 */
function deflateChunk(bodyLength: number): number {
  return Math.max(16 * 1024, bodyLength + (bodyLength >> 10) + 1024);
}

export interface TensorBlob {
  name: string;
  data: Float32Array;
  /**
   * The same tensor listed sparsely, when its producer has it in that form (the fused kernel): the
   * encoder then works from the listed coordinates instead of scanning every bucket, and `data` may be
   * computed only when read (see sparseBlob).
   */
  sparse?: SparseTensor;
}

/**
 * A tensor of `length` coordinates that all hold `fill` except the listed ones: `indices` ascending,
 * `values[i]` at `indices[i]`. A listed coordinate may also hold the fill, unless `exact`.
 */
export interface SparseTensor {
  length: number;
  fill: number;
  indices: Int32Array;
  values: Float32Array;
  /**
   * Every listed coordinate holds a value other than the fill (bit for bit): the encoder then stores the
   * list as it is, without scanning it for fill values.
   */
  exact?: boolean;
}

/** The dense form of a sparse tensor (values copied as bits, so that every payload survives). */
export function densify(t: SparseTensor): Float32Array {
  const data = new Float32Array(t.length).fill(t.fill);
  const dataBits = new Uint32Array(data.buffer);
  const valBits = new Uint32Array(t.values.buffer, t.values.byteOffset, t.values.length);
  const idx = t.indices;
  for (let k = 0; k < idx.length; k++) dataBits[idx[k]!] = valBits[k]!;
  return data;
}

/** A tensor given sparsely; its dense `data` is built on first read (a stored checkpoint never needs it). */
export function sparseBlob(name: string, sparse: SparseTensor): TensorBlob {
  let data: Float32Array | null = null;
  return {
    name,
    sparse,
    get data(): Float32Array {
      return (data ??= densify(sparse));
    },
  };
}

/** The training engine that wrote a checkpoint; absent for the tfjs engine. */
export interface KernelId {
  name: string;
  version: number;
}

export interface Checkpoint {
  meta: {
    shard: number;
    slice: number;
    buckets: number;
    hidden: number;
    step: number;
    kernel?: KernelId;
    /** The runtime that produced it (see models/runtime.ts): a checkpoint carries its own provenance. */
    runtime?: { backend: string; versions?: Record<string, string> };
  };
  /** Model parameters, in a fixed order. */
  params: TensorBlob[];
  /** Optimiser state (empty for plain SGD). */
  optimizer: TensorBlob[];
}

interface TensorHeader {
  name: string;
  kind: string;
  length: number;
  /** Sparse tensors only: the value of every coordinate not listed, its listed count, and how its indices are stored. */
  fill?: number;
  count?: number;
  /** Byte length of the LEB128 index deltas; 0 with `count` > 0 means the previous tensor's indices. */
  indexBytes?: number;
}

/** The most frequent of a few evenly spaced samples: the background value of a mostly untouched tensor. */
function backgroundValue(length: number, valueAt: (i: number) => number): number {
  const seen = new Map<number, number>();
  const samples = Math.min(33, length);
  for (let k = 0; k < samples; k++) {
    const v = valueAt(Math.floor((k * (length - 1)) / Math.max(1, samples - 1)));
    seen.set(v, (seen.get(v) ?? 0) + 1);
  }
  let best = 0;
  let bestCount = -1;
  for (const [v, c] of seen) if (c > bestCount || (c === bestCount && v < best)) [best, bestCount] = [v, c];
  return best;
}

function sameIndices(a: Int32Array | null, b: Int32Array): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function leb128Deltas(idx: Int32Array): Uint8Array {
  const out = new Uint8Array(idx.length * 5);
  let at = 0;
  let prev = -1;
  for (let i = 0; i < idx.length; i++) {
    let d = idx[i]! - prev - 1; // strictly increasing, so the delta minus one is ≥ 0
    prev = idx[i]!;
    while (d >= 0x80) {
      out[at++] = (d & 0x7f) | 0x80;
      d >>>= 7;
    }
    out[at++] = d;
  }
  return out.subarray(0, at);
}

interface EncodedTensor {
  header: TensorHeader;
  chunks: Uint8Array[];
}

function pad4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

function bytesOf(a: Float32Array): Uint8Array {
  // Float32Array is little-endian on every platform Node runs on; copy the raw bytes.
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The value at coordinate i of a sparse tensor (a binary search of its listed coordinates). */
function sparseValueAt(t: SparseTensor, i: number): number {
  let lo = 0;
  let hi = t.indices.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const at = t.indices[mid]!;
    if (at === i) return t.values[mid]!;
    if (at < i) lo = mid + 1;
    else hi = mid - 1;
  }
  return Math.fround(t.fill); // as a float32 tensor holds it
}

const f32Bits = (x: number): number => new Uint32Array(Float32Array.of(x).buffer)[0]!;

/**
 * A checkpoint file's header and (uncompressed) body. They depend only on each tensor's values, not on
 * whether it came dense or sparse: a sparse tensor gives exactly the bytes of its dense form, in time
 * proportional to its listed coordinates.
 */
function encodeBody(c: Checkpoint): { header: string; body: Uint8Array } {
  const tensors = [...c.params.map((t) => ({ blob: t, kind: 'param' })), ...c.optimizer.map((t) => ({ blob: t, kind: 'opt' }))];
  const encoded: EncodedTensor[] = [];
  let prevIdx: Int32Array | null = null;
  // Scratch for the coordinates that differ from a tensor's fill, grown to the largest tensor scanned.
  let scratchIdx = new Int32Array(0);
  let scratchBits = new Uint32Array(0);
  const scratch = (n: number) => {
    if (scratchIdx.length < n) {
      scratchIdx = new Int32Array(n);
      scratchBits = new Uint32Array(n);
    }
  };
  for (const { blob: t, kind } of tensors) {
    const sparse = t.sparse;
    const length = sparse ? sparse.length : t.data.length;
    const bg = sparse ? backgroundValue(length, (i) => sparseValueAt(sparse, i)) : backgroundValue(length, (i) => t.data[i]!);
    const fill = Object.is(bg, -0) ? 0 : bg; // JSON has no −0 (and no NaN, which stays dense below)
    // Compare bit patterns, not numbers: exact for −0 and NaN payloads, and a plain integer loop.
    const fillBits = f32Bits(fill);
    // One pass collects the coordinates that differ from the fill into scratch space (a tensor is
    // scanned once, not counted first and collected after). A sparse tensor whose fill is the one
    // sampled needs only its listed coordinates looked at.
    let count = 0;
    let listedAsIs: SparseTensor | null = null;
    if (sparse && !Number.isNaN(fill) && f32Bits(sparse.fill) === fillBits) {
      if (sparse.exact) {
        listedAsIs = sparse; // already the coordinates that differ from the fill
        count = sparse.indices.length;
      } else {
        const listed = sparse.indices;
        const bits = new Uint32Array(sparse.values.buffer, sparse.values.byteOffset, sparse.values.length);
        scratch(listed.length);
        // Branch-free (whether a value is the fill goes either way at random), on locals (not the
        // closure's variables, which the compiled loop would reload at every step).
        const outIdx = scratchIdx;
        const outBits = scratchBits;
        for (let k = 0; k < listed.length; k++) {
          const b = bits[k]!;
          outIdx[count] = listed[k]!;
          outBits[count] = b;
          count += b !== fillBits ? 1 : 0;
        }
      }
    } else {
      const u32 = new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length);
      scratch(length);
      const outIdx = scratchIdx;
      const outBits = scratchBits;
      for (let i = 0; i < u32.length; i++) {
        const bits = u32[i]!;
        outIdx[count] = i;
        outBits[count] = bits;
        count += bits !== fillBits ? 1 : 0;
      }
    }
    // Sparse costs ≤ 5 + 4 bytes per listed coordinate; keep it only when clearly smaller than dense.
    if (length < 64 || Number.isNaN(fill) || count * 9 > length * 4) {
      encoded.push({ header: { name: t.name, kind, length }, chunks: [bytesOf(t.data)] });
      prevIdx = null;
      continue;
    }
    const idx = listedAsIs ? listedAsIs.indices : scratchIdx.slice(0, count);
    const vals = listedAsIs ? listedAsIs.values : new Float32Array(scratchBits.buffer.slice(0, count * 4));
    const shared = count > 0 && sameIndices(prevIdx, idx);
    const deltas = shared ? new Uint8Array(0) : leb128Deltas(idx);
    const padded = new Uint8Array(pad4(deltas.length));
    padded.set(deltas);
    encoded.push({ header: { name: t.name, kind, length, fill, count, indexBytes: deltas.length }, chunks: [padded, bytesOf(vals)] });
    prevIdx = idx;
  }
  const bodyLength = encoded.reduce((s, e) => s + e.chunks.reduce((t, ch) => t + ch.length, 0), 0);
  const body = new Uint8Array(bodyLength);
  let at = 0;
  for (const e of encoded)
    for (const ch of e.chunks) {
      body.set(ch, at);
      at += ch.length;
    }
  const header = JSON.stringify({ ...c.meta, tensors: encoded.map((e) => e.header), body: bodyLength });
  return { header, body };
}

function assemble(header: string, packed: Uint8Array): Uint8Array {
  const headerBytes = new TextEncoder().encode(header);
  const out = new Uint8Array(12 + headerBytes.length + packed.length);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, headerBytes.length, true);
  out.set(headerBytes, 12);
  out.set(packed, 12 + headerBytes.length);
  return out;
}

export function encodeCheckpoint(c: Checkpoint): Uint8Array {
  const { header, body } = encodeBody(c);
  return assemble(header, deflateRawSync(body, { level: DEFLATE_LEVEL }));
}

/**
 * The same bytes as encodeCheckpoint, with the deflate (most of the cost) on libuv's thread pool: a
 * one-shard retrain stores each checkpoint while its next slice trains on this thread.
 */
export async function encodeCheckpointAsync(c: Checkpoint): Promise<Uint8Array> {
  const { header, body } = encodeBody(c);
  return assemble(header, await deflateRawAsync(body, { level: DEFLATE_LEVEL, chunkSize: deflateChunk(body.length) }));
}

function readFloats(bytes: Uint8Array, at: number, n: number): Float32Array {
  if (at + n * 4 > bytes.length) throw new Error('truncated checkpoint');
  const data = new Float32Array(n);
  new Uint8Array(data.buffer).set(bytes.subarray(at, at + n * 4));
  return data;
}

/*
 * Why the loops over a tensor's indices are functions of their own, not inlined in decodeCheckpoint: a
 * process decodes a few checkpoints when it starts (`sisa predict` loads S of them), with its code still
 * cold, and V8 compiled the one large function again at each of its loops' first surprises (six times in
 * one `sisa predict` on Davidson, about 140 ms of compilation on cores the prediction was using).
 */

/** The scale of a gap's fifth byte, its last: 128^4. */
const MAX_GAP_SCALE = 128 ** 4;

/** `count` indices below `length`, stored as LEB128 gaps (index − previous − 1) in bytes[at, end). */
function readIndices(bytes: Uint8Array, at: number, end: number, count: number, length: number, name: string): Int32Array {
  const idx = new Int32Array(count);
  let prev = -1;
  let p = at;
  for (let k = 0; k < count; k++) {
    let d = 0;
    let scale = 1; // 128^(bytes read): exact powers of two, as 2 ** shift
    let byte: number;
    do {
      if (p >= end) throw new Error(`tensor ${name}: index data ends early`);
      // Every index fits in 31 bits, so in 5 bytes. A longer run is damage, and past 147 bytes its scale
      // would overflow to Infinity, the gap become NaN, and NaN pass the range check below.
      if (scale > MAX_GAP_SCALE) throw new Error(`tensor ${name}: index data is damaged (a gap of more than 5 bytes)`);
      byte = bytes[p++]!;
      d += (byte & 0x7f) * scale;
      scale *= 128;
    } while (byte & 0x80);
    prev = prev + d + 1;
    if (prev >= length) throw new Error(`tensor ${name}: index ${prev} out of range`);
    idx[k] = prev;
  }
  return idx;
}

/** data[idx[k]] = values[k], as bits. */
function scatterBits(data: Uint32Array, idx: Int32Array, values: Uint32Array): void {
  for (let k = 0; k < idx.length; k++) data[idx[k]!] = values[k]!;
}

export function decodeCheckpoint(stored: Uint8Array): Checkpoint {
  const magic = stored.length >= 12 ? new TextDecoder().decode(stored.subarray(0, 8)) : '';
  if (magic !== MAGIC && magic !== MAGIC_V2 && magic !== MAGIC_V1) throw new Error('not a sisa checkpoint');
  const headerLen = new DataView(stored.buffer, stored.byteOffset).getUint32(8, true);
  if (12 + headerLen > stored.length) throw new Error('truncated checkpoint');
  const header = JSON.parse(new TextDecoder().decode(stored.subarray(12, 12 + headerLen))) as Checkpoint['meta'] & { tensors: TensorHeader[]; body?: number };
  // v1/v2: the data follows the header (padded to 4 bytes); v3: it is deflated right after the header.
  let bytes = stored;
  let at = pad4(12 + headerLen);
  if (magic === MAGIC) {
    if (!Number.isSafeInteger(header.body) || header.body! < 0) throw new Error('header has no body length');
    bytes = inflateRawSync(stored.subarray(12 + headerLen), { maxOutputLength: Math.max(1, header.body!) });
    if (bytes.length !== header.body) throw new Error(`body is ${bytes.length} bytes after inflating, the header says ${header.body}`);
    at = 0;
  }
  const params: TensorBlob[] = [];
  const optimizer: TensorBlob[] = [];
  let prevIdx: Int32Array | null = null;
  for (const t of header.tensors) {
    let data: Float32Array;
    if (t.count === undefined) {
      data = readFloats(bytes, at, t.length);
      at += t.length * 4;
      prevIdx = null;
    } else {
      let idx: Int32Array;
      if (t.indexBytes === 0 && t.count > 0) {
        if (!prevIdx || prevIdx.length !== t.count) throw new Error(`tensor ${t.name}: shared indices without a matching previous tensor`);
        idx = prevIdx;
      } else {
        const end = at + t.indexBytes!;
        if (end > bytes.length) throw new Error('truncated checkpoint');
        idx = readIndices(bytes, at, end, t.count, t.length, t.name);
        at += pad4(t.indexBytes!);
      }
      const vals = readFloats(bytes, at, t.count);
      at += t.count * 4;
      data = new Float32Array(t.length).fill(t.fill!);
      scatterBits(new Uint32Array(data.buffer), idx, new Uint32Array(vals.buffer)); // bits, so NaN payloads survive

      prevIdx = idx;
    }
    (t.kind === 'param' ? params : optimizer).push({ name: t.name, data });
  }
  const { shard, slice, buckets, hidden, step, kernel, runtime } = header;
  return {
    meta: {
      shard,
      slice,
      buckets,
      hidden,
      step,
      ...(kernel ? { kernel: { name: kernel.name, version: kernel.version } } : {}),
      ...(runtime ? { runtime: { backend: runtime.backend, ...(runtime.versions ? { versions: { ...runtime.versions } } : {}) } } : {}),
    },
    params,
    optimizer,
  };
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

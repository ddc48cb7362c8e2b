/**
 * Arrow IPC shard files. A shard file holds, per record: id, text, label, slice, and one 0/1 column per
 * sensitive attribute. Held-out splits use the same schema with slice = -1.
 *
 * The hashed sparse features are a function of the text and the feature configuration. A writer told
 * that configuration stores it in the schema metadata (`sisa.features`) instead of the features, and a
 * reader recomputes them with the same hashing, bit for bit: the features were three quarters of a
 * workspace and are at their entropy (hashed indices are random), while hashing a shard's texts costs
 * tens of milliseconds. Files written without it (and those from before) carry a compact feature column.
 *
 * Files are written to a temporary name, fsynced, and renamed to a name that contains their content
 * hash, so a file is never modified in place; the manifest decides which files are current.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type * as ArrowApi from 'apache-arrow';
import type { Data } from 'apache-arrow';
import { commitTempFile, fsyncFile, tempPathFor } from '../util/fsx.js';
import { errorMessage, SisaError, stateError } from '../util/errors.js';
import { crashPoint } from '../util/faults.js';
import { hashTexts, type FeatureConfig } from '../features/hashing.js';
import { dataFileName } from '../storage/fileNames.js';

/*
 * apache-arrow's ESM entry point is some 150 modules: 0.15–0.3 s to load, paid by every command that
 * reads a shard file (a deletion's fixed cost). The same release ships its whole API as one minified
 * file, which loads in about 20 ms. Only this module uses it, so no Arrow object crosses between the
 * two builds. That build has no Node stream adapter; the writer below pipes its async iterator instead.
 */
const { Binary, Field, Int16, makeData, RecordBatch, RecordBatchFileWriter, Schema, Struct, tableFromIPC, Uint8, Utf8 } =
  createRequire(import.meta.url)('apache-arrow/Arrow.esnext.min') as typeof ArrowApi;
type Binary = ArrowApi.Binary;
type Field = ArrowApi.Field;
type Int16 = ArrowApi.Int16;
type RecordBatch = ArrowApi.RecordBatch;
type Schema = ArrowApi.Schema;
type Uint8 = ArrowApi.Uint8;

export const GROUP_PREFIX = 'group:';

/** A block of records in columnar form (CSR layout for the sparse features). */
export interface Rows {
  ids: string[];
  texts: string[];
  labels: Uint8Array;
  slices: Int16Array;
  /** Row r's features are indices/values[offsets[r] .. offsets[r+1]). */
  offsets: Int32Array;
  indices: Int32Array;
  values: Float32Array;
  /** Sensitive attribute name → 1 if the record is in the sensitive group. */
  groups: Record<string, Uint8Array>;
}

export function rowCount(rows: Rows): number {
  return rows.ids.length;
}

/** Accumulates records one at a time into growable typed arrays. */
export class RowsBuilder {
  private ids: string[] = [];
  private texts: string[] = [];
  private labels: number[] = [];
  private slices: number[] = [];
  private offsets: number[] = [0];
  private indices = new Int32Array(1024);
  private values = new Float32Array(1024);
  private nnz = 0;
  private groups: Record<string, number[]>;

  constructor(readonly groupNames: readonly string[]) {
    this.groups = Object.fromEntries(groupNames.map((g) => [g, []]));
  }

  get length(): number {
    return this.ids.length;
  }

  push(rec: {
    id: string;
    text: string;
    label: number;
    slice: number;
    indices: ArrayLike<number>;
    values: ArrayLike<number>;
    groups: Record<string, number>;
  }): void {
    this.ids.push(rec.id);
    this.texts.push(rec.text);
    this.labels.push(rec.label);
    this.slices.push(rec.slice);
    const k = rec.indices.length;
    if (this.nnz + k > this.indices.length) {
      const cap = Math.max(this.indices.length * 2, this.nnz + k);
      const ni = new Int32Array(cap);
      ni.set(this.indices.subarray(0, this.nnz));
      const nv = new Float32Array(cap);
      nv.set(this.values.subarray(0, this.nnz));
      this.indices = ni;
      this.values = nv;
    }
    this.indices.set(rec.indices, this.nnz);
    this.values.set(rec.values, this.nnz);
    this.nnz += k;
    this.offsets.push(this.nnz);
    for (const g of this.groupNames) this.groups[g]!.push(rec.groups[g] ?? 0);
  }

  /** Returns the accumulated rows and resets the builder. */
  take(): Rows {
    const rows: Rows = {
      ids: this.ids,
      texts: this.texts,
      labels: Uint8Array.from(this.labels),
      slices: Int16Array.from(this.slices),
      offsets: Int32Array.from(this.offsets),
      indices: this.indices.slice(0, this.nnz),
      values: this.values.slice(0, this.nnz),
      groups: Object.fromEntries(this.groupNames.map((g) => [g, Uint8Array.from(this.groups[g]!)])),
    };
    this.ids = [];
    this.texts = [];
    this.labels = [];
    this.slices = [];
    this.offsets = [0];
    this.nnz = 0;
    this.groups = Object.fromEntries(this.groupNames.map((g) => [g, []]));
    return rows;
  }
}

/** Schema metadata key of the feature configuration that recomputes a file's features from its texts. */
const FEATURES_KEY = 'sisa.features';

function schemaFor(groupNames: readonly string[], features: FeatureConfig | undefined): Schema {
  return new Schema(
    [
      new Field('id', new Utf8(), false),
      new Field('text', new Utf8(), false),
      new Field('label', new Uint8(), false),
      new Field('slice', new Int16(), false),
      ...(features ? [] : [new Field(FEATURE_COLUMN, new Binary(), false)]),
      ...groupNames.map((g) => new Field(GROUP_PREFIX + g, new Uint8(), false)),
    ],
    features ? new Map([[FEATURES_KEY, featureConfigJson(features)]]) : undefined,
  );
}

/** The configuration as stored: fixed key order, so the same configuration gives the same bytes. */
function featureConfigJson(f: FeatureConfig): string {
  return JSON.stringify({ buckets: f.buckets, ngrams: f.ngrams, signed: f.signed, ...(f.chars !== undefined ? { chars: f.chars } : {}) });
}

/**
 * A string column without nulls, encoded in one pass: Arrow's generic builder (vectorFromArray) costs
 * tens of milliseconds for a shard's texts on a cold start, which a deletion's rewrite pays every time.
 * Same layout (int32 offsets, UTF-8 bytes), so the same file bytes.
 */
function utf8Column(strings: readonly string[]): Data<ArrowApi.Utf8> {
  const offsets = new Int32Array(strings.length + 1);
  let bytes = 0;
  for (let i = 0; i < strings.length; i++) offsets[i + 1] = bytes += Buffer.byteLength(strings[i]!, 'utf8');
  const data = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < strings.length; i++) data.write(strings[i]!, offsets[i]!, 'utf8');
  return makeData({ type: new Utf8(), length: strings.length, nullCount: 0, valueOffsets: offsets, data: new Uint8Array(data.buffer, data.byteOffset, bytes) });
}

function toBatch(schema: Schema, rows: Rows, groupNames: readonly string[], withFeatures: boolean): RecordBatch {
  const n = rows.ids.length;
  const children: Data[] = [
    utf8Column(rows.ids),
    utf8Column(rows.texts),
    makeData({ type: new Uint8(), length: n, nullCount: 0, data: rows.labels }),
    makeData({ type: new Int16(), length: n, nullCount: 0, data: rows.slices }),
  ];
  if (withFeatures) {
    const feat = encodeFeatures(rows);
    children.push(makeData({ type: new Binary(), length: n, nullCount: 0, valueOffsets: feat.offsets, data: feat.bytes }));
  }
  for (const g of groupNames) children.push(makeData({ type: new Uint8(), length: n, nullCount: 0, data: rows.groups[g]! }));
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, nullCount: 0, children }));
}

export interface WrittenFile {
  /** File name relative to the shards folder. */
  file: string;
  sha256: string;
  rows: number;
}

/** How a shard file is written. */
export interface ShardFileOptions {
  /**
   * The configuration the rows' features were hashed with (hashText of each text): the file then stores
   * it instead of the features. Without it the features themselves are stored.
   */
  features?: FeatureConfig;
}

/**
 * Writes record batches to a temporary file as they come; `finish` fsyncs it and renames it to
 * `<prefix>-<hash12>.arrow` in `dir`. `abort` removes the temporary file.
 */
export class ShardFileWriter {
  private readonly schema: Schema;
  private readonly writer = new RecordBatchFileWriter();
  private readonly hash = createHash('sha256');
  private readonly tmp: string;
  private readonly done: Promise<void>;
  /** The stream's error (a full disk, EIO), kept until the next write or finish throws it. */
  private failure: unknown = null;
  private rows = 0;

  constructor(
    private readonly dir: string,
    private readonly prefix: string,
    private readonly groupNames: readonly string[],
    private readonly options: ShardFileOptions = {},
  ) {
    this.schema = schemaFor(groupNames, options.features);
    this.tmp = tempPathFor(path.join(dir, `${prefix}.arrow`));
    const out = createWriteStream(this.tmp);
    const stream = Readable.from(this.writer, { objectMode: false });
    stream.on('data', (chunk: Uint8Array) => this.hash.update(chunk));
    stream.pipe(out);
    this.done = new Promise((resolve, reject) => {
      out.on('finish', resolve);
      out.on('error', reject);
      stream.on('error', reject);
    });
    // Nothing awaits `done` before finish(), and ingest keeps many writers open at once: a disk error
    // in one of them would be an unhandled rejection (a crash with a stack, no journal abort). It is
    // kept instead, and the caller gets it from its next call, where it can abort cleanly.
    this.done.catch((err: unknown) => {
      this.failure ??= withPath(err, this.tmp);
    });
  }

  write(rows: Rows): void {
    if (this.failure) throw this.failure;
    if (rows.ids.length === 0) return;
    this.writer.write(toBatch(this.schema, rows, this.groupNames, !this.options.features));
    this.rows += rows.ids.length;
  }

  async finish(): Promise<WrittenFile> {
    if (this.rows === 0) this.writer.write(toBatch(this.schema, new RowsBuilder(this.groupNames).take(), this.groupNames, !this.options.features));
    if (this.failure) throw this.failure;
    this.writer.finish();
    await this.done.catch((err: unknown) => {
      throw withPath(err, this.tmp);
    });
    await fsyncFile(this.tmp);
    const sha256 = this.hash.digest('hex');
    const file = dataFileName(this.prefix, sha256);
    crashPoint('shard:before-rename');
    await commitTempFile(this.tmp, path.join(this.dir, file));
    return { file, sha256, rows: this.rows };
  }

  async abort(): Promise<void> {
    try {
      this.writer.finish();
      await this.done;
    } catch {
      // already failed; we only clean up
    }
    await fsp.rm(this.tmp, { force: true });
  }
}

/** A write error names no file (only open/rename do); say which one, since the message is all a person sees. */
function withPath(err: unknown, file: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e === 'object' && typeof e.code === 'string' && !e.path) e.path = file;
  return err;
}

export async function writeRowsFile(dir: string, prefix: string, rows: Rows, groupNames: readonly string[], options: ShardFileOptions = {}): Promise<WrittenFile> {
  const w = new ShardFileWriter(dir, prefix, groupNames, options);
  try {
    w.write(rows);
    return await w.finish();
  } catch (err) {
    await w.abort();
    throw err;
  }
}

/** How a shard file is read. */
export interface ReadRowsOptions {
  /**
   * The caller does not use the features (it locates ids, or rewrites the file with ShardFileOptions
   * `features`): they are not recomputed, and every row's feature list is empty.
   */
  skipFeatures?: boolean;
}

/** Reads a whole shard or held-out file into columnar rows, checking its hash when one is given. */
export async function readRowsFile(file: string, expectedSha256?: string, options: ReadRowsOptions = {}): Promise<Rows> {
  let bytes: Buffer;
  try {
    bytes = await fsp.readFile(file);
  } catch (err) {
    throw stateError(`${file}: cannot read shard file (${errorMessage(err)}); run 'sisa verify'`, err);
  }
  if (expectedSha256) {
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== expectedSha256)
      throw stateError(`${file}: content hash ${actual.slice(0, 12)} does not match the manifest (${expectedSha256.slice(0, 12)}); the file was modified or truncated`);
  }
  try {
    return decodeRows(bytes, options.skipFeatures ?? false);
  } catch (err) {
    if (err instanceof SisaError) throw err; // not the file's fault (sisa's featurisation kernel is missing)
    throw stateError(`${file}: not a valid Arrow shard file (${errorMessage(err)})`, err);
  }
}

function decodeRows(bytes: Uint8Array, skipFeatures: boolean): Rows {
  const table = tableFromIPC(bytes);
  const n = table.numRows;
  const col = (name: string) => {
    const c = table.getChild(name);
    if (!c) throw new Error(`missing column '${name}'`);
    return c;
  };
  const labels = new Uint8Array(n);
  const slices = new Int16Array(n);
  copyPrimitive(col('label').data, labels);
  copyPrimitive(col('slice').data, slices);
  const texts = col('text').toArray() as string[];
  const stored = table.schema.metadata.get(FEATURES_KEY);
  // Files written before the compact column hold two list columns (int32 indices, float32 values).
  const { offsets, indices, values } = skipFeatures
    ? { offsets: new Int32Array(n + 1), indices: new Int32Array(0), values: new Float32Array(0) }
    : stored !== undefined
      ? hashTexts(texts, parseFeatureConfig(stored))
      : table.getChild(FEATURE_COLUMN)
        ? decodeFeatures(col(FEATURE_COLUMN).data)
        : legacyFeatures(col('feat_idx').data, col('feat_val').data);
  const groups: Record<string, Uint8Array> = {};
  for (const f of table.schema.fields) {
    if (f.name.startsWith(GROUP_PREFIX)) {
      const g = new Uint8Array(n);
      copyPrimitive(col(f.name).data, g);
      groups[f.name.slice(GROUP_PREFIX.length)] = g;
    }
  }
  return {
    ids: col('id').toArray() as string[],
    texts,
    labels,
    slices,
    offsets,
    indices: indices as Int32Array,
    values: values as Float32Array,
    groups,
  };
}

function parseFeatureConfig(json: string): FeatureConfig {
  const f = JSON.parse(json) as Partial<FeatureConfig>;
  const int = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  if (!int(f.buckets) || !int(f.ngrams) || typeof f.signed !== 'boolean' || (f.chars !== undefined && !int(f.chars)))
    throw new Error(`invalid feature configuration in the schema metadata: ${json}`);
  return { buckets: f.buckets!, ngrams: f.ngrams!, signed: f.signed, ...(f.chars !== undefined ? { chars: f.chars } : {}) };
}

/**
 * The sparse features of all rows in one binary column, about 3 bytes per feature instead of 8 (the
 * features were 3/4 of a workspace). Per row: varint(4·nnz + mode), then
 * - mode 0: per feature varint(4·gap + tag), the gap to the previous (sorted) index, with its count
 *   in the tag: 0 for +1, 1 for −1 (93% of Davidson's counts are ±1), 2 for any other count, which a
 *   zigzag varint follows. hashText's values are counts scaled by 1/‖counts‖, so the decoder
 *   recomputes them with the same float operations, bit for bit; the encoder checks that for each
 *   row before choosing this mode.
 * - mode 1 (any row that is not of that form, or not sorted): raw little-endian int32 indices, then
 *   float32 values.
 * Modes 2 and 3 are unused (a reader refuses them).
 */
const FEATURE_COLUMN = 'feat';

class ByteSink {
  bytes = new Uint8Array(1 << 16);
  at = 0;
  private ensure(k: number): void {
    if (this.at + k <= this.bytes.length) return;
    const next = new Uint8Array(Math.max(this.bytes.length * 2, this.at + k));
    next.set(this.bytes.subarray(0, this.at));
    this.bytes = next;
  }
  varint(v: number): void {
    this.ensure(5);
    while (v >= 0x80) {
      this.bytes[this.at++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.bytes[this.at++] = v;
  }
  raw(src: Uint8Array): void {
    this.ensure(src.length);
    this.bytes.set(src, this.at);
    this.at += src.length;
  }
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);
function f32Bits(x: number): number {
  f32Scratch[0] = x;
  return u32Scratch[0]!;
}

/** Integer counts c with fround(c_i / ‖c‖) === values[i] bit for bit, or null when there are none. */
function countsOf(values: Float32Array, from: number, to: number, out: Int32Array): boolean {
  let min = Infinity;
  for (let j = from; j < to; j++) {
    const a = Math.abs(values[j]!);
    if (a > 0 && a < min) min = a;
  }
  let norm = 0;
  for (let j = from; j < to; j++) {
    const c = min === Infinity ? 0 : Math.round(values[j]! / min);
    if (!(Math.abs(c) < 1 << 24)) return false;
    out[j - from] = c;
    norm += c * c;
  }
  // The same operations as hashText (and as decodeFeatures): value = fround(count · (1/√norm)).
  const inv = norm > 0 ? 1 / Math.sqrt(norm) : 1;
  for (let j = from; j < to; j++) if (f32Bits(out[j - from]! * inv) !== f32Bits(values[j]!)) return false;
  return true;
}

function encodeFeatures(rows: Rows): { offsets: Int32Array; bytes: Uint8Array } {
  const n = rows.ids.length;
  const offsets = new Int32Array(n + 1);
  const sink = new ByteSink();
  let counts = new Int32Array(256);
  for (let r = 0; r < n; r++) {
    const from = rows.offsets[r]!;
    const to = rows.offsets[r + 1]!;
    const k = to - from;
    if (counts.length < k) counts = new Int32Array(k);
    let sorted = true;
    for (let j = from; j < to; j++) if (rows.indices[j]! < 0 || rows.indices[j]! >= 1 << 26 || (j > from && rows.indices[j]! <= rows.indices[j - 1]!)) sorted = false;
    if (sorted && countsOf(rows.values, from, to, counts)) {
      sink.varint(k * 4);
      let prev = 0;
      for (let j = from; j < to; j++) {
        const gap = rows.indices[j]! - prev;
        prev = rows.indices[j]!;
        const c = counts[j - from]!;
        if (c === 1 || c === -1) sink.varint(gap * 4 + (c === 1 ? 0 : 1));
        else {
          sink.varint(gap * 4 + 2);
          sink.varint(c >= 0 ? c * 2 : -c * 2 - 1);
        }
      }
    } else {
      sink.varint(k * 4 + 1);
      // Little-endian on every platform Node runs on; copy through fresh arrays for alignment.
      sink.raw(new Uint8Array(Int32Array.from(rows.indices.subarray(from, to)).buffer));
      sink.raw(new Uint8Array(Float32Array.from(rows.values.subarray(from, to)).buffer));
    }
    offsets[r + 1] = sink.at;
  }
  return { offsets, bytes: sink.bytes.slice(0, sink.at) };
}

function decodeFeatures(chunks: readonly Data[]): { offsets: Int32Array; indices: Int32Array; values: Float32Array } {
  let rows = 0;
  let nnz = 0;
  // First pass: the feature count of each row is its first varint.
  for (const d of chunks) {
    rows += d.length;
    const vo = d.valueOffsets;
    const bytes = d.values as Uint8Array;
    for (let i = 0; i < d.length; i++) {
      let at = vo[d.offset + i]!;
      let head = 0;
      let shift = 0;
      for (;;) {
        const b = bytes[at++]!;
        head += (b & 0x7f) * 2 ** shift;
        if (b < 0x80) break;
        shift += 7;
      }
      nnz += Math.floor(head / 4);
    }
  }
  const offsets = new Int32Array(rows + 1);
  const indices = new Int32Array(nnz);
  const values = new Float32Array(nnz);
  let r = 0;
  let out = 0;
  // Varints are decoded inline with integer operations (a closure per row, or float arithmetic, cost
  // more than the rest of the read). The writer keeps every tagged gap and zigzagged count of mode 0
  // below 2^28 (at most 4 bytes, so the shifts stay in int32); reads past a cell's end are caught by the
  // position check after each row.
  for (const d of chunks) {
    const vo = d.valueOffsets;
    const bytes = d.values as Uint8Array;
    for (let i = 0; i < d.length; i++) {
      let at = vo[d.offset + i]!;
      let b = bytes[at++]!;
      let head = b & 0x7f;
      for (let shift = 7; b >= 0x80; shift += 7) {
        b = bytes[at++]!;
        head += (b & 0x7f) * 2 ** shift;
      }
      const k = Math.floor(head / 4);
      const mode = head % 4;
      const end = vo[d.offset + i + 1]!;
      if (out + k > nnz) throw new Error(`row ${r}: feature count ${k} exceeds the column`);
      if (mode === 0) {
        let prev = 0;
        let norm = 0;
        for (let j = out; j < out + k; j++) {
          b = bytes[at++]!;
          let v = b & 0x7f;
          for (let shift = 7; b >= 0x80; shift += 7) {
            b = bytes[at++]!;
            v |= (b & 0x7f) << shift;
          }
          prev += v >>> 2;
          indices[j] = prev;
          const tag = v & 3;
          let c = tag === 0 ? 1 : -1;
          if (tag >= 2) {
            if (tag === 3) throw new Error(`row ${r}: unknown feature tag`);
            b = bytes[at++]!;
            let z = b & 0x7f;
            for (let shift = 7; b >= 0x80; shift += 7) {
              b = bytes[at++]!;
              z |= (b & 0x7f) << shift;
            }
            c = (z >>> 1) ^ -(z & 1);
          }
          values[j] = c;
          norm += c * c;
        }
        if (norm > 0) {
          const inv = 1 / Math.sqrt(norm);
          for (let j = out; j < out + k; j++) values[j]! *= inv;
        }
      } else if (mode === 1) {
        if (end - at < 8 * k) throw new Error(`row ${r}: feature bytes end early`);
        const copy = bytes.slice(at, at + 8 * k);
        indices.set(new Int32Array(copy.buffer, 0, k), out);
        values.set(new Float32Array(copy.buffer, 4 * k, k), out);
        at += 8 * k;
      } else throw new Error(`row ${r}: unknown feature encoding ${mode}`);
      if (at !== end) throw new Error(`row ${r}: feature bytes do not match their cell (${end - at} left)`);
      out += k;
      offsets[++r] = out;
    }
  }
  return { offsets, indices, values };
}

function copyPrimitive(chunks: readonly Data[], out: Uint8Array | Int16Array): void {
  let at = 0;
  for (const d of chunks) {
    out.set((d.values as Uint8Array | Int16Array).subarray(d.offset, d.offset + d.length), at);
    at += d.length;
  }
}

function legacyFeatures(idx: readonly Data[], val: readonly Data[]): { offsets: Int32Array; indices: Int32Array; values: Float32Array } {
  const { offsets, values: indices } = concatList(idx, Int32Array);
  return { offsets, indices, values: concatList(val, Float32Array).values };
}

function concatList<T extends Int32Array | Float32Array>(
  chunks: readonly Data[],
  Ctor: { new (n: number): T },
): { offsets: Int32Array; values: T } {
  let rows = 0;
  let nnz = 0;
  for (const d of chunks) {
    rows += d.length;
    nnz += d.valueOffsets[d.offset + d.length]! - d.valueOffsets[d.offset]!;
  }
  const offsets = new Int32Array(rows + 1);
  const values = new Ctor(nnz);
  let r = 0;
  let at = 0;
  for (const d of chunks) {
    const vo = d.valueOffsets;
    const child = d.children[0]!.values as T;
    const base = vo[d.offset]!;
    const count = vo[d.offset + d.length]! - base;
    values.set(child.subarray(base, base + count) as unknown as ArrayLike<number>, at);
    for (let i = 0; i < d.length; i++) offsets[r + i + 1] = at + vo[d.offset + i + 1]! - base;
    r += d.length;
    at += count;
  }
  return { offsets, values };
}

/** A subset of rows, in the original order, keeping those for which `keep(i)` is true. */
export function filterRows(rows: Rows, keep: (i: number) => boolean): Rows {
  const kept: number[] = [];
  for (let i = 0; i < rows.ids.length; i++) if (keep(i)) kept.push(i);
  const offsets = new Int32Array(kept.length + 1);
  kept.forEach((r, k) => (offsets[k + 1] = offsets[k]! + rows.offsets[r + 1]! - rows.offsets[r]!));
  const indices = new Int32Array(offsets[kept.length]!);
  const values = new Float32Array(offsets[kept.length]!);
  // Copy runs of consecutive kept rows in one go: a deletion keeps almost everything.
  for (let k = 0; k < kept.length; ) {
    let end = k + 1;
    while (end < kept.length && kept[end] === kept[end - 1]! + 1) end++;
    const from = rows.offsets[kept[k]!]!;
    const to = rows.offsets[kept[end - 1]! + 1]!;
    indices.set(rows.indices.subarray(from, to), offsets[k]!);
    values.set(rows.values.subarray(from, to), offsets[k]!);
    k = end;
  }
  return {
    ids: kept.map((i) => rows.ids[i]!),
    texts: kept.map((i) => rows.texts[i]!),
    labels: Uint8Array.from(kept, (i) => rows.labels[i]!),
    slices: Int16Array.from(kept, (i) => rows.slices[i]!),
    offsets,
    indices,
    values,
    groups: Object.fromEntries(Object.entries(rows.groups).map(([g, v]) => [g, Uint8Array.from(kept, (i) => v[i]!)])),
  };
}

/**
 * The bytes a record contributes to its slice's content hash. A slice hash covers a run of these, so
 * the encoding must be uniquely decodable: separators alone are not, since a text may contain them
 * (one record whose text held "\u0001b\u00001\u0000y" hashed like two records). Each field carries its
 * length (in UTF-16 code units) and the label ends at ';', which no label's digits contain.
 */
export function recordDigest(id: string, label: number, text: string): string {
  return `${id.length}:${id}${label};${text.length}:${text}`;
}

/**
 * Content hash of the records of each slice (ids, labels, texts, in file order). With `only`, slices
 * outside it are not hashed (their entry is null): a deletion re-hashes just the slices it changed.
 */
export function sliceHashes(rows: Rows, slices: number): { rows: number; hash: string }[];
export function sliceHashes(rows: Rows, slices: number, only: ReadonlySet<number>): ({ rows: number; hash: string } | null)[];
export function sliceHashes(rows: Rows, slices: number, only?: ReadonlySet<number>): ({ rows: number; hash: string } | null)[] {
  const hashes = Array.from({ length: slices }, (_, s) => (!only || only.has(s) ? createHash('sha256') : null));
  const counts = new Array<number>(slices).fill(0);
  for (let i = 0; i < rows.ids.length; i++) {
    const s = rows.slices[i]!;
    const h = hashes[s];
    if (!h) continue;
    counts[s]! += 1;
    h.update(recordDigest(rows.ids[i]!, rows.labels[i]!, rows.texts[i]!));
  }
  return hashes.map((h, s) => (h ? { rows: counts[s]!, hash: h.digest('hex') } : null));
}

/** Concatenates row blocks (same group attributes) into one. */
export function concatRows(parts: readonly Rows[]): Rows {
  const names = Object.keys(parts[0]?.groups ?? {});
  const b = new RowsBuilder(names);
  for (const rows of parts) {
    for (let i = 0; i < rows.ids.length; i++) {
      const s = rows.offsets[i]!;
      const e = rows.offsets[i + 1]!;
      b.push({
        id: rows.ids[i]!,
        text: rows.texts[i]!,
        label: rows.labels[i]!,
        slice: rows.slices[i]!,
        indices: rows.indices.subarray(s, e),
        values: rows.values.subarray(s, e),
        groups: Object.fromEntries(names.map((g) => [g, rows.groups[g]![i]!])),
      });
    }
  }
  return b.take();
}

/**
 * Text → hashed sparse features (the "hashing trick"). Shard files store texts, not features: training,
 * restoring a shard for a deletion and prediction all recompute them here, so this bounds their speed,
 * and every stored checkpoint depends on these exact bits (test/features.test.ts holds them to the
 * previous implementation, kept in test/featureReference.ts).
 */
import { codeBound, HashKernel, type HashParams } from './hashKernel.js';

export interface FeatureConfig {
  /** Number of hash buckets (model input dimension). A power of two. */
  buckets: number;
  /** Word n-grams from 1 to `ngrams`. */
  ngrams: number;
  /** Alternate the sign of a feature by a hash bit, so that collisions cancel in expectation. */
  signed: boolean;
  /** Character n-grams of lengths 3..chars inside each word (0 = none); robust to spelling variants. */
  chars?: number;
}

/** The longest character n-grams ingest accepts. */
export const MAX_CHARS = 16;

export const DEFAULT_FEATURES: FeatureConfig = { buckets: 1 << 18, ngrams: 2, signed: true, chars: 5 };

export interface SparseRow {
  indices: Int32Array;
  values: Float32Array;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/**
 * Decodes the HTML entities that scraped social-media text carries (`&amp;`, `&#8220;`): each match of
 * /&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, left to right, as String.replace would. A hand-written scan: replace()
 * with a callback per entity was a tenth of featurisation's time on Davidson tweets (one in four has an
 * entity). Each alternative only matches its whole run of hex digits, digits or letters followed by ';'
 * (a shorter run would leave a digit or letter where ';' must be), so no backtracking is needed.
 */
export function decodeEntities(text: string): string {
  let amp = text.indexOf('&');
  if (amp < 0) return text;
  const n = text.length;
  let out = '';
  let copied = 0; // text[copied, amp) is still to be copied
  while (amp >= 0) {
    let i = amp + 1;
    let decoded: string | null = null;
    if (text.charCodeAt(i) === 35 /* # */) {
      const hex = (text.charCodeAt(i + 1) | 32) === 120; /* x or X */
      let j = hex ? i + 2 : i + 1;
      const from = j;
      while (j < n && (hex ? isHexDigit(text.charCodeAt(j)) : isDigit(text.charCodeAt(j)))) j++;
      // (At least one digit: '&#x;' fails the decimal alternative too, on its 'x'.)
      if (j > from && text.charCodeAt(j) === 59 /* ; */) {
        const code = parseInt(text.slice(from, j), hex ? 16 : 10);
        decoded = Number.isFinite(code) && code > 0 && code < 0x110000 ? String.fromCodePoint(code) : ' ';
        i = j + 1;
      }
    } else {
      let j = i;
      while (j < n && isAsciiLetter(text.charCodeAt(j))) j++;
      if (j > i && text.charCodeAt(j) === 59 /* ; */) {
        decoded = ENTITIES[text.slice(i, j).toLowerCase()] ?? text.slice(amp, j + 1);
        i = j + 1;
      }
    }
    if (decoded !== null) {
      out += text.slice(copied, amp) + decoded;
      copied = i;
    }
    // Past the entity, or past this '&' when none was read (i is then amp + 1). One call site for both: a
    // worker thread that compiled this function before it met a bare '&' compiled it again when it did.
    amp = text.indexOf('&', i);
  }
  return copied === 0 ? text : out + text.slice(copied);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isHexDigit(c: number): boolean {
  return isDigit(c) || ((c | 32) >= 97 && (c | 32) <= 102);
}

function isAsciiLetter(c: number): boolean {
  return (c | 32) >= 97 && (c | 32) <= 122;
}

// The token rules, as regular expressions. They define what a token is; the scanner (hashing.as.ts, in
// WebAssembly) implements the same rules with a hand-written loop (the regexes were half of
// featurisation's time), and calls classify() below only to classify a non-ASCII code point, once per
// code point and thread.
//   TOKEN = /[\p{L}\p{N}]+(?:['’][\p{L}]+)*|\p{Extended_Pictographic}/gu  (words with inner apostrophes; each emoji alone)
//   URL = /\bhttps?:\/\/\S+/gi → ' xxurl ', then MENTION = /@\w+/g → ' xxuser ', applied to the lower-cased text.
const IS_LN = /^[\p{L}\p{N}]$/u;
const IS_L = /^\p{L}$/u;
const IS_PICT = /^\p{Extended_Pictographic}$/u;
const IS_SPACE = /^\s$/; // without the u flag, as URL's \S: on code units

const LETTER = 1;
const LETTER_OR_NUMBER = 2;
const PICTOGRAPHIC = 4;
const SPACE = 8;
const KNOWN = 16;

/** The classes above of a code point (KNOWN is set, so that a cached 0 means "not classified yet"). */
function classify(cp: number): number {
  const s = String.fromCodePoint(cp);
  let c = KNOWN;
  if (IS_L.test(s)) c |= LETTER;
  if (IS_LN.test(s)) c |= LETTER_OR_NUMBER;
  if (IS_PICT.test(s)) c |= PICTOGRAPHIC;
  // A lone surrogate is not white space; \s is tested on a code unit, as URL's \S sees one.
  if (cp < 0x10000 && IS_SPACE.test(String.fromCharCode(cp))) c |= SPACE;
  return c;
}

/** What the scanner reads: the text with HTML entities decoded, lower-cased. */
function prepared(text: string): string {
  return decodeEntities(text).toLowerCase();
}

let kernel: HashKernel | null = null;
/** Set while forEachFeatureBatch's consumer reads a batch in the kernel's memory, which another call could grow away. */
let lending = false;

function hashKernel(): HashKernel {
  if (lending) throw new Error('featurisation was called from inside a forEachFeatureBatch consumer, whose batch lives in the memory that call would reuse');
  return (kernel ??= new HashKernel(classify));
}

/**
 * A kernel whose memory grew past this (a batch with a text of millions of characters) is dropped once its
 * output has been read: WebAssembly memory cannot shrink, and a resident process (`sisa serve`, a worker
 * thread) would otherwise hold the peak for good. The next call builds a fresh kernel (its caches refill).
 */
const KEEP_KERNEL_BYTES = 64 * 2 ** 20;

function releaseIfLarge(k: HashKernel): void {
  if (kernel === k && k.memoryBytes() > KEEP_KERNEL_BYTES) kernel = null;
}

/** Bytes of WebAssembly memory this thread's featuriser holds (0 before its first use). */
export function featuriserMemoryBytes(): number {
  return kernel?.memoryBytes() ?? 0;
}

/** Lower-cased tokens; URLs and @mentions collapse to placeholder tokens, since their identity is noise. */
export function tokenize(text: string): string[] {
  const k = hashKernel();
  const tokens = k.tokenize(prepared(text));
  releaseIfLarge(k);
  return tokens;
}

/**
 * Texts per kernel call, and the feature occurrences a call may yield before it is sent (a batch may
 * overshoot it by its last text): they keep a call's scratch and output to tens of MB.
 */
const BATCH_ROWS = 1024;
const BATCH_CODES = 1 << 20;

/** A batch of consecutive texts' features in CSR form (offsets from 0); see hashTexts. */
export interface FeatureBatch {
  /** The batch's first text. */
  first: number;
  /** Number of texts in the batch. */
  rows: number;
  offsets: Int32Array;
  indices: Int32Array;
  values: Float32Array;
}

/**
 * The features of the texts (see hashTexts), handed to `use` a batch of consecutive texts at a time, in
 * order. A batch's arrays are views of the featurisation kernel's memory, valid only until `use` returns:
 * a consumer that needs the features once (prediction scores them) reads them there without a copy. `use`
 * must not featurise (that would reuse the memory it is reading): such a call throws.
 */
export function forEachFeatureBatch(texts: readonly string[], cfg: FeatureConfig, use: (batch: FeatureBatch) => void): void {
  const params: HashParams = { mask: cfg.buckets - 1, signBit: cfg.signed ? 1 : 0, ngrams: cfg.ngrams, maxChar: cfg.chars ?? 0 };
  for (let first = 0; first < texts.length; ) {
    const batch = prepareBatch(texts, first, params);
    featuriseBatch(batch, first, params, use);
    first += batch.length;
  }
}

/*
 * Why the loop over texts and the kernel call are two plain functions, not one loop that calls a closure
 * when a batch fills: a thread that starts cold (a prediction worker, which lives for one call) compiled
 * that loop again and again as its first batches ran (optimised on the stack before its batch-flushing
 * branch had run, then dropped when it did; a new closure per call, a call target that changed), and those
 * compilations run on background threads that take the cores the prediction is using. Each function
 * here sees one kind of value from its first call on.
 */

/** The texts from `from` on, prepared, up to a batch's rows or code bound (at least one text). */
function prepareBatch(texts: readonly string[], from: number, params: HashParams): string[] {
  const batch: string[] = [];
  let bound = 0;
  for (let r = from; r < texts.length && batch.length < BATCH_ROWS && bound < BATCH_CODES; r++) {
    const s = prepared(texts[r]!);
    batch.push(s);
    bound += codeBound(s.length, params);
  }
  return batch;
}

/** Featurises one batch of prepared texts and lends its rows to `use`. */
function featuriseBatch(batch: readonly string[], first: number, params: HashParams, use: (batch: FeatureBatch) => void): void {
  const k = hashKernel();
  try {
    const rows = k.featurise(batch, params);
    lending = true;
    use({ first, rows: batch.length, offsets: rows.offsets, indices: rows.indices, values: rows.values });
  } finally {
    lending = false;
    releaseIfLarge(k);
  }
}

/**
 * Hashes word 1..n-grams and character 3..chars-grams (of each word wrapped in < >) of each text into
 * `cfg.buckets` signed buckets (the sign of a feature is its hash's top bit when `signed`), with counts
 * l2-normalised and rounded to float32 as fround(count · (1/√Σcount²)); a bucket whose occurrences
 * cancel keeps its 0. Row i's features are indices/values[offsets[i] .. offsets[i+1]), buckets ascending,
 * so the representation of a text is canonical. Entities and case are handled here; tokenising and
 * hashing in WebAssembly (hashKernel.ts), a batch of texts per call.
 */
export function hashTexts(texts: readonly string[], cfg: FeatureConfig): { offsets: Int32Array; indices: Int32Array; values: Float32Array } {
  const offsets = new Int32Array(texts.length + 1);
  // Each batch is copied once, into arrays that grow by half when a batch does not fit (sized at first from
  // the first batch's features per text), and the result views their filled part: gathering copies of the
  // batches and joining them at the end copied every feature twice into fresh memory.
  let indices = new Int32Array(0);
  let values = new Float32Array(0);
  let nnz = 0;
  forEachFeatureBatch(texts, cfg, (b) => {
    for (let r = 1; r <= b.rows; r++) offsets[b.first + r] = nnz + b.offsets[r]!;
    const need = nnz + b.indices.length;
    if (need > indices.length) {
      const perText = need / (b.first + b.rows);
      const capacity = Math.max(need, Math.ceil(indices.length * 1.5), Math.ceil(perText * texts.length * 1.05));
      const grownIndices = new Int32Array(capacity);
      const grownValues = new Float32Array(capacity);
      grownIndices.set(indices.subarray(0, nnz));
      grownValues.set(values.subarray(0, nnz));
      indices = grownIndices;
      values = grownValues;
    }
    indices.set(b.indices, nnz);
    values.set(b.values, nnz);
    nnz = need;
  });
  return { offsets, indices: indices.subarray(0, nnz), values: values.subarray(0, nnz) };
}

/** The features of one text (see hashTexts). */
export function hashText(text: string, cfg: FeatureConfig): SparseRow {
  const { indices, values } = hashTexts([text], cfg);
  return { indices, values };
}

export function validateFeatureConfig(cfg: FeatureConfig): string | null {
  if (!Number.isInteger(cfg.buckets) || cfg.buckets < 2 || (cfg.buckets & (cfg.buckets - 1)) !== 0 || cfg.buckets > 1 << 24)
    return `--buckets must be a power of two between 2 and 2^24, got ${cfg.buckets}`;
  if (!Number.isInteger(cfg.ngrams) || cfg.ngrams < 1 || cfg.ngrams > 4) return `--ngrams must be 1..4, got ${cfg.ngrams}`;
  // Longer character grams add little over 16 and their count grows with the square of a word's length.
  const chars = cfg.chars ?? 0;
  // Character grams start at length 3, so 1 and 2 would give none without a word.
  if (!Number.isInteger(chars) || chars < 0 || chars > MAX_CHARS || (chars > 0 && chars < 3))
    return `--chars must be 0 (no character grams) or a whole number from 3 to ${MAX_CHARS}, got ${chars}`;
  return null;
}

/**
 * Text → hashed sparse features (the "hashing trick"). Shard files store texts, not features: training,
 * restoring a shard for a deletion and prediction all recompute them here, so this bounds their speed,
 * and every stored checkpoint depends on these exact bits (test/features.test.ts holds them to the
 * previous implementation, kept in test/featureReference.ts).
 */


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

export const DEFAULT_FEATURES: FeatureConfig = { buckets: 1 << 18, ngrams: 2, signed: true, chars: 5 };

export interface SparseRow {
  indices: Int32Array;
  values: Float32Array;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/** Decodes the HTML entities that scraped social-media text carries (`&amp;`, `&#8220;`). */
function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, body: string) => {
    if (body[0] === '#') {
      const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      return Number.isFinite(code) && code > 0 && code < 0x110000 ? String.fromCodePoint(code) : ' ';
    }
    return ENTITIES[body.toLowerCase()] ?? m;
  });
}

// The token rules, as regular expressions. They define what a token is; the scanner below implements the
// same rules with a hand-written loop (the regexes were half of featurisation's time), and consults these
// only to classify a non-ASCII code point, once per code point and thread.
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

/** Per code point: the classes above, filled lazily (a Unicode property lookup costs a regex call). */
const classes = new Uint8Array(0x110000);

function classOf(cp: number): number {
  const c = classes[cp]!;
  return c !== 0 ? c : classify(cp);
}

function classify(cp: number): number {
  const s = String.fromCodePoint(cp);
  let c = KNOWN;
  if (IS_L.test(s)) c |= LETTER;
  if (IS_LN.test(s)) c |= LETTER_OR_NUMBER;
  if (IS_PICT.test(s)) c |= PICTOGRAPHIC;
  // A lone surrogate is not white space; \s is tested on a code unit, as URL's \S sees one.
  if (cp < 0x10000 && IS_SPACE.test(String.fromCharCode(cp))) c |= SPACE;
  classes[cp] = c;
  return c;
}

/** \w of a regex without the u flag: ASCII letters, digits and '_'. */
function isWordUnit(u: number): boolean {
  return (u >= 97 && u <= 122) || (u >= 65 && u <= 90) || (u >= 48 && u <= 57) || u === 95;
}

const XXURL = 'xxurl';
const XXUSER = 'xxuser';

/**
 * The tokens of the text last scanned: token i is source[i].slice(starts[i], ends[i]), where source[i] is
 * the lower-cased text or a placeholder. Reused across calls (one set per thread), so scanning allocates
 * nothing but the lower-cased string.
 */
const tok = { n: 0, starts: new Int32Array(256), ends: new Int32Array(256), sources: [] as string[] };

function pushToken(source: string, start: number, end: number): void {
  if (tok.n === tok.starts.length) {
    const starts = new Int32Array(tok.n * 2);
    const ends = new Int32Array(tok.n * 2);
    starts.set(tok.starts);
    ends.set(tok.ends);
    tok.starts = starts;
    tok.ends = ends;
  }
  tok.starts[tok.n] = start;
  tok.ends[tok.n] = end;
  tok.sources[tok.n++] = source;
}

/** Code point at i of s, given its first unit u (a surrogate pair only when both halves are there). */
function codePointAt(s: string, i: number, u: number, end: number): number {
  if (u >= 0xd800 && u <= 0xdbff && i + 1 < end) {
    const lo = s.charCodeAt(i + 1);
    if (lo >= 0xdc00 && lo <= 0xdfff) return ((u - 0xd800) << 10) + (lo - 0xdc00) + 0x10000;
  }
  return u;
}

/**
 * TOKEN's matches in s[from, to), as the regex finds them: leftmost first, advancing one code point
 * after a failed position, greedy. The range ends where a URL or mention starts, which the regex
 * pipeline had replaced by a placeholder padded with spaces, so no token crosses it.
 */
function scanWords(s: string, from: number, to: number): void {
  let i = from;
  while (i < to) {
    const u = s.charCodeAt(i);
    let cls: number;
    let size = 1;
    if (u < 128) {
      cls = (u >= 97 && u <= 122) || (u >= 65 && u <= 90) ? LETTER | LETTER_OR_NUMBER : u >= 48 && u <= 57 ? LETTER_OR_NUMBER : 0;
    } else {
      const cp = codePointAt(s, i, u, to);
      if (cp > 0xffff) size = 2;
      cls = classOf(cp);
    }
    if (cls & LETTER_OR_NUMBER) {
      const start = i;
      i += size;
      // [\p{L}\p{N}]+
      while (i < to) {
        const v = s.charCodeAt(i);
        if (v < 128) {
          if (!((v >= 97 && v <= 122) || (v >= 65 && v <= 90) || (v >= 48 && v <= 57))) break;
          i++;
        } else {
          const cp = codePointAt(s, i, v, to);
          if (!(classOf(cp) & LETTER_OR_NUMBER)) break;
          i += cp > 0xffff ? 2 : 1;
        }
      }
      // (?:['’][\p{L}]+)*
      for (;;) {
        if (i + 1 >= to) break;
        const a = s.charCodeAt(i);
        if (a !== 39 && a !== 0x2019) break;
        let j = i + 1;
        while (j < to) {
          const v = s.charCodeAt(j);
          if (v < 128) {
            if (!((v >= 97 && v <= 122) || (v >= 65 && v <= 90))) break;
            j++;
          } else {
            const cp = codePointAt(s, j, v, to);
            if (!(classOf(cp) & LETTER)) break;
            j += cp > 0xffff ? 2 : 1;
          }
        }
        if (j === i + 1) break;
        i = j;
      }
      pushToken(s, start, i);
    } else {
      if (cls & PICTOGRAPHIC) pushToken(s, i, i + size);
      i += size;
    }
  }
}

/** End of URL's match at p (s[p] is 'h' at a word boundary), or -1 if there is none. */
function urlEnd(s: string, p: number): number {
  const n = s.length;
  if (p + 7 > n || (s.charCodeAt(p + 1) | 32) !== 116 || (s.charCodeAt(p + 2) | 32) !== 116 || (s.charCodeAt(p + 3) | 32) !== 112) return -1;
  let q = p + 4;
  if ((s.charCodeAt(q) | 32) === 115) q++;
  if (s.charCodeAt(q) !== 58 || s.charCodeAt(q + 1) !== 47 || s.charCodeAt(q + 2) !== 47) return -1;
  q += 3;
  // \S+: at least one code unit that is not white space
  let e = q;
  while (e < n) {
    const u = s.charCodeAt(e);
    if (u < 128 ? u === 32 || (u >= 9 && u <= 13) : classOf(u) & SPACE) break;
    e++;
  }
  return e > q ? e : -1;
}

/**
 * Fills `tok` with the tokens of `text`. URL matches are found first on the whole text and mentions
 * then on what is left, as the two replace() calls did; a single left-to-right pass gives the same
 * result because a URL can start inside a mention's \w+ only at its first unit (\b needs a non-word
 * unit before 'h'), and a mention then fails (its @ is followed by the URL's placeholder space).
 */
function scan(text: string): void {
  tok.n = 0;
  const s = (text.indexOf('&') >= 0 ? decodeEntities(text) : text).toLowerCase();
  const n = s.length;
  let segment = 0;
  let p = 0;
  while (p < n) {
    const u = s.charCodeAt(p);
    if ((u | 32) === 104 && (p === 0 || !isWordUnit(s.charCodeAt(p - 1)))) {
      const e = urlEnd(s, p);
      if (e >= 0) {
        scanWords(s, segment, p);
        pushToken(XXURL, 0, XXURL.length);
        p = segment = e;
        continue;
      }
    } else if (u === 64 && p + 1 < n && isWordUnit(s.charCodeAt(p + 1)) && !((s.charCodeAt(p + 1) | 32) === 104 && urlEnd(s, p + 1) >= 0)) {
      let e = p + 2;
      while (e < n && isWordUnit(s.charCodeAt(e))) e++;
      scanWords(s, segment, p);
      pushToken(XXUSER, 0, XXUSER.length);
      p = segment = e;
      continue;
    }
    p++;
  }
  scanWords(s, segment, n);
}

/** Lower-cased tokens; URLs and @mentions collapse to placeholder tokens, since their identity is noise. */
export function tokenize(text: string): string[] {
  scan(text);
  const out = new Array<string>(tok.n);
  for (let i = 0; i < tok.n; i++) out[i] = tok.sources[i]!.slice(tok.starts[i], tok.ends[i]);
  return out;
}

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** MurmurHash3's mixing over the UTF-16 code units s[start..end), one unit per round: no allocation. */
export function hashUnits(s: string, start: number, end: number, seed: number): number {
  let h = seed >>> 0;
  for (let i = start; i < end; i++) {
    let k = Math.imul(s.charCodeAt(i), C1);
    k = Math.imul((k << 15) | (k >>> 17), C2);
    h ^= k;
    h = (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) | 0;
  }
  return fmix(h ^ (end - start));
}

/** Combines token hashes into an n-gram hash (order-sensitive). */
function combine(h: number, next: number): number {
  let k = Math.imul(next, C1);
  k = Math.imul((k << 15) | (k >>> 17), C2);
  h ^= k;
  return (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) | 0;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  // A signed int32 stays a small integer in V8; an unsigned one above 2^31 would be a heap number.
  return h | 0;
}

/**
 * Per-thread scratch of one text's features. A feature is first a code (bucket << 1 | negative), one per
 * n-gram occurrence; sorting the codes brings a bucket's occurrences together, and one pass sums them.
 */
const scratch = {
  codes: new Int32Array(2048),
  tokenHash: new Int32Array(256),
  word: new Uint16Array(256),
  sorted: new Int32Array(2048),
  bins: new Int32Array(4097),
  /** Distinct buckets of the text, ascending, and their signed counts. */
  buckets: new Int32Array(2048),
  counts: new Int32Array(2048),
  k: 0,
};

function growCodes(): void {
  const next = new Int32Array(scratch.codes.length * 2);
  next.set(scratch.codes);
  scratch.codes = next;
}

/**
 * Sorts codes[0, n) ascending into scratch.sorted. The codes are hashes, spread uniformly, so one
 * counting pass on their top bits leaves each bin with one or two codes, and an insertion sort finishes
 * in about one comparison per code: linear time, where a comparison sort (TypedArray#sort or a quicksort)
 * cost half of featurisation.
 */
function sortCodes(codes: Int32Array, n: number, keyBits: number): Int32Array {
  if (scratch.sorted.length < n) scratch.sorted = new Int32Array(codes.length);
  const out = scratch.sorted;
  let binBits = 4;
  while (binBits < 12 && 1 << binBits < n) binBits++;
  const shift = Math.max(0, keyBits - binBits);
  const bins = (1 << binBits) + 1;
  if (scratch.bins.length < bins) scratch.bins = new Int32Array(bins);
  const start = scratch.bins;
  start.fill(0, 0, bins);
  for (let i = 0; i < n; i++) start[(codes[i]! >>> shift) + 1]!++;
  for (let b = 1; b < bins; b++) start[b]! += start[b - 1]!;
  for (let i = 0; i < n; i++) out[start[codes[i]! >>> shift]!++] = codes[i]!;
  for (let i = 1; i < n; i++) {
    const v = out[i]!;
    let j = i - 1;
    if (out[j]! <= v) continue;
    while (j >= 0 && out[j]! > v) {
      out[j + 1] = out[j]!;
      j--;
    }
    out[j + 1] = v;
  }
  return out;
}

/**
 * Memoised character grams: a word's gram codes depend only on the word and the configuration, and
 * words are Zipf-distributed, so most words of a text were seen before. An open-addressing table keyed
 * by the word's hash; a slot holds [hash, pool offset, word length, code count], and the pool holds the
 * word's code units (to resolve hash collisions) followed by its codes, so that a hit reads two nearby
 * places. It is bounded: full, it starts over. One per thread, for one configuration at a time.
 */
interface Memo {
  mask: number;
  /** 1 when signed: a code's low bit is then its hash's top bit. */
  signBit: number;
  maxChar: number;
  slots: Int32Array;
  entries: number;
  pool: Int32Array;
  used: number;
}

const MEMO_ENTRIES = 1 << 16;
const MEMO_POOL = 1 << 21;
const memos = new Map<string, Memo>();
let lastMemo: Memo | null = null;

function memoFor(mask: number, signBit: number, maxChar: number): Memo {
  const m = lastMemo;
  if (m && m.mask === mask && m.signBit === signBit && m.maxChar === maxChar) return m;
  const key = `${mask}:${signBit}:${maxChar}`;
  let found = memos.get(key);
  if (!found) {
    // A process uses one or two configurations; a bound keeps one that cycles through many from growing.
    if (memos.size >= 4) memos.clear();
    found = { mask, signBit, maxChar, slots: new Int32Array(1024 * 4), entries: 0, pool: new Int32Array(1 << 14), used: 0 };
    memos.set(key, found);
  }
  return (lastMemo = found);
}

/** Grows the memo (table at most half full) up to its bound; past the bound, it starts over. */
function memoMakeRoom(m: Memo, need: number): void {
  const slotCount = m.slots.length >> 2;
  if (m.entries * 2 >= slotCount - 1 && slotCount < MEMO_ENTRIES * 2) {
    const old = m.slots;
    m.slots = new Int32Array(old.length * 2);
    const mask = slotCount * 2 - 1;
    for (let at = 0; at < old.length; at += 4) {
      if (old[at + 2] === 0) continue;
      let slot = old[at]! & mask;
      while (m.slots[(slot << 2) + 2] !== 0) slot = (slot + 1) & mask;
      m.slots.set(old.subarray(at, at + 4), slot << 2);
    }
  } else if (m.used + need > m.pool.length && m.pool.length < MEMO_POOL) {
    const pool = new Int32Array(Math.max(m.pool.length * 2, m.used + need));
    pool.set(m.pool.subarray(0, m.used));
    m.pool = pool;
  } else {
    m.slots.fill(0);
    m.entries = 0;
    m.used = 0;
    if (need > m.pool.length) m.pool = new Int32Array(need);
  }
}

/** The slot (×4) of the word src[start, start + len) with hash h, computing its grams on a miss. */
function memoGrams(m: Memo, h: number, src: string, start: number, len: number): number {
  const slots = m.slots;
  const slotMask = (slots.length >> 2) - 1;
  let slot = h & slotMask; // h is a finished MurmurHash3: its low bits are already well mixed
  for (;;) {
    const at = slot << 2;
    const wordLen = slots[at + 2]!;
    if (wordLen === 0) break;
    if (slots[at]! === h && wordLen === len) {
      const pool = m.pool;
      const from = slots[at + 1]!;
      let i = 0;
      while (i < len && pool[from + i] === src.charCodeAt(start + i)) i++;
      if (i === len) return at;
    }
    slot = (slot + 1) & slotMask;
  }
  const { mask, signBit, maxChar } = m;
  const W = len + 2;
  // The word's units, then at most (W - 2) · (maxChar - 2) grams.
  const need = len + (W - 2) * (maxChar - 2);
  if (m.entries * 2 >= slotMask || m.used + need > m.pool.length) {
    memoMakeRoom(m, need);
    return memoGrams(m, h, src, start, len);
  }
  if (scratch.word.length < W) scratch.word = new Uint16Array(W * 2);
  const w = scratch.word;
  const pool = m.pool;
  const from = m.used;
  w[0] = 60; // '<'
  for (let i = 0; i < len; i++) pool[from + i] = w[i + 1] = src.charCodeAt(start + i);
  w[W - 1] = 62; // '>'
  let n = from + len;
  // The grams starting at one position share prefixes: one mixing pass emits all of their hashes.
  for (let i = 0; i + 3 <= W; i++) {
    let g = 101;
    const end = Math.min(W, i + maxChar);
    for (let j = i; j < end; j++) {
      let k = Math.imul(w[j]!, C1);
      k = Math.imul((k << 15) | (k >>> 17), C2);
      g ^= k;
      g = (Math.imul((g << 13) | (g >>> 19), 5) + 0xe6546b64) | 0;
      if (j - i >= 2) {
        const f = fmix(g ^ (j - i + 1));
        pool[n++] = ((f & mask) << 1) | ((f >>> 31) & signBit);
      }
    }
  }
  m.entries++;
  m.used = n;
  const at = slot << 2;
  slots[at] = h;
  slots[at + 1] = from;
  slots[at + 2] = len;
  slots[at + 3] = n - from - len;
  return at;
}

/**
 * Hashes `text` into scratch.buckets/counts (scratch.k distinct buckets, ascending): word 1..n-grams and
 * character 3..chars-grams of each word wrapped in < >, over code units in place, one bucket per n-gram
 * with the sign of its hash's top bit when `signed`.
 */
function featuriseInto(text: string, cfg: FeatureConfig): void {
  scan(text);
  const mask = cfg.buckets - 1;
  const signBit = cfg.signed ? 1 : 0;
  const nTok = tok.n;
  if (scratch.tokenHash.length < nTok) scratch.tokenHash = new Int32Array(nTok * 2);
  const tokenHash = scratch.tokenHash;
  let codes: Int32Array = scratch.codes;
  let n = 0;
  for (let t = 0; t < nTok; t++) {
    const h = hashUnits(tok.sources[t]!, tok.starts[t]!, tok.ends[t]!, 1);
    tokenHash[t] = h;
    if (n === codes.length) {
      growCodes();
      codes = scratch.codes;
    }
    codes[n++] = ((h & mask) << 1) | ((h >>> 31) & signBit);
  }
  for (let g = 2; g <= cfg.ngrams; g++) {
    for (let i = 0; i + g <= nTok; i++) {
      let h = g;
      for (let j = i; j < i + g; j++) h = combine(h, tokenHash[j]!);
      const f = fmix(h ^ g);
      if (n === codes.length) {
          growCodes();
        codes = scratch.codes;
      }
      codes[n++] = ((f & mask) << 1) | ((f >>> 31) & signBit);
    }
  }
  const maxChar = cfg.chars ?? 0;
  if (maxChar >= 3) {
    const m = memoFor(mask, signBit, maxChar);
    for (let t = 0; t < nTok; t++) {
      const src = tok.sources[t]!;
      const start = tok.starts[t]!;
      const len = tok.ends[t]! - start;
      const at = memoGrams(m, tokenHash[t]!, src, start, len);
      const from = m.slots[at + 1]! + len;
      const count = m.slots[at + 3]!;
      while (n + count > codes.length) {
        growCodes();
        codes = scratch.codes;
      }
      const pool = m.pool;
      for (let i = 0; i < count; i++) codes[n + i] = pool[from + i]!;
      n += count;
    }
  }
  codes = sortCodes(codes, n, 32 - Math.clz32(mask) + 1);
  if (scratch.buckets.length < n) {
    scratch.buckets = new Int32Array(n * 2);
    scratch.counts = new Int32Array(n * 2);
  }
  const buckets = scratch.buckets;
  const counts = scratch.counts;
  let k = 0;
  let i = 0;
  while (i < n) {
    const b = codes[i]! >> 1;
    let c = 0;
    do {
      c += codes[i]! & 1 ? -1 : 1;
      i++;
    } while (i < n && codes[i]! >> 1 === b);
    buckets[k] = b;
    counts[k++] = c;
  }
  scratch.k = k;
}

/**
 * Writes the current text's features at out[at..]: the values are the counts l2-normalised and rounded
 * to float32 as fround(count · (1/√Σcount²)); a bucket whose occurrences cancel keeps its 0.
 */
function writeRow(indices: Int32Array, values: Float32Array, at: number): void {
  const k = scratch.k;
  const buckets = scratch.buckets;
  const counts = scratch.counts;
  // Integer counts: the sum is exact in any order.
  let norm = 0;
  for (let i = 0; i < k; i++) norm += counts[i]! * counts[i]!;
  const inv = 1 / Math.sqrt(norm);
  for (let i = 0; i < k; i++) {
    indices[at + i] = buckets[i]!;
    // Two steps, as before: the count rounded to float32 (exact below 2^24), then scaled and rounded.
    values[at + i] = counts[i]!;
    if (norm > 0) values[at + i]! *= inv;
  }
}

/**
 * Hashes word 1..n-grams and character 3..chars-grams (of each word wrapped in < >) of `text` into
 * `cfg.buckets` signed buckets, with counts l2-normalised. Output indices are sorted, so the
 * representation of a text is canonical.
 */
export function hashText(text: string, cfg: FeatureConfig): SparseRow {
  featuriseInto(text, cfg);
  const indices = new Int32Array(scratch.k);
  const values = new Float32Array(scratch.k);
  writeRow(indices, values, 0);
  return { indices, values };
}

/** Growing per-thread CSR buffers for hashTexts: a batch's result is one exact-size copy of them. */
let csrIndices = new Int32Array(1 << 16);
let csrValues = new Float32Array(1 << 16);

/** Hashes many texts into one CSR block: row i's features are indices/values[offsets[i] .. offsets[i+1]). */
export function hashTexts(texts: readonly string[], cfg: FeatureConfig): { offsets: Int32Array; indices: Int32Array; values: Float32Array } {
  const offsets = new Int32Array(texts.length + 1);
  let nnz = 0;
  for (let r = 0; r < texts.length; r++) {
    featuriseInto(texts[r]!, cfg);
    if (nnz + scratch.k > csrIndices.length) {
      const cap = Math.max(csrIndices.length * 2, nnz + scratch.k);
      const i2 = new Int32Array(cap);
      const v2 = new Float32Array(cap);
      i2.set(csrIndices.subarray(0, nnz));
      v2.set(csrValues.subarray(0, nnz));
      csrIndices = i2;
      csrValues = v2;
    }
    writeRow(csrIndices, csrValues, nnz);
    nnz += scratch.k;
    offsets[r + 1] = nnz;
  }
  const indices = csrIndices.slice(0, nnz);
  const values = csrValues.slice(0, nnz);
  // A one-off huge batch should not pin its buffers for the thread's lifetime.
  if (csrIndices.length > 1 << 22) {
    csrIndices = new Int32Array(1 << 16);
    csrValues = new Float32Array(1 << 16);
  }
  return { offsets, indices, values };
}

export function validateFeatureConfig(cfg: FeatureConfig): string | null {
  if (!Number.isInteger(cfg.buckets) || cfg.buckets < 2 || (cfg.buckets & (cfg.buckets - 1)) !== 0 || cfg.buckets > 1 << 24)
    return `--buckets must be a power of two between 2 and 2^24, got ${cfg.buckets}`;
  if (!Number.isInteger(cfg.ngrams) || cfg.ngrams < 1 || cfg.ngrams > 4) return `--ngrams must be 1..4, got ${cfg.ngrams}`;
  return null;
}

// AssemblyScript source of featurisation's scanning and hashing (compiled to dist/src/features/hashing.wasm
// by `npm run build`; excluded from tsc). hashing.ts decodes HTML entities and lower-cases each text in
// JavaScript (Unicode case mapping stays there) and copies the texts' UTF-16 code units into this
// module's memory; featurise() then tokenises, hashes the word n-grams and character n-grams, sorts and
// merges them per text and writes the l2-normalised rows in CSR form, a batch of texts per call.
//
// Why WebAssembly: featurisation bounds prediction, training's start and a deletion's restore. Its loops
// ran at their best speed only once V8 had tiered them up, which a one-shot `sisa delete` (a few thousand
// texts) never amortised, and every array access paid a bounds check.
//
// Exactness: the token rules are hashing.ts's regular expressions (see TOKEN and URL there), implemented
// as the same hand-written scan; a non-ASCII code point's classes come from those regexes (imported
// `classify`, cached here per code point). Hashing uses the same 32-bit integer operations (MurmurHash3
// mixing, wrapping multiplications) and the values are computed in float64 and rounded to float32 in the
// same steps, so every row is bit for bit what the TypeScript featuriser computed (test/features.test.ts
// compares with a reference implementation on arbitrary Unicode and on every Davidson tweet).

@external("env", "classify")
declare function classify(cp: i32): i32;

const LETTER = 1;
const LETTER_OR_NUMBER = 2;
const PICTOGRAPHIC = 4;
const SPACE = 8;

/** One byte per code point: its classes (0 = not classified yet). */
let CLASSES: usize = 0;
/** The code units: units 0..4 are "xxurl", 5..10 "xxuser" (the placeholders), then the texts. */
let UNITS: usize = 0;
/** The tokens of the text being scanned: (start, length) pairs, in units of UNITS. */
let TOKENS: usize = 0;
let tokenCount: i32 = 0;
const XXURL_AT = 0;
const XXURL_LEN = 5;
const XXUSER_AT = 5;
const XXUSER_LEN = 6;

/**
 * Memoised character grams: a word's gram codes depend only on the word and the configuration, and words
 * are Zipf-distributed, so most words of a text were seen before. An open-addressing table keyed by the
 * word's hash; a slot (16 bytes) holds [hash, pool offset, word length, code count], and the pool (i32)
 * holds the word's code units (to tell colliding words apart) followed by its codes. Bounded: full, it
 * starts over. It lives in the kernel's memory across calls, for one configuration at a time.
 */
let MEMO_SLOTS: usize = 0;
let memoSlotMask: i32 = 0;
let MEMO_POOL: usize = 0;
let memoPoolCap: i32 = 0;
let memoUsed: i32 = 0;
let memoEntries: i32 = 0;
let memoMask: u32 = 0;
let memoSignBit: u32 = 0;
let memoMaxChar: i32 = -1;

export function init(classes: usize, units: usize, tokens: usize, memoSlots: usize, memoSlotCount: i32, memoPool: usize, memoPoolEntries: i32): void {
  CLASSES = classes;
  UNITS = units;
  TOKENS = tokens;
  MEMO_SLOTS = memoSlots;
  memoSlotMask = memoSlotCount - 1;
  MEMO_POOL = memoPool;
  memoPoolCap = memoPoolEntries;
}

function memoClear(): void {
  memory.fill(MEMO_SLOTS, 0, <usize>(memoSlotMask + 1) << 4);
  memoUsed = 0;
  memoEntries = 0;
}

/** Writes the character grams of the word at units [start, start + len) at codes[n..]; returns how many. */
function computeGrams(start: i32, len: i32, codes: usize, n: i32, mask: u32, signBit: u32, maxChar: i32): i32 {
  const units = UNITS;
  // The grams starting at one position share their prefix, so one mixing pass emits all of their hashes.
  const W = len + 2;
  const n0 = n;
  for (let i = 0; i + 3 <= W; i++) {
    let g: u32 = 101;
    const end = min(W, i + maxChar);
    for (let j = i; j < end; j++) {
      const u: u32 = j === 0 ? 60 : j === W - 1 ? 62 : <u32>unit(units, start + j - 1);
      g = mix(g, u);
      if (j - i >= 2) store<i32>(codes + (<usize>(n++) << 2), code(fmix(g ^ <u32>(j - i + 1)), mask, signBit));
    }
  }
  return n - n0;
}

/** The character grams of the word (hash h) at codes[n..], from the memo when it has them; returns how many. */
function charGrams(start: i32, len: i32, h: u32, codes: usize, n: i32, mask: u32, signBit: u32, maxChar: i32): i32 {
  const units = UNITS;
  const pool = MEMO_POOL;
  if (mask !== memoMask || signBit !== memoSignBit || maxChar !== memoMaxChar) {
    memoClear();
    memoMask = mask;
    memoSignBit = signBit;
    memoMaxChar = maxChar;
  }
  let slot = <i32>h & memoSlotMask; // h is a finished MurmurHash3: its low bits are well mixed
  for (;;) {
    const at = MEMO_SLOTS + (<usize>slot << 4);
    const wordLen = load<i32>(at, 8);
    if (wordLen === 0) break;
    if (load<u32>(at) === h && wordLen === len) {
      const from = load<i32>(at, 4);
      let i = 0;
      while (i < len && load<i32>(pool + (<usize>(from + i) << 2)) === unit(units, start + i)) i++;
      if (i === len) {
        const count = load<i32>(at, 12);
        copyCodes(codes + (<usize>n << 2), pool + (<usize>(from + len) << 2), count);
        return count;
      }
    }
    slot = (slot + 1) & memoSlotMask;
  }
  const count = computeGrams(start, len, codes, n, mask, signBit, maxChar);
  const need = len + count;
  if (need > memoPoolCap) return count; // a word too long to keep
  if ((memoEntries + 1) * 2 > memoSlotMask + 1 || memoUsed + need > memoPoolCap) {
    memoClear();
    slot = <i32>h & memoSlotMask;
  }
  const from = memoUsed;
  for (let i = 0; i < len; i++) store<i32>(pool + (<usize>(from + i) << 2), unit(units, start + i));
  copyCodes(pool + (<usize>(from + len) << 2), codes + (<usize>n << 2), count);
  memoUsed += need;
  memoEntries++;
  const at = MEMO_SLOTS + (<usize>slot << 4);
  store<u32>(at, h);
  store<i32>(at, from, 4);
  store<i32>(at, len, 8);
  store<i32>(at, count, 12);
  return count;
}

/**
 * Copies `count` i32 between regions that do not overlap (the memo pool lies below UNITS, the codes past the
 * texts), eight bytes at a time. Not memory.copy: in V8 that is a call out of the module, made here for
 * nearly every word of every text, for a few dozen codes each; this loop measured no slower (new/old
 * 0.94-1.09, median 1.04, within the host's noise).
 */
// @ts-ignore: decorator
@inline
function copyCodes(dst: usize, src: usize, count: i32): void {
  let i = 0;
  for (; i + 2 <= count; i += 2) store<i64>(dst + (<usize>i << 2), load<i64>(src + (<usize>i << 2)));
  if (i < count) store<i32>(dst + (<usize>i << 2), load<i32>(src + (<usize>i << 2)));
}

// @ts-ignore: decorator
@inline
function unit(units: usize, i: i32): i32 {
  return <i32>load<u16>(units + (<usize>i << 1));
}

function classOf(cp: i32): i32 {
  let c = <i32>load<u8>(CLASSES + <usize>cp);
  if (c === 0) {
    c = classify(cp);
    store<u8>(CLASSES + <usize>cp, <u8>c);
  }
  return c;
}

/** \w of a regex without the u flag: ASCII letters, digits and '_'. */
// @ts-ignore: decorator
@inline
function isWordUnit(u: i32): bool {
  return (u >= 97 && u <= 122) || (u >= 65 && u <= 90) || (u >= 48 && u <= 57) || u === 95;
}

/** Code point at i, given its first unit u (a surrogate pair only when both halves are before end). */
function codePointAt(units: usize, i: i32, u: i32, end: i32): i32 {
  if (u >= 0xd800 && u <= 0xdbff && i + 1 < end) {
    const lo = unit(units, i + 1);
    if (lo >= 0xdc00 && lo <= 0xdfff) return ((u - 0xd800) << 10) + (lo - 0xdc00) + 0x10000;
  }
  return u;
}

function pushToken(start: i32, length: i32): void {
  const at = TOKENS + (<usize>tokenCount << 3);
  store<i32>(at, start);
  store<i32>(at, length, 4);
  tokenCount++;
}

/**
 * TOKEN's matches in [from, to), as the regex finds them: leftmost first, advancing one code point after
 * a failed position, greedy. The range ends where a URL or mention starts, which the regex pipeline had
 * replaced by a placeholder padded with spaces, so no token crosses it.
 */
function scanWords(from: i32, to: i32): void {
  const units = UNITS;
  let i = from;
  while (i < to) {
    const u = unit(units, i);
    let cls: i32;
    let size = 1;
    if (u < 128) {
      cls = (u >= 97 && u <= 122) || (u >= 65 && u <= 90) ? LETTER | LETTER_OR_NUMBER : u >= 48 && u <= 57 ? LETTER_OR_NUMBER : 0;
    } else {
      const cp = codePointAt(units, i, u, to);
      if (cp > 0xffff) size = 2;
      cls = classOf(cp);
    }
    if (cls & LETTER_OR_NUMBER) {
      const start = i;
      i += size;
      // [\p{L}\p{N}]+
      while (i < to) {
        const v = unit(units, i);
        if (v < 128) {
          if (!((v >= 97 && v <= 122) || (v >= 65 && v <= 90) || (v >= 48 && v <= 57))) break;
          i++;
        } else {
          const cp = codePointAt(units, i, v, to);
          if (!(classOf(cp) & LETTER_OR_NUMBER)) break;
          i += cp > 0xffff ? 2 : 1;
        }
      }
      // (?:['’][\p{L}]+)*
      while (i + 1 < to) {
        const a = unit(units, i);
        if (a !== 39 && a !== 0x2019) break;
        let j = i + 1;
        while (j < to) {
          const v = unit(units, j);
          if (v < 128) {
            if (!((v >= 97 && v <= 122) || (v >= 65 && v <= 90))) break;
            j++;
          } else {
            const cp = codePointAt(units, j, v, to);
            if (!(classOf(cp) & LETTER)) break;
            j += cp > 0xffff ? 2 : 1;
          }
        }
        if (j === i + 1) break;
        i = j;
      }
      pushToken(start, i - start);
    } else {
      if (cls & PICTOGRAPHIC) pushToken(i, size);
      i += size;
    }
  }
}

/** The unit at i, or −1 past the end (as a missing character, which matches nothing). */
// @ts-ignore: decorator
@inline
function unitOr(units: usize, i: i32, n: i32): i32 {
  return i < n ? unit(units, i) : -1;
}

/** End of URL's match at p (the unit at p is 'h' at a word boundary), or −1 if there is none. */
function urlEnd(p: i32, n: i32): i32 {
  const units = UNITS;
  if (p + 7 > n || (unitOr(units, p + 1, n) | 32) !== 116 || (unitOr(units, p + 2, n) | 32) !== 116 || (unitOr(units, p + 3, n) | 32) !== 112) return -1;
  let q = p + 4;
  if ((unitOr(units, q, n) | 32) === 115) q++;
  if (unitOr(units, q, n) !== 58 || unitOr(units, q + 1, n) !== 47 || unitOr(units, q + 2, n) !== 47) return -1;
  q += 3;
  // \S+: at least one code unit that is not white space
  let e = q;
  while (e < n) {
    const u = unit(units, e);
    if (u < 128 ? u === 32 || (u >= 9 && u <= 13) : (classOf(u) & SPACE) !== 0) break;
    e++;
  }
  return e > q ? e : -1;
}

/**
 * Tokenises the text in units [t0, t1) into TOKENS. URL matches are found first on the whole text and
 * mentions then on what is left, as the two replace() calls did; a single left-to-right pass gives the
 * same result because a URL can start inside a mention's \w+ only at its first unit (\b needs a non-word
 * unit before 'h'), and a mention then fails (its @ is followed by the URL's placeholder space).
 */
function scan(t0: i32, t1: i32): void {
  const units = UNITS;
  tokenCount = 0;
  const n = t1;
  let segment = t0;
  let p = t0;
  while (p < n) {
    const u = unit(units, p);
    if ((u | 32) === 104 && (p === t0 || !isWordUnit(unit(units, p - 1)))) {
      const e = urlEnd(p, n);
      if (e >= 0) {
        scanWords(segment, p);
        pushToken(XXURL_AT, XXURL_LEN);
        p = segment = e;
        continue;
      }
    } else if (u === 64 && p + 1 < n && isWordUnit(unit(units, p + 1)) && !((unit(units, p + 1) | 32) === 104 && urlEnd(p + 1, n) >= 0)) {
      let e = p + 2;
      while (e < n && isWordUnit(unit(units, e))) e++;
      scanWords(segment, p);
      pushToken(XXUSER_AT, XXUSER_LEN);
      p = segment = e;
      continue;
    }
    p++;
  }
  scanWords(segment, n);
}

/** Tokenises the text in units [t0, t1); returns the number of (start, length) pairs left in TOKENS. */
export function tokenise(t0: i32, t1: i32): i32 {
  scan(t0, t1);
  return tokenCount;
}

const C1: u32 = 0xcc9e2d51;
const C2: u32 = 0x1b873593;

// @ts-ignore: decorator
@inline
function fmix(h: u32): u32 {
  h ^= h >>> 16;
  h *= 0x85ebca6b;
  h ^= h >>> 13;
  h *= 0xc2b2ae35;
  h ^= h >>> 16;
  return h;
}

// One MurmurHash3 round: mixes the 32-bit word k into h.
// @ts-ignore: decorator
@inline
function mix(h: u32, k: u32): u32 {
  k *= C1;
  k = rotl<u32>(k, 15);
  k *= C2;
  h ^= k;
  return rotl<u32>(h, 13) * 5 + 0xe6546b64;
}

// The feature code of a finished hash: bucket << 1 | (negative ? 1 : 0).
// @ts-ignore: decorator
@inline
function code(f: u32, mask: u32, signBit: u32): i32 {
  return <i32>(((f & mask) << 1) | ((f >>> 31) & signBit));
}

/**
 * Sorts codes[0, n) ascending into sorted. The codes are hashes, spread uniformly: one counting pass on
 * their top bits leaves each bin with one or two codes, and an insertion sort finishes the job.
 */
function sortCodes(codes: usize, sorted: usize, bins: usize, n: i32, keyBits: i32): void {
  let binBits = 4;
  while (binBits < 12 && (1 << binBits) < n) binBits++;
  const shift = max(0, keyBits - binBits);
  const binCount = (1 << binBits) + 1;
  // Cleared eight bytes at a time (up to bins[binCount], one past: bins has room for it): memory.fill is a
  // call out of the module, which cost more than the loop for these few hundred bytes.
  for (let b = 0; b < binCount; b += 2) store<i64>(bins + (<usize>b << 2), 0);
  for (let i = 0; i < n; i++) {
    const at = bins + ((<usize>(load<u32>(codes + (<usize>i << 2)) >>> shift) + 1) << 2);
    store<i32>(at, load<i32>(at) + 1);
  }
  let sum = 0; // a running sum in a local, not reloaded from the bin just written
  for (let b = 1; b < binCount; b++) {
    const at = bins + (<usize>b << 2);
    sum += load<i32>(at);
    store<i32>(at, sum);
  }
  for (let i = 0; i < n; i++) {
    const c = load<i32>(codes + (<usize>i << 2));
    const at = bins + (<usize>(<u32>c >>> shift) << 2);
    const p = load<i32>(at);
    store<i32>(at, p + 1);
    store<i32>(sorted + (<usize>p << 2), c);
  }
  for (let i = 1; i < n; i++) {
    const v = load<i32>(sorted + (<usize>i << 2));
    let j = i - 1;
    if (load<i32>(sorted + (<usize>j << 2)) <= v) continue;
    while (j >= 0 && load<i32>(sorted + (<usize>j << 2)) > v) {
      store<i32>(sorted + (<usize>(j + 1) << 2), load<i32>(sorted + (<usize>j << 2)));
      j--;
    }
    store<i32>(sorted + (<usize>(j + 1) << 2), v);
  }
}

/**
 * Featurises `rows` texts: text r is the units [textStarts[r], textStarts[r + 1]) (i32). Scratch: codes
 * and sorted (each at least the most codes one text yields), bins (4098 i32), tokenHash (the most tokens
 * of a text). Output: offsets (rows + 1 i32), indices (i32) and values (f32) of the texts' features, each
 * text's buckets ascending. Returns the number of features written.
 */
export function featurise(
  rows: i32,
  textStarts: usize,
  codes: usize,
  sorted: usize,
  bins: usize,
  tokenHash: usize,
  offsets: usize,
  indices: usize,
  values: usize,
  mask: u32,
  signBit: u32,
  ngrams: i32,
  maxChar: i32,
): i32 {
  const keyBits = 32 - <i32>clz<u32>(mask) + 1;
  // Globals in locals: TurboFan reloads a global at every use, in the hot loops too.
  const tok = TOKENS;
  const units = UNITS;
  let nnz = 0;
  store<i32>(offsets, 0);
  for (let r = 0; r < rows; r++) {
    scan(load<i32>(textStarts + (<usize>r << 2)), load<i32>(textStarts + (<usize>r << 2), 4));
    const nTok = tokenCount;
    let n = 0;
    // Word unigrams: MurmurHash3 of each token's code units (seed 1).
    for (let t = 0; t < nTok; t++) {
      const start = load<i32>(tok + (<usize>t << 3));
      const len = load<i32>(tok + (<usize>t << 3), 4);
      let h: u32 = 1;
      for (let i = 0; i < len; i++) h = mix(h, <u32>unit(units, start + i));
      const f = fmix(h ^ <u32>len);
      store<u32>(tokenHash + (<usize>t << 2), f);
      store<i32>(codes + (<usize>(n++) << 2), code(f, mask, signBit));
    }
    // Word 2..ngrams-grams: the tokens' hashes combined in order, seeded with the gram length.
    for (let g = 2; g <= ngrams; g++) {
      for (let i = 0; i + g <= nTok; i++) {
        let h: u32 = <u32>g;
        for (let j = i; j < i + g; j++) h = mix(h, load<u32>(tokenHash + (<usize>j << 2)));
        store<i32>(codes + (<usize>(n++) << 2), code(fmix(h ^ <u32>g), mask, signBit));
      }
    }
    // Character 3..maxChar-grams of each token wrapped in < >.
    if (maxChar >= 3) {
      for (let t = 0; t < nTok; t++) {
        const start = load<i32>(tok + (<usize>t << 3));
        const len = load<i32>(tok + (<usize>t << 3), 4);
        n += charGrams(start, len, load<u32>(tokenHash + (<usize>t << 2)), codes, n, mask, signBit, maxChar);
      }
    }
    sortCodes(codes, sorted, bins, n, keyBits);
    // Merge each bucket's occurrences into a signed count, without a branch on whether a code repeats the
    // one before (that branch goes either way at random): every code writes its bucket and the running
    // count to the current slot, and a new bucket moves to the next slot first.
    const first = nnz;
    if (n > 0) {
      let k = nnz - 1;
      let prev = -1;
      let c = 0;
      for (let i = 0; i < n; i++) {
        const code = load<i32>(sorted + (<usize>i << 2));
        const b = code >> 1;
        const sgn = 1 - ((code & 1) << 1);
        const fresh = <i32>(b !== prev);
        k += fresh;
        c = select<i32>(sgn, c + sgn, fresh);
        prev = b;
        store<i32>(indices + (<usize>k << 2), b);
        store<i32>(values + (<usize>k << 2), c);
      }
      nnz = k + 1;
    }
    // The row's l2 norm is over the counts (integers, so the sum is exact in any order); then two roundings,
    // as before: the count to float32, then count · (1/√norm) to float32.
    let norm: f64 = 0;
    for (let k = first; k < nnz; k++) {
      const c = <f64>load<i32>(values + (<usize>k << 2));
      norm += c * c;
    }
    const inv = norm > 0 ? 1 / Math.sqrt(norm) : 1;
    for (let k = first; k < nnz; k++) {
      const at = values + (<usize>k << 2);
      const c = <f32>load<i32>(at);
      store<f32>(at, norm > 0 ? <f32>(<f64>c * inv) : c);
    }
    store<i32>(offsets + (<usize>(r + 1) << 2), nnz);
  }
  return nnz;
}

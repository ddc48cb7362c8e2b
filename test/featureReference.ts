/**
 * The feature hashing as it was before the fast implementation (commit e01be9e, src/features/hashing.ts),
 * copied verbatim (only renamed) and kept in the tests only: every workspace and checkpoint depends on
 * these exact features, so test/features.test.ts checks the fast code against this, element for element.
 * Do not "improve" this file.
 */
import type { FeatureConfig, SparseRow } from '../src/features/hashing.js';

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

// Words (letters/digits with inner apostrophes), and each emoji as its own token.
const TOKEN = /[\p{L}\p{N}]+(?:['’][\p{L}]+)*|\p{Extended_Pictographic}/gu;
const URL = /\bhttps?:\/\/\S+/gi;
const MENTION = /@\w+/g;

/** Lower-cased tokens; URLs and @mentions collapse to placeholder tokens, since their identity is noise. */
export function referenceTokenize(text: string): string[] {
  const cleaned = decodeEntities(text).toLowerCase().replace(URL, ' xxurl ').replace(MENTION, ' xxuser ');
  return cleaned.match(TOKEN) ?? [];
}

/**
 * A small open-addressing table (bucket → signed count) reused across calls and cleared after each
 * text. It is sized to the text, not to the bucket space, so it stays in the CPU cache; tables indexed
 * by bucket made every feature a cache miss. One per thread (each worker has its own module instance).
 */
class CountTable {
  keys = new Int32Array(1024).fill(-1);
  vals = new Float64Array(1024);
  used = new Int32Array(512);
  size = 0;
  private shift = 32 - 10;

  add(bucket: number, delta: number): void {
    if (this.size * 2 >= this.keys.length) this.grow();
    const mask = this.keys.length - 1;
    let i = Math.imul(bucket, 0x9e3779b1) >>> this.shift;
    while (this.keys[i] !== -1 && this.keys[i] !== bucket) i = (i + 1) & mask;
    if (this.keys[i] === -1) {
      this.keys[i] = bucket;
      this.vals[i] = 0;
      this.used[this.size++] = i;
    }
    this.vals[i]! += delta;
  }

  get(bucket: number): number {
    const mask = this.keys.length - 1;
    let i = Math.imul(bucket, 0x9e3779b1) >>> this.shift;
    while (this.keys[i] !== bucket) i = (i + 1) & mask;
    return this.vals[i]!;
  }

  /** Sorted distinct buckets of the current text. */
  sortedKeys(): Int32Array {
    const out = new Int32Array(this.size);
    for (let j = 0; j < this.size; j++) out[j] = this.keys[this.used[j]!]!;
    return out.sort();
  }

  clear(): void {
    for (let j = 0; j < this.size; j++) this.keys[this.used[j]!] = -1;
    this.size = 0;
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldVals = this.vals;
    const oldUsed = this.used.subarray(0, this.size);
    const cap = oldKeys.length * 2;
    this.keys = new Int32Array(cap).fill(-1);
    this.vals = new Float64Array(cap);
    this.used = new Int32Array(cap / 2);
    this.shift -= 1;
    const n = this.size;
    this.size = 0;
    for (let j = 0; j < n; j++) this.add(oldKeys[oldUsed[j]!]!, oldVals[oldUsed[j]!]!);
  }
}
const table = new CountTable();

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** MurmurHash3's mixing over the UTF-16 code units s[start..end), one unit per round: no allocation. */
function hashUnits(s: string, start: number, end: number, seed: number): number {
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
 * Hashes word 1..n-grams and character 3..chars-grams (of each word wrapped in < >) of `text` into
 * `cfg.buckets` signed buckets, with counts l2-normalised. Output indices are sorted, so the
 * representation of a text is canonical. Hashing works on code units in place, without building the
 * n-gram strings, because featurisation bounds ingest and prediction throughput.
 */
export function referenceHashText(text: string, cfg: FeatureConfig): SparseRow {
  const tokens = referenceTokenize(text);
  const mask = cfg.buckets - 1;
  const signed = cfg.signed;
  const add = (h: number) => table.add(h & mask, signed && h & 0x80000000 ? -1 : 1);
  const tokenHash = tokens.map((t) => hashUnits(t, 0, t.length, 1));
  for (const h of tokenHash) add(h);
  for (let n = 2; n <= cfg.ngrams; n++) {
    for (let i = 0; i + n <= tokens.length; i++) {
      let h = n;
      for (let j = i; j < i + n; j++) h = combine(h, tokenHash[j]!);
      add(fmix(h ^ n));
    }
  }
  const maxChar = cfg.chars ?? 0;
  if (maxChar >= 3) {
    // The grams starting at one position share prefixes: one mixing pass emits all of their hashes.
    for (const tok of tokens) {
      const w = `<${tok}>`;
      for (let i = 0; i + 3 <= w.length; i++) {
        let h = 101;
        const end = Math.min(w.length, i + maxChar);
        for (let j = i; j < end; j++) {
          let k = Math.imul(w.charCodeAt(j), C1);
          k = Math.imul((k << 15) | (k >>> 17), C2);
          h ^= k;
          h = (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) | 0;
          if (j - i + 1 >= 3) {
            const f = fmix(h ^ (j - i + 1));
            table.add(f & mask, signed && f & 0x80000000 ? -1 : 1);
          }
        }
      }
    }
  }
  const indices = table.sortedKeys();
  const values = new Float32Array(indices.length);
  let norm = 0;
  for (let i = 0; i < indices.length; i++) {
    const v = table.get(indices[i]!);
    values[i] = v;
    norm += v * v;
  }
  table.clear();
  if (norm > 0) {
    const inv = 1 / Math.sqrt(norm);
    for (let i = 0; i < values.length; i++) values[i]! *= inv;
  }
  return { indices, values };
}

// (Exported for the entity decoder's own test; the code above is as it was.)
export { decodeEntities as referenceDecodeEntities };

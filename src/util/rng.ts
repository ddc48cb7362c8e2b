/**
 * Seeded randomness. Everything random in sisa (split and shard assignment, shuffles, weight init,
 * bootstrap, randomised fair predictions) derives from the user's seed through these functions, so
 * that the same seed gives the same result bit for bit.
 */

/**
 * 32-bit MurmurHash3 of a UTF-8 string. Used for seeded assignment (three hashes per ingested record).
 * An ASCII string's UTF-8 bytes are its code units, so it is hashed in place without encoding it.
 */
export function murmur3(key: string, seed = 0): number {
  return murmur3Joined('', key, seed);
}

let scratch = new Uint8Array(256);

/**
 * `murmur3(prefix + key, seed)` without building the joined string: the purpose-prefixed hashes of
 * assignment run three times per ingested record. ASCII code units are their UTF-8 bytes, so they are
 * copied into a reused buffer; other strings are encoded.
 */
export function murmur3Joined(prefix: string, key: string, seed: number): number {
  const p = prefix.length;
  const n = p + key.length;
  if (n > scratch.length) scratch = new Uint8Array(2 * n);
  const buf = scratch;
  for (let i = 0; i < p; i++) {
    const c = prefix.charCodeAt(i);
    if (c > 127) return murmur3Bytes(encoder.encode(prefix + key), seed);
    buf[i] = c;
  }
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c > 127) return murmur3Bytes(encoder.encode(prefix + key), seed);
    buf[p + i] = c;
  }
  return murmur3Bytes(buf, seed, n);
}

/** MurmurHash3 of raw bytes (what `murmur3` computes for a string's UTF-8 encoding). */
export function murmur3Bytes(bytes: Uint8Array, seed = 0, n = bytes.length): number {
  let h = seed >>> 0;
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) h = mixBlock(h, bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
  const tail = n & 3;
  let k = 0;
  if (tail === 3) k ^= bytes[blocks + 2]! << 16;
  if (tail >= 2) k ^= bytes[blocks + 1]! << 8;
  if (tail >= 1) k ^= bytes[blocks]!;
  return finish(h, k, tail, n);
}

function mixBlock(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number, k: number, tail: number, n: number): number {
  if (tail > 0) {
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= n;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const encoder = new TextEncoder();

/** MurmurHash3's mixing over a string's UTF-16 code units, one per round (not its UTF-8 bytes): for in-memory tables. */
export function murmur3Units(s: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) h = mixBlock(h, s.charCodeAt(i));
  return finish(h, 0, 0, s.length) | 0;
}

/** A uniform number in [0, 1) determined by (seed, purpose, key). */
export function hashUnit(seed: number, purpose: string, key: string): number {
  return murmur3Joined(`${purpose}\u0000`, key, seed) / 4294967296;
}

/** Mixes several integers into one 32-bit seed (for per-shard, per-slice, per-epoch streams). */
export function deriveSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h ^= p >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** mulberry32: a small, fast, well-distributed seeded generator returning numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates shuffle in place with a seeded generator. */
export function shuffleInPlace<T extends { length: number; [i: number]: number }>(arr: T, rand: () => number): T {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = arr[i]!;
    arr[i] = arr[j]!;
    arr[j] = t;
  }
  return arr;
}

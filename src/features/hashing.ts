/**
 * Text → hashed sparse features (the "hashing trick"). Computed once at ingest and stored in the shard
 * files, so that training and retraining never re-tokenise, and recomputed identically at predict time.
 */
import { murmur3 } from '../util/rng.js';

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

// Words (letters/digits with inner apostrophes), and each emoji as its own token.
const TOKEN = /[\p{L}\p{N}]+(?:['’][\p{L}]+)*|\p{Extended_Pictographic}/gu;
const URL = /\bhttps?:\/\/\S+/gi;
const MENTION = /@\w+/g;

/** Lower-cased tokens; URLs and @mentions collapse to placeholder tokens, since their identity is noise. */
export function tokenize(text: string): string[] {
  const cleaned = decodeEntities(text).toLowerCase().replace(URL, ' xxurl ').replace(MENTION, ' xxuser ');
  return cleaned.match(TOKEN) ?? [];
}

/**
 * Hashes unigrams..n-grams of `text` into `cfg.buckets` buckets, with term counts l2-normalised.
 * Output indices are sorted, so the representation of a text is canonical.
 */
export function hashText(text: string, cfg: FeatureConfig): SparseRow {
  const tokens = tokenize(text);
  const counts = new Map<number, number>();
  const mask = cfg.buckets - 1;
  for (let n = 1; n <= cfg.ngrams; n++) {
    for (let i = 0; i + n <= tokens.length; i++) {
      const gram = n === 1 ? tokens[i]! : tokens.slice(i, i + n).join(' ');
      const h = murmur3(gram, n);
      const bucket = h & mask;
      const sign = cfg.signed && h & 0x80000000 ? -1 : 1;
      counts.set(bucket, (counts.get(bucket) ?? 0) + sign);
    }
  }
  const maxChar = cfg.chars ?? 0;
  if (maxChar >= 3) {
    for (const tok of tokens) {
      const w = `<${tok}>`;
      for (let n = 3; n <= maxChar; n++) {
        for (let i = 0; i + n <= w.length; i++) {
          const h = murmur3(w.slice(i, i + n), 100 + n);
          const bucket = h & mask;
          const sign = cfg.signed && h & 0x80000000 ? -1 : 1;
          counts.set(bucket, (counts.get(bucket) ?? 0) + sign);
        }
      }
    }
  }
  const indices = Int32Array.from([...counts.keys()].sort((a, b) => a - b));
  const values = new Float32Array(indices.length);
  let norm = 0;
  for (let i = 0; i < indices.length; i++) {
    const v = counts.get(indices[i]!)!;
    values[i] = v;
    norm += v * v;
  }
  if (norm > 0) {
    const inv = 1 / Math.sqrt(norm);
    for (let i = 0; i < values.length; i++) values[i]! *= inv;
  }
  return { indices, values };
}

export function validateFeatureConfig(cfg: FeatureConfig): string | null {
  if (!Number.isInteger(cfg.buckets) || cfg.buckets < 2 || (cfg.buckets & (cfg.buckets - 1)) !== 0 || cfg.buckets > 1 << 24)
    return `--buckets must be a power of two between 2 and 2^24, got ${cfg.buckets}`;
  if (!Number.isInteger(cfg.ngrams) || cfg.ngrams < 1 || cfg.ngrams > 4) return `--ngrams must be 1..4, got ${cfg.ngrams}`;
  return null;
}

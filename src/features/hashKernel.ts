/**
 * Featurisation's scanning and hashing, in WebAssembly (source: hashing.as.ts, built to hashing.wasm): one
 * instance per thread, with a memory that grows to the largest batch seen. hashing.ts hands it a batch of
 * prepared texts (entities decoded, lower-cased) and gets the rows back in CSR form.
 *
 * Memory layout: a byte per code point caching its Unicode classes and the character-gram memo (both
 * kept across calls), then the code units (the placeholders "xxurl" and "xxuser", then the batch's
 * texts), then per call the token and hashing scratch space and the output.
 */
import { errorMessage, SisaError } from '../util/errors.js';
import { compileKernel, instantiate, newMemory, WASM_PAGE, type WasmMemory } from '../util/wasm.js';

interface HashExports {
  init(classes: number, units: number, tokens: number, memoSlots: number, memoSlotCount: number, memoPool: number, memoPoolEntries: number): void;
  tokenise(t0: number, t1: number): number;
  featurise(rows: number, textStarts: number, codes: number, sorted: number, bins: number, tokenHash: number, offsets: number, indices: number, values: number, mask: number, signBit: number, ngrams: number, maxChar: number): number;
}

export interface HashParams {
  mask: number;
  signBit: number;
  ngrams: number;
  /** Longest character n-gram (0 = none). */
  maxChar: number;
}

/**
 * The most feature occurrences a prepared text of `length` code units can yield: at most one token per
 * unit, ngrams word grams per token, and character grams per token at most maxChar − 2 per unit and at
 * most its wrapped word's substrings of 3 units or more, where the tokens' units are at most 3 × the
 * text's (a mention '@a' of 2 units becomes 'xxuser').
 */
export function codeBound(length: number, p: HashParams): number {
  const tokenUnits = 3 * length;
  const chars = p.maxChar >= 3 ? Math.min(tokenUnits * (p.maxChar - 2), ((tokenUnits + 2) * (tokenUnits + 1)) / 2) : 0;
  return length * p.ngrams + chars + 1;
}

const CLASSES_AT = 8;
/** The character-gram memo (see hashing.as.ts): 2^16 slots of 16 bytes, and a pool of 2^21 i32. */
const MEMO_SLOT_COUNT = 1 << 16;
const MEMO_SLOTS_AT = CLASSES_AT + 0x110000;
const MEMO_POOL_ENTRIES = 1 << 21;
const MEMO_POOL_AT = MEMO_SLOTS_AT + 16 * MEMO_SLOT_COUNT;
const UNITS_AT = MEMO_POOL_AT + 4 * MEMO_POOL_ENTRIES;
const PLACEHOLDERS = 'xxurl' + 'xxuser'; // units 0..4 and 5..10, as hashing.as.ts expects
const TEXTS_FROM = PLACEHOLDERS.length; // the first unit of the texts

/** The featurisation kernel, compiled (once per thread; see compileKernel). */
export function hashingKernel(): object {
  return compileKernel(new URL('./hashing.wasm', import.meta.url), 'featurisation');
}

export class HashKernel {
  private readonly memory: WasmMemory;
  private readonly exports: HashExports;
  /** The longest text of the current call, set by writeTexts (scratch sizes, and the message when memory runs out). */
  private longest = 0;

  /** `classify` gives a code point's classes (see hashing.ts); the kernel caches them. */
  constructor(classify: (cp: number) => number) {
    const module = hashingKernel();
    this.memory = newMemory(Math.ceil((UNITS_AT + 2 * PLACEHOLDERS.length) / WASM_PAGE) + 1);
    this.exports = instantiate<HashExports>(module, { env: { memory: this.memory, classify } });
    this.units().write(PLACEHOLDERS, 0, 'utf16le');
  }

  /** The size of this kernel's memory, which grows to its largest batch and never shrinks. */
  memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  /** A Buffer over the code units (a new view each time: the memory may have grown). */
  private units(): Buffer {
    return Buffer.from(this.memory.buffer, UNITS_AT);
  }

  private reserve(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    try {
      this.memory.grow(Math.ceil((end - have) / WASM_PAGE));
    } catch (err) {
      // WebAssembly memory ends at 4 GiB; only a text of many millions of characters gets near it.
      throw new SisaError('INPUT', `featurising a text of up to ${this.longest.toLocaleString('en-US')} characters needs ${(end / 2 ** 30).toFixed(1)} GiB of WebAssembly memory (${errorMessage(err)}); split texts that long`, { cause: err });
    }
  }

  /** Writes the texts' code units after the placeholders; returns where each starts and the end (in units). */
  private writeTexts(texts: readonly string[]): Int32Array {
    const starts = new Int32Array(texts.length + 1);
    let at = TEXTS_FROM;
    this.longest = 0;
    for (let r = 0; r < texts.length; r++) {
      starts[r] = at;
      at += texts[r]!.length;
      this.longest = Math.max(this.longest, texts[r]!.length);
    }
    starts[texts.length] = at;
    this.reserve(UNITS_AT + 2 * at);
    const units = this.units();
    // Node writes a string's UTF-16 code units as they are (lone surrogates included).
    for (let r = 0; r < texts.length; r++) units.write(texts[r]!, 2 * starts[r]!, 'utf16le');
    return starts;
  }

  /** The tokens of one prepared text. */
  tokenize(text: string): string[] {
    const starts = this.writeTexts([text]);
    const tokensAt = align(UNITS_AT + 2 * starts[1]!);
    this.reserve(tokensAt + 8 * (text.length + 1));
    this.exports.init(CLASSES_AT, UNITS_AT, tokensAt, MEMO_SLOTS_AT, MEMO_SLOT_COUNT, MEMO_POOL_AT, MEMO_POOL_ENTRIES);
    const n = this.exports.tokenise(starts[0]!, starts[1]!);
    const pairs = new Int32Array(this.memory.buffer, tokensAt, 2 * n);
    const out: string[] = [];
    for (let k = 0; k < n; k++) {
      const start = pairs[2 * k]!;
      const end = start + pairs[2 * k + 1]!;
      out.push(start < TEXTS_FROM ? PLACEHOLDERS.slice(start, end) : text.slice(start - TEXTS_FROM, end - TEXTS_FROM));
    }
    return out;
  }

  /**
   * Featurises prepared texts; the result's arrays are views of this kernel's memory, valid until its
   * next call (copy what must outlive it).
   */
  featurise(texts: readonly string[], p: HashParams): { offsets: Int32Array; indices: Int32Array; values: Float32Array } {
    const starts = this.writeTexts(texts);
    const rows = texts.length;
    const longest = this.longest;
    let total = 0;
    let maxCodes = 0;
    for (let r = 0; r < rows; r++) {
      const codes = codeBound(texts[r]!.length, p);
      if (codes > maxCodes) maxCodes = codes;
      total += codes;
    }
    // The call's regions, one after the other past the texts, each 8-aligned (plain sums: in a worker that
    // lives for one prediction, every function compiled is compiled on the cores the prediction is using).
    const tokensAt = align(UNITS_AT + 2 * starts[rows]!);
    const textStartsAt = align(tokensAt + 8 * (longest + 1));
    const codesAt = align(textStartsAt + 4 * (rows + 1));
    const sortedAt = align(codesAt + 4 * maxCodes);
    const binsAt = align(sortedAt + 4 * maxCodes);
    const tokenHashAt = align(binsAt + 4 * 4098);
    const offsetsAt = align(tokenHashAt + 4 * (longest + 1));
    const indicesAt = align(offsetsAt + 4 * (rows + 1));
    const valuesAt = align(indicesAt + 4 * total);
    this.reserve(align(valuesAt + 4 * total));
    const buf = this.memory.buffer;
    new Int32Array(buf, textStartsAt, rows + 1).set(starts);
    this.exports.init(CLASSES_AT, UNITS_AT, tokensAt, MEMO_SLOTS_AT, MEMO_SLOT_COUNT, MEMO_POOL_AT, MEMO_POOL_ENTRIES);
    const nnz = this.exports.featurise(rows, textStartsAt, codesAt, sortedAt, binsAt, tokenHashAt, offsetsAt, indicesAt, valuesAt, p.mask, p.signBit, p.ngrams, p.maxChar);
    return { offsets: new Int32Array(buf, offsetsAt, rows + 1), indices: new Int32Array(buf, indicesAt, nnz), values: new Float32Array(buf, valuesAt, nnz) };
  }
}

function align(n: number): number {
  return Math.ceil(n / 8) * 8;
}

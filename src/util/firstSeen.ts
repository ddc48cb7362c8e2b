/**
 * Remembers which keys (record ids) were seen and at which row, for duplicate detection over inputs of
 * millions of rows. A Map<string, number> of a million ids spent more time in lookups and in garbage
 * collection (a million live strings) than the rest of an ingest's bookkeeping; here the keys' code
 * units sit in one growing Uint16Array and the table is two Int32Arrays, so the collector sees a few
 * large arrays. Lookups are exact: a hash match is confirmed by comparing the code units.
 */
import { murmur3Units } from './rng.js';

/** Seed of the keys' hash (exported for the test that makes two keys collide). */
export const FIRST_SEEN_SEED = 0x2545f491;

export class FirstSeen {
  private units = new Uint16Array(1 << 16);
  private unitsUsed = 0;
  /** Per entry: start of its key in `units` (its end is the next entry's start), its row, its hash. */
  private starts: Int32Array = new Int32Array(1024 + 1);
  private rows: Int32Array = new Int32Array(1024);
  private hashes: Int32Array = new Int32Array(1024);
  private count = 0;
  /** Open addressing: entry index + 1, or 0 for an empty slot. */
  private slots = new Int32Array(2048);

  get size(): number {
    return this.count;
  }

  /** The row `key` was first seen at; or, if it is new, records it at `row` and returns undefined. */
  firstRowOrAdd(key: string, row: number): number | undefined {
    const h = murmur3Units(key, FIRST_SEEN_SEED);
    let mask = this.slots.length - 1;
    let i = h & mask;
    for (let e = this.slots[i]!; e !== 0; e = this.slots[i]!) {
      if (this.hashes[e - 1] === h && this.keyEquals(e - 1, key)) return this.rows[e - 1];
      i = (i + 1) & mask;
    }
    if ((this.count + 1) * 2 > this.slots.length) {
      this.growSlots();
      mask = this.slots.length - 1;
      i = h & mask;
      while (this.slots[i] !== 0) i = (i + 1) & mask;
    }
    this.append(key, row, h);
    this.slots[i] = this.count;
    return undefined;
  }

  private keyEquals(e: number, key: string): boolean {
    const start = this.starts[e]!;
    if (this.starts[e + 1]! - start !== key.length) return false;
    for (let k = 0; k < key.length; k++) if (this.units[start + k] !== key.charCodeAt(k)) return false;
    return true;
  }

  private append(key: string, row: number, h: number): void {
    if (this.count === this.rows.length) {
      this.rows = grow(this.rows, this.rows.length * 2);
      this.hashes = grow(this.hashes, this.hashes.length * 2);
      this.starts = grow(this.starts, this.rows.length + 1);
    }
    if (this.unitsUsed + key.length > this.units.length) {
      const next = new Uint16Array(Math.max(this.units.length * 2, this.unitsUsed + key.length));
      next.set(this.units.subarray(0, this.unitsUsed));
      this.units = next;
    }
    for (let k = 0; k < key.length; k++) this.units[this.unitsUsed + k] = key.charCodeAt(k);
    this.unitsUsed += key.length;
    this.rows[this.count] = row;
    this.hashes[this.count] = h;
    this.count += 1;
    this.starts[this.count] = this.unitsUsed;
  }

  private growSlots(): void {
    const slots = new Int32Array(this.slots.length * 2);
    const mask = slots.length - 1;
    for (let e = 0; e < this.count; e++) {
      let i = this.hashes[e]! & mask;
      while (slots[i] !== 0) i = (i + 1) & mask;
      slots[i] = e + 1;
    }
    this.slots = slots;
  }
}

function grow(a: Int32Array, length: number): Int32Array {
  const next = new Int32Array(length);
  next.set(a);
  return next;
}

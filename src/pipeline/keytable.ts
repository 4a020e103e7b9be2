/**
 * The kernel's per-key counter key (`struct dt_key`: reason, netns, device, flow) as userspace
 * handles it: one byte span, the same bytes at the head of every detail record and in every
 * entry of the key map (readKeys(), readLostKeys()), hashed and compared as they are.
 *
 * KeyTable maps keys to entry numbers 0, 1, 2 ... in the order they were added; callers keep
 * what belongs to an entry in arrays indexed by it. Everything lives in typed arrays: no
 * string or object is held per key, so a table of 65,536 keys is nothing the GC traces or
 * copies, and filling it allocates nothing. Open addressing with linear probing; entries are
 * removed only all at once.
 */
import { KEY_SIZE } from '../gen/record.js';

/** a key as 32-bit words */
const KEY_WORDS = KEY_SIZE / 4;

/**
 * A key as a string, for a Map: its bytes two to a UTF-16 unit (KEY_SIZE / 2 units). Never
 * shown; only compared.
 */
export function keyString(bytes: Uint8Array, at: number): string {
  const units = new Array<number>(KEY_SIZE / 2);
  for (let i = 0; i < units.length; i++) units[i] = bytes[at + 2 * i]! | (bytes[at + 2 * i + 1]! << 8);
  return String.fromCharCode(...units);
}

export class KeyTable {
  /** entries in the order they were added */
  size = 0;
  private capacity: number;
  private mask = 0;
  /** per bucket: entry + 1, or 0 when free */
  private buckets = new Int32Array(0);
  private hashes: Int32Array;
  /** per entry KEY_WORDS words, and one entry more: the key being looked up is read into it */
  private words: Int32Array;
  /** the buffer load() last read, and a view of it (one per batch, not per key) */
  private lastBuf: Uint8Array | null = null;
  private lastView: DataView = new DataView(new ArrayBuffer(0));

  constructor(capacity = 1024) {
    this.capacity = Math.max(16, capacity);
    this.hashes = new Int32Array(this.capacity);
    this.words = new Int32Array((this.capacity + 1) * KEY_WORDS);
    this.rehash(this.capacity);
  }

  /** The entry of the key at `at` in `bytes` (a record, or a key-map entry), or -1. */
  get(bytes: Uint8Array, at: number): number {
    const h = this.load(bytes, at);
    for (let b = h & this.mask; ; b = (b + 1) & this.mask) {
      const e = this.buckets[b]! - 1;
      if (e < 0) return -1;
      if (this.hashes[e] === h && this.equals(e)) return e;
    }
  }

  /** The entry of the key at `at` in `bytes`, added as entry `size` when it is not there yet. */
  add(bytes: Uint8Array, at: number): number {
    // read into the place the next entry takes: a new key is already where it belongs
    const h = this.load(bytes, at);
    let b = h & this.mask;
    for (; ; b = (b + 1) & this.mask) {
      const e = this.buckets[b]! - 1;
      if (e < 0) break;
      if (this.hashes[e] === h && this.equals(e)) return e;
    }
    if (this.size === this.capacity) {
      this.grow();
      for (b = h & this.mask; this.buckets[b] !== 0; b = (b + 1) & this.mask);
    }
    const e = this.size++;
    this.buckets[b] = e + 1;
    this.hashes[e] = h;
    return e;
  }

  /** Forgets every key (the arrays stay, sized for as many again). */
  clear(): void {
    if (this.size === 0) return;
    this.buckets.fill(0);
    this.size = 0;
  }

  /**
   * Reads the key at `at` into entry `size`'s words and hashes it in the same pass: FNV-1a
   * over the words, mixed at the end so the low bits (the bucket) depend on all of them.
   */
  private load(bytes: Uint8Array, at: number): number {
    if (bytes !== this.lastBuf) {
      this.lastBuf = bytes;
      this.lastView = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    const v = this.lastView;
    const words = this.words;
    const to = this.size * KEY_WORDS;
    let h = 0x811c9dc5 | 0;
    for (let i = 0; i < KEY_WORDS; i++) {
      const w = v.getInt32(at + 4 * i, true);
      words[to + i] = w;
      h = Math.imul(h ^ w, 0x01000193);
    }
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    return h ^ (h >>> 12);
  }

  /** Whether entry `e` is the key load() just read. */
  private equals(e: number): boolean {
    const words = this.words;
    const at = e * KEY_WORDS;
    const key = this.size * KEY_WORDS;
    for (let i = 0; i < KEY_WORDS; i++) if (words[at + i] !== words[key + i]) return false;
    return true;
  }

  /** Doubles the entries, the key being added (in entry `size`) with them. */
  private grow(): void {
    const capacity = this.capacity * 2;
    const hashes = new Int32Array(capacity);
    hashes.set(this.hashes);
    const words = new Int32Array((capacity + 1) * KEY_WORDS);
    words.set(this.words);
    this.hashes = hashes;
    this.words = words;
    this.capacity = capacity;
    this.rehash(capacity);
  }

  /** Buckets for `capacity` entries at most half full, filled from the entries. */
  private rehash(capacity: number): void {
    let n = 16;
    while (n < 2 * capacity) n *= 2;
    this.mask = n - 1;
    this.buckets = new Int32Array(n);
    for (let e = 0; e < this.size; e++) {
      let b = this.hashes[e]! & this.mask;
      while (this.buckets[b] !== 0) b = (b + 1) & this.mask;
      this.buckets[b] = e + 1;
    }
  }
}

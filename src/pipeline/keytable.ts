/**
 * A hash table from per-key counter keys (keyString() in src/pipeline/decode.ts: 26 UTF-16 units) to
 * entry numbers 0, 1, 2 ... in the order keys were added; callers keep what belongs to an entry
 * in arrays indexed by it. Everything lives in typed arrays: no string or object is held per
 * key, so a table of 65,536 keys is nothing the GC traces or copies, and filling it allocates
 * nothing. Open addressing with linear probing; entries are removed only all at once.
 */

import { FIELDS, FLAGS } from './layout.js';

/** longest key held: every keyString() is exactly this long */
export const KEY_UNITS = 26;
/** a key as 32-bit words, two units to a word */
const KEY_WORDS = KEY_UNITS / 2;

export class KeyTable {
  /** entries in the order they were added */
  size = 0;
  private capacity: number;
  private mask = 0;
  /** per bucket: entry + 1, or 0 when free */
  private buckets = new Int32Array(0);
  private hashes: Int32Array;
  private lengths: Uint8Array;
  /** per entry KEY_WORDS words, and one entry more: the key being looked up is read into it */
  private words: Int32Array;
  /** the buffer addRecord() last read, and a view of it (one per batch, not per record) */
  private recordBuf: Uint8Array | null = null;
  private recordView: DataView = new DataView(new ArrayBuffer(0));

  constructor(capacity = 1024) {
    this.capacity = Math.max(16, capacity);
    this.hashes = new Int32Array(this.capacity);
    this.lengths = new Uint8Array(this.capacity);
    this.words = new Int32Array((this.capacity + 1) * KEY_WORDS);
    this.rehash(this.capacity);
  }

  /** The entry of `key`, or -1. */
  get(key: string): number {
    if (key.length > KEY_UNITS) return -1;
    const h = this.load(key);
    for (let b = h & this.mask; ; b = (b + 1) & this.mask) {
      const e = this.buckets[b]! - 1;
      if (e < 0) return -1;
      if (this.hashes[e] === h && this.equals(e, key.length)) return e;
    }
  }

  /** The entry of `key`, added as entry `size` when it is not there yet. */
  add(key: string): number {
    if (key.length > KEY_UNITS) throw new RangeError(`key of ${key.length} units, at most ${KEY_UNITS}`);
    // read into the place the next entry takes: a new key is already where it belongs
    return this.insert(this.load(key), key.length);
  }

  /**
   * add() of the key of the detail record at `off` in `buf` (src/pipeline/layout.ts FIELDS), read from
   * its bytes: the same entry as add(keyString() of that record), without making the string.
   */
  addRecord(buf: Uint8Array, off: number): number {
    return this.insert(this.loadRecord(buf, off), KEY_UNITS);
  }

  private insert(h: number, length: number): number {
    let b = h & this.mask;
    for (; ; b = (b + 1) & this.mask) {
      const e = this.buckets[b]! - 1;
      if (e < 0) break;
      if (this.hashes[e] === h && this.equals(e, length)) return e;
    }
    if (this.size === this.capacity) {
      this.grow();
      for (b = h & this.mask; this.buckets[b] !== 0; b = (b + 1) & this.mask);
    }
    const e = this.size++;
    this.buckets[b] = e + 1;
    this.hashes[e] = h;
    this.lengths[e] = length;
    return e;
  }

  /** Forgets every key (the arrays stay, sized for as many again). */
  clear(): void {
    if (this.size === 0) return;
    this.buckets.fill(0);
    this.size = 0;
  }

  /**
   * Reads `key` into entry `size`'s words, two units to a word (an odd last unit with 0), and
   * hashes it in the same pass: FNV-1a over the words, mixed at the end so the low bits (the
   * bucket) depend on all of them.
   */
  private load(key: string): number {
    const words = this.words;
    const at = this.size * KEY_WORDS;
    const n = key.length;
    let h = 0x811c9dc5 | 0;
    let i = 0;
    for (; i + 1 < n; i += 2) {
      const w = key.charCodeAt(i) | (key.charCodeAt(i + 1) << 16);
      words[at + (i >> 1)] = w;
      h = Math.imul(h ^ w, 0x01000193);
    }
    if (i < n) {
      const w = key.charCodeAt(i);
      words[at + (i >> 1)] = w;
      h = Math.imul(h ^ w, 0x01000193);
    }
    return finish(h);
  }

  /**
   * load() of a detail record's key: the words keyString() would make of it (src/pipeline/decode.ts),
   * straight from the bytes. Units 2k and 2k+1 of the string are word k: reason, netns and
   * ifindex whole, sport | dport << 16, l4 | type << 8 | code << 16 | ip version << 24, then
   * the addresses four bytes a word.
   */
  private loadRecord(buf: Uint8Array, off: number): number {
    if (buf !== this.recordBuf) {
      this.recordBuf = buf;
      this.recordView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    const v = this.recordView;
    const words = this.words;
    const at = this.size * KEY_WORDS;
    const flags = buf[off + FIELDS.flags[0]]!;
    const ipv = flags & FLAGS.IPV4 ? 4 : flags & FLAGS.IPV6 ? 6 : 0;
    words[at] = v.getInt32(off + FIELDS.reason[0], true);
    words[at + 1] = v.getInt32(off + FIELDS.netns[0], true);
    words[at + 2] = v.getInt32(off + FIELDS.ifindex[0], true);
    words[at + 3] = v.getUint16(off + FIELDS.sport[0], true) | (v.getUint16(off + FIELDS.dport[0], true) << 16);
    words[at + 4] = buf[off + FIELDS.l4_proto[0]]! | (buf[off + FIELDS.icmp_type[0]]! << 8) | (buf[off + FIELDS.icmp_code[0]]! << 16) | (ipv << 24);
    const s = off + FIELDS.saddr[0];
    const d = off + FIELDS.daddr[0];
    for (let i = 0; i < 4; i++) {
      words[at + 5 + i] = v.getInt32(s + 4 * i, true);
      words[at + 9 + i] = v.getInt32(d + 4 * i, true);
    }
    let h = 0x811c9dc5 | 0;
    for (let i = 0; i < KEY_WORDS; i++) h = Math.imul(h ^ words[at + i]!, 0x01000193);
    return finish(h);
  }

  /** Whether entry `e` is the key load() just read (of `length` units). */
  private equals(e: number, length: number): boolean {
    if (this.lengths[e] !== length) return false;
    const words = this.words;
    const at = e * KEY_WORDS;
    const key = this.size * KEY_WORDS;
    const n = (length + 1) >> 1;
    for (let i = 0; i < n; i++) if (words[at + i] !== words[key + i]) return false;
    return true;
  }

  /** Doubles the entries, the key being added (in entry `size`) with them. */
  private grow(): void {
    const capacity = this.capacity * 2;
    const hashes = new Int32Array(capacity);
    hashes.set(this.hashes);
    const lengths = new Uint8Array(capacity);
    lengths.set(this.lengths);
    const words = new Int32Array((capacity + 1) * KEY_WORDS);
    words.set(this.words);
    this.hashes = hashes;
    this.lengths = lengths;
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

/** FNV-1a's end: mixed so the low bits (the bucket) depend on every word */
function finish(h: number): number {
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return h ^ (h >>> 12);
}

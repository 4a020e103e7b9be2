/**
 * Kernel text addresses → function names, from /proc/kallsyms. Loaded once; each distinct
 * address is resolved once (drops come from a handful of call sites).
 *
 * The table is parsed straight from the file's bytes into typed arrays (address halves, name
 * offsets): /proc/kallsyms has 100,000+ lines, and a string per line, a BigInt per address and
 * a name string per symbol made a process peak at ~55 MB above Node's own before the first drop.
 * A name is decoded only when an address resolves to it.
 */
import { closeSync, openSync, readSync } from 'node:fs';

const SUFFIX = /(\.(constprop|isra|part|cold|llvm|lto_priv)(\.\d+)?)+$/;

const SPACE = 0x20;
const TAB = 0x09;
const NL = 0x0a;

/** Value of one hex digit (either case), or -1. */
function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

export class Symbolizer {
  /** the file's bytes: names are read from here, on demand */
  private readonly text: Buffer;
  /** per text symbol, sorted by address: high and low 32 bits of the address */
  private readonly hi: Uint32Array;
  private readonly lo: Uint32Array;
  /** per text symbol: where its name starts in `text`, and its length */
  private readonly nameAt: Uint32Array;
  private readonly nameLen: Uint16Array;
  private readonly count: number;
  private readonly cache = new Map<bigint, string>();

  constructor(text: string | Buffer) {
    const buf = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
    this.text = buf;
    // "ffffffff81000000 T _stext" or "ffffffffc0a01000 t nft_do_chain\t[nf_tables]": at least
    // 20 bytes a line, so this many lines at most
    const max = Math.ceil(buf.length / 20) + 1;
    let hi = new Uint32Array(max);
    let lo = new Uint32Array(max);
    let nameAt = new Uint32Array(max);
    let nameLen = new Uint16Array(max);
    let n = 0;
    let sorted = true;
    for (let at = 0; at < buf.length; ) {
      let end = buf.indexOf(NL, at);
      if (end < 0) end = buf.length;
      const type = buf[at + 17];
      if (end - at >= 20 && buf[at + 16] === SPACE && (type === 0x74 || type === 0x54) && buf[at + 18] === SPACE) {
        let h = 0;
        let l = 0;
        let ok = true;
        for (let i = 0; i < 16; i++) {
          const d = hexDigit(buf[at + i]!);
          if (d < 0) {
            ok = false;
            break;
          }
          if (i < 8) h = h * 16 + d;
          else l = l * 16 + d;
        }
        let nameEnd = at + 19;
        while (nameEnd < end && buf[nameEnd] !== TAB) nameEnd++;
        if (ok && nameEnd > at + 19) {
          hi[n] = h;
          lo[n] = l;
          nameAt[n] = at + 19;
          nameLen[n] = Math.min(nameEnd - (at + 19), 0xffff);
          if (n > 0 && (hi[n - 1]! > h || (hi[n - 1] === h && lo[n - 1]! > l))) sorted = false;
          n++;
        }
      }
      at = end + 1;
    }
    if (!sorted) {
      const order = new Uint32Array(n);
      for (let i = 0; i < n; i++) order[i] = i;
      order.sort((a, b) => hi[a]! - hi[b]! || lo[a]! - lo[b]!);
      const h2 = new Uint32Array(n);
      const l2 = new Uint32Array(n);
      const a2 = new Uint32Array(n);
      const n2 = new Uint16Array(n);
      for (let i = 0; i < n; i++) {
        const j = order[i]!;
        h2[i] = hi[j]!;
        l2[i] = lo[j]!;
        a2[i] = nameAt[j]!;
        n2[i] = nameLen[j]!;
      }
      hi = h2;
      lo = l2;
      nameAt = a2;
      nameLen = n2;
    }
    this.hi = hi;
    this.lo = lo;
    this.nameAt = nameAt;
    this.nameLen = nameLen;
    this.count = n;
  }

  static fromProc(path = '/proc/kallsyms'): Symbolizer {
    return new Symbolizer(readWhole(path));
  }

  /** Whether addresses are visible (kptr_restrict hides them as zeros). */
  get usable(): boolean {
    const last = this.count - 1;
    return this.count > 0 && (this.hi[last] !== 0 || this.lo[last] !== 0);
  }

  lookup(addr: bigint): string {
    const hit = this.cache.get(addr);
    if (hit !== undefined) return hit;
    const found = this.indexOf(addr);
    const name = found >= 0 ? this.name(found) : `0x${addr.toString(16)}`;
    this.cache.set(addr, name);
    return name;
  }

  /**
   * One stack frame as perf and the kernel's own traces print it: `nf_hook_slow+0x44`, or
   * `nft_do_chain+0x1a4 [nf_tables]` in a module; the bare address when nothing contains it.
   * Not cached: --stack caches whole stacks by their id (src/pipeline/stacks.ts).
   */
  frame(addr: bigint): string {
    const i = this.indexOf(addr);
    if (i < 0) return `0x${addr.toString(16)}`;
    const start = BigInt(this.hi[i]!) * 4294967296n + BigInt(this.lo[i]!);
    const end = this.nameAt[i]! + this.nameLen[i]!;
    let mod = '';
    if (this.text[end] === TAB) {
      let eol = this.text.indexOf(NL, end);
      if (eol < 0) eol = this.text.length;
      mod = ' ' + this.text.toString('latin1', end + 1, eol).trim();
    }
    return `${this.name(i)}+0x${(addr - start).toString(16)}${mod}`;
  }

  /** The symbol that contains `addr` (the last one at or below it), or -1. */
  private indexOf(addr: bigint): number {
    // kallsyms shows zeros without CAP_SYSLOG (kptr_restrict): never guess a name then
    if (!this.usable || addr === 0n) return -1;
    const h = Number((addr >> 32n) & 0xffffffffn);
    const l = Number(addr & 0xffffffffn);
    let lo = 0;
    let hi = this.count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const mh = this.hi[mid]!;
      if (mh < h || (mh === h && this.lo[mid]! <= l)) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  private name(i: number): string {
    const at = this.nameAt[i]!;
    // compiler clones keep their function's name: ip_rcv_finish_core.constprop.0
    return this.text.toString('latin1', at, at + this.nameLen[i]!).replace(SUFFIX, '');
  }
}

/**
 * A /proc file (it says its size is 0) read into one buffer that grows by doubling:
 * readFileSync reads such a file in 64 KiB pieces and joins them, twice the memory at the peak.
 */
function readWhole(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    let buf = Buffer.allocUnsafeSlow(8 << 20);
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        const bigger = Buffer.allocUnsafeSlow(buf.length * 2);
        buf.copy(bigger, 0, 0, len);
        buf = bigger;
      }
      const n = readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) return buf.subarray(0, len);
      len += n;
    }
  } finally {
    closeSync(fd);
  }
}

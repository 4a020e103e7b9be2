/** Textual addresses: dotted IPv4, and IPv6 in RFC 5952 short form. */

/** "0." to "255.", and "0" to "255" */
const OCTET_DOT: string[] = Array.from({ length: 256 }, (_, i) => `${i}.`);
const OCTET: string[] = Array.from({ length: 256 }, (_, i) => String(i));

export function ipv4(b: Uint8Array, off: number): string {
  return OCTET_DOT[b[off]!]! + OCTET_DOT[b[off + 1]!]! + OCTET_DOT[b[off + 2]!]! + OCTET[b[off + 3]!]!;
}

/** the words of the address being formatted (no array per call) */
const words = new Uint16Array(8);

/** four bytes as a big-endian 32-bit word */
const word32 = (b: Uint8Array, off: number) => (b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!;

export function ipv6(b: Uint8Array, off: number): string {
  return ipv6Of(word32(b, off), word32(b, off + 4), word32(b, off + 8), word32(b, off + 12));
}

/** ipv6() of an address given as four big-endian 32-bit words (signed or not). */
function ipv6Of(w0: number, w1: number, w2: number, w3: number): string {
  words[0] = w0 >>> 16;
  words[1] = w0;
  words[2] = w1 >>> 16;
  words[3] = w1;
  words[4] = w2 >>> 16;
  words[5] = w2;
  words[6] = w3 >>> 16;
  words[7] = w3;
  // IPv4-mapped (::ffff:a.b.c.d) keeps its dotted tail (RFC 5952 section 5).
  if (w0 === 0 && w1 === 0 && (w2 | 0) === 0xffff) {
    return '::ffff:' + OCTET_DOT[w3 >>> 24]! + OCTET_DOT[(w3 >>> 16) & 0xff]! + OCTET_DOT[(w3 >>> 8) & 0xff]! + OCTET[w3 & 0xff]!;
  }
  // The longest run of two or more zero words becomes "::"; the first one on a tie.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  // lower-case hex words without leading zeros, joined by ':'
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      s += i === 0 ? '::' : ':';
      i += bestLen - 1;
      continue;
    }
    s += hexWord(words[i]!);
    if (i < 7) s += ':';
  }
  return s;
}

/** "0" to "ffff", made the first time each is needed (at most 65,536 short strings) */
const HEX_WORDS: Array<string | undefined> = new Array<string | undefined>(65536).fill(undefined);
const hexWord = (w: number): string => HEX_WORDS[w] ?? (HEX_WORDS[w] = w.toString(16));

/**
 * Address and device-name text by their bytes, for the decoder: a busy node sees the same few
 * addresses and devices again and again, and formatting IPv6 is the dearest part of decoding.
 * Direct-mapped, so memory is bounded and a miss costs one formatting, never a scan.
 */
export class TextCache {
  private readonly mask: number;
  private readonly v4Keys: Int32Array;
  private readonly v4Text: string[];
  /** 16-byte keys (IPv6 addresses, device names): four words per slot */
  private readonly wideKeys: Int32Array;
  private readonly wideText: string[];
  /** the buffer last read, and a view of it: words in one read each, not four */
  private buf: Uint8Array | null = null;
  private view: DataView = new DataView(new ArrayBuffer(0));

  constructor(bits = 12) {
    const n = 1 << bits;
    this.mask = n - 1;
    this.v4Keys = new Int32Array(n);
    // '' marks an empty slot: no address or device name formats to ''
    this.v4Text = new Array<string>(n).fill('');
    this.wideKeys = new Int32Array(4 * n);
    this.wideText = new Array<string>(n).fill('');
  }

  ipv4(b: Uint8Array, off: number): string {
    const k = this.viewOf(b).getInt32(off);
    const i = (Math.imul(k, 0x9e3779b1) >>> 16) & this.mask;
    const hit = this.v4Text[i]!;
    if (hit !== '' && this.v4Keys[i] === k) return hit;
    const s = ipv4(b, off);
    this.v4Keys[i] = k;
    this.v4Text[i] = s;
    return s;
  }

  ipv6(b: Uint8Array, off: number): string {
    return this.wide(b, off, 0);
  }

  /** A NUL-terminated name of at most 16 bytes (IFNAMSIZ), bytes as Latin-1. */
  name16(b: Uint8Array, off: number): string {
    return this.wide(b, off, 1);
  }

  private viewOf(b: Uint8Array): DataView {
    if (b !== this.buf) {
      this.buf = b;
      this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    }
    return this.view;
  }

  private wide(b: Uint8Array, off: number, what: 0 | 1): string {
    // big-endian: the words are the bytes in order, as formatting reads them
    const v = this.viewOf(b);
    const w0 = v.getInt32(off);
    const w1 = v.getInt32(off + 4);
    const w2 = v.getInt32(off + 8);
    const w3 = v.getInt32(off + 12);
    // the kind of text is part of the key: an address and a name never share a slot's text
    const h = Math.imul(w0 ^ Math.imul(w1, 0x85ebca6b) ^ Math.imul(w2, 0xc2b2ae35) ^ Math.imul(w3 ^ what, 0x27d4eb2f), 0x9e3779b1);
    const i = ((h >>> 16) & (this.mask - 1)) | what;
    const hit = this.wideText[i]!;
    const k = 4 * i;
    const keys = this.wideKeys;
    if (hit !== '' && keys[k] === w0 && keys[k + 1] === w1 && keys[k + 2] === w2 && keys[k + 3] === w3) return hit;
    const s = what === 0 ? ipv6Of(w0, w1, w2, w3) : latin1Z(b, off, 16);
    if (s === '') return s;
    keys[k] = w0;
    keys[k + 1] = w1;
    keys[k + 2] = w2;
    keys[k + 3] = w3;
    this.wideText[i] = s;
    return s;
  }
}

/** Bytes up to the first NUL (at most `max`), as Latin-1. */
export function latin1Z(b: Uint8Array, off: number, max: number): string {
  let end = off;
  while (end < off + max && b[end] !== 0) end++;
  let s = '';
  for (let i = off; i < end; i++) s += String.fromCharCode(b[i]!);
  return s;
}

/** `198.18.0.1:53`, `[fd99::1]:53`, or the bare address when there is no port. */
export function hostPort(ip: string, port?: number | null): string {
  if (port === undefined || port === null) return ip;
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipv4, ipv6, latin1Z, TextCache } from '../../src/pipeline/addr.js';

const v6 = (hex: string) => ipv6(Buffer.from(hex.replace(/:/g, ''), 'hex'), 0);

describe('addresses', () => {
  it('prints IPv4 dotted', () => {
    expect(ipv4(Uint8Array.from([0, 198, 18, 0, 1]), 1)).toBe('198.18.0.1');
  });

  it.each([
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:0db8:0000:0001:0000:0000:0000:0001', '2001:db8:0:1::1'], // longest run wins
    ['2001:0db8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'], // first run on a tie
    ['2001:0db8:0000:0001:0001:0001:0001:0001', '2001:db8:0:1:1:1:1:1'], // one zero word stays
    ['0000:0000:0000:0000:0000:0000:0000:0000', '::'],
    ['0000:0000:0000:0000:0000:0000:0000:0001', '::1'],
    ['fd99:0000:0000:0000:0000:0000:0007:0001', 'fd99::7:1'],
    ['fe80:0000:0000:0000:0000:0000:0000:0000', 'fe80::'],
    ['0000:0000:0000:0000:0000:ffff:c612:0001', '::ffff:198.18.0.1'],
    ['ABCD:EF01:2345:6789:ABCD:EF01:2345:6789', 'abcd:ef01:2345:6789:abcd:ef01:2345:6789'],
  ])('%s is %s (RFC 5952)', (hex, want) => {
    expect(v6(hex)).toBe(want);
  });
});

/** The straightforward formatting the fast one replaced: the fast one must agree byte for byte. */
function referenceIpv6(b: Uint8Array, off: number): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[off + 2 * i]! << 8) | b[off + 2 * i + 1]!);
  if (w.slice(0, 5).every((x) => x === 0) && w[5] === 0xffff) return `::ffff:${b[off + 12]}.${b[off + 13]}.${b[off + 14]}.${b[off + 15]}`;
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (x: number) => x.toString(16);
  if (bestStart < 0) return w.map(hex).join(':');
  return `${w.slice(0, bestStart).map(hex).join(':')}::${w.slice(bestStart + bestLen).map(hex).join(':')}`;
}

/** 16 bytes with many zero words and small words, where the shortening rules bite */
const v6bytes = fc.array(fc.oneof(fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xf })), { minLength: 8, maxLength: 8 }).map((ws) => {
  const b = new Uint8Array(16);
  ws.forEach((x, i) => {
    b[2 * i] = x >> 8;
    b[2 * i + 1] = x & 0xff;
  });
  return b;
});

describe('addresses (property)', () => {
  it('ipv6 agrees with the straightforward formatting', () => {
    fc.assert(
      fc.property(v6bytes, (b) => {
        expect(ipv6(b, 0)).toBe(referenceIpv6(b, 0));
      }),
      { numRuns: 5000 },
    );
  });

  it('ipv4 is dotted decimal', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (b) => {
        expect(ipv4(b, 0)).toBe(Array.from(b).join('.'));
      }),
    );
  });
});

describe('TextCache', () => {
  it('returns what formatting returns, hit or miss, for any mix of addresses and names', () => {
    // a tiny cache, so that slots are shared and overwritten all the time
    const cache = new TextCache(2);
    fc.assert(
      fc.property(
        // v6bytes repeats itself often (zero and 0xffff words): hits, misses and overwrites
        fc.array(fc.tuple(fc.constantFrom('v4', 'v6', 'name'), v6bytes), { minLength: 1, maxLength: 40 }),
        (steps) => {
          for (const [what, b] of steps) {
            if (what === 'v4') expect(cache.ipv4(b, 0)).toBe(ipv4(b, 0));
            else if (what === 'v6') expect(cache.ipv6(b, 0)).toBe(ipv6(b, 0));
            else expect(cache.name16(b, 0)).toBe(latin1Z(b, 0, 16));
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('reads a device name up to its NUL, bytes as Latin-1', () => {
    const cache = new TextCache();
    const b = Buffer.alloc(16);
    b.write('veth\xe9x', 'latin1');
    expect(cache.name16(b, 0)).toBe('veth\u00e9x');
    expect(cache.name16(b, 0)).toBe('veth\u00e9x');
    expect(cache.name16(Buffer.alloc(16), 0)).toBe('');
    expect(cache.name16(Buffer.alloc(16, 0x61), 0)).toBe('a'.repeat(16));
  });
});

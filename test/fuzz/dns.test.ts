/**
 * Property tests of the DNS question parser: it reads the first bytes of packets the kernel
 * dropped, so anything may arrive, cut anywhere. It must never throw, never return a name longer
 * than DNS allows, and read back exactly what a real query said.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDnsQuestion } from '../../src/pipeline/dns.js';

/** Wire length of a presentation name: each label's bytes plus its length byte (`\ddd` is one byte). */
function wireLength(name: string): number {
  if (name === '.') return 0;
  return name
    .slice(0, -1)
    .split('.')
    .reduce((n, label) => n + 1 + label.replace(/\\\d{3}/g, 'x').length, 0);
}

/** A DNS query message for `labels` (raw bytes), as a resolver would send it. */
function query(id: number, labels: Uint8Array[], qtype: number, flags = 0x0100): Uint8Array {
  const parts: number[] = [id >> 8, id & 0xff, flags >> 8, flags & 0xff, 0, 1, 0, 0, 0, 0, 0, 0];
  for (const l of labels) parts.push(l.length, ...l);
  parts.push(0, qtype >> 8, qtype & 0xff, 0, 1);
  return Uint8Array.from(parts);
}

const tcp = (m: Uint8Array) => Uint8Array.from([m.length >> 8, m.length & 0xff, ...m]);

const label = fc.uint8Array({ minLength: 1, maxLength: 63 });
/** label lists whose wire length fits DNS's 255 bytes */
const labels = fc.array(label, { maxLength: 8 }).filter((ls) => ls.reduce((n, l) => n + l.length + 1, 0) <= 255);

describe('parseDnsQuestion (property)', () => {
  it('never throws on random bytes, and what it returns is bounded and printable', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, isTcp) => {
        const q = parseDnsQuestion(bytes, isTcp);
        if (q === null) return;
        expect(wireLength(q.name)).toBeLessThanOrEqual(255);
        expect(q.name).toMatch(/^[\x21-\x7e]+$/);
        expect(q.name.endsWith('.')).toBe(true);
        expect(q.id >= 0 && q.id <= 0xffff).toBe(true);
        expect(q.type).toMatch(/^(?:[A-Z]+|TYPE\d+)$/);
      }),
      { numRuns: 5000 },
    );
  });

  it('never throws on random bytes behind a plausible header (the paths past the header)', () => {
    fc.assert(
      fc.property(fc.nat(0xffff), fc.uint8Array({ maxLength: 400 }), fc.boolean(), (id, rest, isTcp) => {
        const msg = Uint8Array.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...rest]);
        const q = parseDnsQuestion(isTcp ? tcp(msg) : msg, isTcp);
        if (q) expect(wireLength(q.name)).toBeLessThanOrEqual(255);
      }),
      { numRuns: 5000 },
    );
  });

  it('reads back the name, type and id of any well-formed query, over UDP and TCP', () => {
    fc.assert(
      fc.property(fc.nat(0xffff), labels, fc.constantFrom(1, 28, 33, 65, 255, 4242), fc.boolean(), (id, ls, qtype, isTcp) => {
        const msg = query(id, ls, qtype);
        const q = parseDnsQuestion(isTcp ? tcp(msg) : msg, isTcp);
        expect(q).not.toBeNull();
        const text = (l: Uint8Array) =>
          [...l].map((c) => (c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c ? String.fromCharCode(c) : `\\${String(c).padStart(3, '0')}`)).join('');
        expect(q).toEqual({
          id,
          response: false,
          name: ls.length ? ls.map(text).join('.') + '.' : '.',
          type: ({ 1: 'A', 28: 'AAAA', 33: 'SRV', 65: 'HTTPS', 255: 'ANY' } as Record<number, string>)[qtype] ?? `TYPE${qtype}`,
        });
      }),
      { numRuns: 2000 },
    );
  });

  it('reads real host names as they are written', () => {
    fc.assert(
      fc.property(fc.domain(), (domain) => {
        const ls = domain.split('.').map((l) => Uint8Array.from(Buffer.from(l, 'ascii')));
        fc.pre(ls.reduce((n, l) => n + l.length + 1, 0) <= 255);
        expect(parseDnsQuestion(query(7, ls, 1))?.name).toBe(domain + '.');
      }),
      { numRuns: 1000 },
    );
  });

  it('a query cut short anywhere is null, never a shorter name', () => {
    fc.assert(
      fc.property(labels.filter((ls) => ls.length > 0), fc.double({ min: 0, max: 1, noNaN: true }), (ls, at) => {
        const msg = query(1, ls, 1);
        // everything up to the end of QTYPE is needed; QCLASS may be cut
        const needed = msg.length - 2;
        const cut = Math.floor(at * (needed - 1));
        expect(parseDnsQuestion(msg.subarray(0, cut))).toBeNull();
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses names longer than 255 bytes on the wire', () => {
    fc.assert(
      // built long rather than filtered: fast-check favours short arrays of short labels
      fc.property(fc.array(fc.uint8Array({ minLength: 43, maxLength: 63 }), { minLength: 6, maxLength: 12 }), (ls) => {
        expect(parseDnsQuestion(query(1, ls, 1))).toBeNull();
      }),
      { numRuns: 500 },
    );
  });
});

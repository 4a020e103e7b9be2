import { describe, expect, it } from 'vitest';
import { parseDnsQuestion } from '../../src/pipeline/dns.js';

const query = (name: string, qtype: number, flags = 0x0100) =>
  Buffer.concat([
    Buffer.from([0x12, 0x34, flags >> 8, flags & 0xff, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...name.split('.').filter(Boolean).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])),
    Buffer.from([0, qtype >> 8, qtype & 0xff, 0, 1]),
  ]);

describe('parseDnsQuestion', () => {
  it('reads the question of a query', () => {
    expect(parseDnsQuestion(query('kube-dns.kube-system.svc.cluster.local', 28))).toEqual({
      id: 0x1234,
      response: false,
      name: 'kube-dns.kube-system.svc.cluster.local.',
      type: 'AAAA',
    });
  });

  it('reads TCP messages after their length prefix, and responses', () => {
    const q = query('example.test', 33, 0x8180);
    expect(parseDnsQuestion(Buffer.concat([Buffer.from([0, q.length]), q]), true)).toEqual({ id: 0x1234, response: true, name: 'example.test.', type: 'SRV' });
  });

  it('names unknown types and the root', () => {
    expect(parseDnsQuestion(query('', 4242))).toMatchObject({ name: '.', type: 'TYPE4242' });
  });

  it('escapes bytes that are not printable', () => {
    expect(parseDnsQuestion(query('a\x01b.test', 1))?.name).toBe('a\\001b.test.');
  });

  it.each([
    ['empty', Buffer.alloc(0)],
    ['a header only', Buffer.alloc(12)],
    ['truncated in a label', query('kube-dns.kube-system.svc', 1).subarray(0, 20)],
    ['truncated before the type', query('x.test', 1).subarray(0, 20)],
    ['a compression pointer', Buffer.concat([query('', 1).subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])])],
    ['a name over 255 bytes', query(Array(6).fill('a'.repeat(60)).join('.'), 1)],
  ])('refuses %s', (_what, buf) => {
    expect(parseDnsQuestion(buf)).toBeNull();
  });
});

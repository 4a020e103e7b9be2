/**
 * The fate of DNS queries without root: messages, drops and time are arguments (src/pipeline/dns-fate.ts),
 * records round-trip through the kernel layout (src/pipeline/dns-decode.ts).
 */
import { describe, expect, it } from 'vitest';
import { DNS_FIELDS } from '../../src/gen/record.js';
import { DnsDecoder, encodeDnsRecord } from '../../src/pipeline/dns-decode.js';
import type { DnsMessage } from '../../src/pipeline/dns-decode.js';
import { DnsFate, quantile } from '../../src/pipeline/dns-fate.js';
import type { DnsDrop } from '../../src/pipeline/dns-fate.js';

const MS = 1e6;
const q = (at: number, id: number, o: Partial<DnsMessage> = {}): DnsMessage => ({
  monoNs: at * MS, netns: 7, ifindex: 2, dir: 'query', src: '198.18.1.2', dst: '198.18.2.2', sport: 40000, dport: 53,
  id, flags: 0x0100, rcode: 0, question: null, ...o,
});
const a = (at: number, id: number, rcode = 0, o: Partial<DnsMessage> = {}): DnsMessage => ({
  ...q(at, id), dir: 'answer', src: '198.18.2.2', dst: '198.18.1.2', sport: 53, dport: 40000, flags: 0x8180 | rcode, rcode, ...o,
});
const drop = (at: number, o: Partial<DnsDrop> = {}): DnsDrop => ({
  monoNs: at * MS, netns: 7, src: '198.18.1.2', dst: '198.18.2.2', sport: 40000, dport: 53, id: null, response: false,
  kind: 'netfilter_rule', count: 1, ...o,
});

describe('DnsFate', () => {
  it('matches answers by netns, 5-tuple and id: latency and rcode', () => {
    const f = new DnsFate();
    f.message(q(0, 1));
    f.message(q(1, 2));
    f.message(q(2, 3));
    f.message(a(10, 1));
    f.message(a(31, 2, 3));
    f.message(a(12, 3, 0, { netns: 8 })); // another netns: not this query's answer
    f.message(a(12, 9)); // an id nobody asked
    const [g, ...rest] = f.take();
    expect(rest).toEqual([]);
    expect(g).toMatchObject({ netns: 7, client: '198.18.1.2', resolver: '198.18.2.2', resolverPort: 53, queries: 2, answered: 2, unanswered: 0, dropped: 0 });
    expect(g!.latenciesMs).toEqual([10, 30]);
    expect(g!.rcodes).toEqual({ NOERROR: 1, NXDOMAIN: 1 });
    expect(f.stats.unmatchedAnswers).toBe(2);
    f.tick(100 * MS);
    expect(f.stats.pending).toBe(1);
  });

  it('settles a query unanswered at the timeout, not before; a late answer is unmatched', () => {
    const f = new DnsFate({ timeoutMs: 5000 });
    f.message(q(0, 1));
    f.message(q(1000, 2));
    f.tick(4999 * MS);
    expect(f.take()).toEqual([]);
    f.tick(5000 * MS);
    expect(f.take()).toMatchObject([{ queries: 1, unanswered: 1, answered: 0 }]);
    expect(f.stats.pending).toBe(1);
    f.message(a(5001, 1));
    expect(f.stats.unmatchedAnswers).toBe(1);
    f.tick(6000 * MS);
    expect(f.take()).toMatchObject([{ queries: 1, unanswered: 1 }]);
    expect(f.stats.pending).toBe(0);
  });

  it('counts a query sent again while waiting as a retransmit, not a second query', () => {
    const f = new DnsFate();
    f.message(q(0, 1));
    f.message(q(1000, 1));
    f.message(a(1010, 1));
    expect(f.take()).toMatchObject([{ queries: 1, answered: 1, retransmits: 1, latenciesMs: [1010] }]);
  });

  it('settles the queries of a flow dropped on this node, by id when the drop kept it', () => {
    const f = new DnsFate();
    f.message(q(0, 1));
    f.message(q(0, 2));
    f.message(q(0, 3));
    f.drop(drop(1, { id: 2, kind: 'netfilter_rule' }));
    f.drop(drop(1, { id: null, count: 1, kind: 'udp_socket_full' }));
    f.tick(10_000 * MS);
    expect(f.take()).toMatchObject([{ queries: 3, dropped: 2, unanswered: 1, dropKinds: { netfilter_rule: 1, udp_socket_full: 1 } }]);
  });

  it('settles a query whose answer was dropped coming in; such a drop with no query waiting is counted', () => {
    const f = new DnsFate();
    f.message(q(0, 1));
    const back = { src: '198.18.2.2', dst: '198.18.1.2', sport: 53, dport: 40000, response: true };
    f.drop(drop(5, { ...back, id: 1 }));
    f.drop(drop(6, { ...back, id: 1 }));
    expect(f.take()).toMatchObject([{ queries: 1, dropped: 1 }]);
    expect(f.stats.unmatchedDrops).toBe(1);
  });

  it('holds a drop that comes before its query (the rings are read apart), and one whose query never left (OUTPUT)', () => {
    const f = new DnsFate({ timeoutMs: 5000 });
    f.drop(drop(0, { id: 4 }));
    f.message(q(1, 4));
    expect(f.take()).toMatchObject([{ queries: 1, dropped: 1 }]);
    f.drop(drop(100, { count: 3, sport: 40001 }));
    f.tick(5099 * MS);
    expect(f.take()).toEqual([]);
    f.tick(5100 * MS);
    expect(f.take()).toMatchObject([{ queries: 3, dropped: 3, dropKinds: { netfilter_rule: 3 } }]);
  });

  it('bounds the pending table: the oldest query goes, counted', () => {
    const f = new DnsFate({ maxPending: 2 });
    f.message(q(0, 1));
    f.message(q(1, 2));
    f.message(q(2, 3));
    expect(f.stats.evicted).toBe(1);
    f.message(a(5, 1));
    f.message(a(5, 2));
    f.message(a(5, 3));
    expect(f.stats.unmatchedAnswers).toBe(1);
    expect(f.take()).toMatchObject([{ queries: 2, answered: 2 }]);
  });

  it('keeps one group per client netns and resolver, IPv6 too', () => {
    const f = new DnsFate();
    const v6 = { src: 'fd99::1', dst: 'fd99::53' };
    f.message(q(0, 1));
    f.message(q(0, 1, { netns: 8 }));
    f.message(q(0, 1, v6));
    f.message(a(1, 1, 2, { src: 'fd99::53', dst: 'fd99::1' }));
    f.tick(6000 * MS);
    const got = f.take().map((g) => [g.netns, g.resolver, g.answered, g.unanswered, g.rcodes]);
    expect(got).toEqual([
      [7, 'fd99::53', 1, 0, { SERVFAIL: 1 }],
      [7, '198.18.2.2', 0, 1, {}],
      [8, '198.18.2.2', 0, 1, {}],
    ]);
  });

  it('keeps a uniform sample of latencies past 4096 answers', () => {
    const f = new DnsFate({ random: () => 0 });
    for (let i = 0; i < 5000; i++) {
      f.message(q(0, i));
      f.message(a(i === 4999 ? 77 : 1, i));
    }
    const [g] = f.take();
    expect(g!.answered).toBe(5000);
    expect(g!.latenciesMs.length).toBe(4096);
    expect(g!.latenciesMs[0]).toBe(77);
  });
});

describe('quantile', () => {
  it('takes the nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(quantile(xs, 0.5)).toBe(50);
    expect(quantile(xs, 0.99)).toBe(99);
    expect(quantile([3], 0.99)).toBe(3);
    expect(quantile([], 0.5)).toBeNull();
  });
});

describe('DnsDecoder', () => {
  const question = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 4, 0x74, 0x65, 0x73, 0x74, 0, 0, 1, 0, 1]);
  it('reads back what the kernel writes, IPv4 and IPv6', () => {
    const base = 1_000_000_000n;
    const rec1 = encodeDnsRecord({ monoAbsNs: base + 5_000_000n, netns: 4026531840, ifindex: 3, dir: 'query', src: '198.18.1.2', dst: '198.18.2.2', sport: 40000, dport: 53, id: 0x1234, flags: 0x0100, msg: question });
    const rec2 = encodeDnsRecord({ monoAbsNs: base + 6_000_000n, netns: 9, ifindex: 4, dir: 'answer', src: 'fd99::53', dst: 'fd99::1', sport: 53, dport: 5353, id: 7, flags: 0x8183 });
    const { messages, errors } = new DnsDecoder(base).decode(Buffer.concat([rec1, rec2]));
    expect(errors).toBe(0);
    expect(messages).toEqual([
      { monoNs: 5_000_000, netns: 4026531840, ifindex: 3, dir: 'query', src: '198.18.1.2', dst: '198.18.2.2', sport: 40000, dport: 53, id: 0x1234, flags: 0x0100, rcode: 0, question: { id: 0x1234, response: false, name: 'test.', type: 'A' } },
      { monoNs: 6_000_000, netns: 9, ifindex: 4, dir: 'answer', src: 'fd99::53', dst: 'fd99::1', sport: 53, dport: 5353, id: 7, flags: 0x8183, rcode: 3, question: null },
    ]);
  });

  it('counts a record it cannot read and a torn tail', () => {
    const rec = encodeDnsRecord({ monoAbsNs: 0n, netns: 1, ifindex: 1, dir: 'query', src: '198.18.1.2', dst: '198.18.2.2', sport: 1, dport: 53, id: 1, flags: 0 });
    const wrongVersion = Buffer.from(rec);
    wrongVersion.writeUInt16LE(0xffff, DNS_FIELDS.version[0]);
    const r = new DnsDecoder(0n).decode(Buffer.concat([rec, wrongVersion, rec.subarray(0, 10)]));
    expect(r.messages.length).toBe(1);
    expect(r.errors).toBe(2);
  });
});

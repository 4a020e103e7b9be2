/**
 * The stream's DNS stage without root (src/pipeline/dns-stage.ts): kernel-layout records, drop
 * and counters lines in, `dns` lines with their verdict out; time and pods are parameters.
 */
import { describe, expect, it } from 'vitest';
import type { CountersLine } from '../../src/host/counters-line.js';
import { encodeDnsRecord } from '../../src/pipeline/dns-decode.js';
import type { DnsLine } from '../../src/pipeline/dns-line.js';
import { DnsStage } from '../../src/pipeline/dns-stage.js';
import type { KernelCounters } from '../../src/native/binding.js';
import { ruleDropLine } from '../helpers/lines.js';

const BASE = 1_000_000_000_000n;
const MS = 1_000_000;
const NETNS = 4026532001;
const CLIENT = '10.0.3.7';
const RESOLVER = '10.0.9.1';

function rec(dir: 'query' | 'answer', atMs: number, id: number, sport: number, rcode = 0): Uint8Array {
  const q = dir === 'query';
  return encodeDnsRecord({
    monoAbsNs: BASE + BigInt(atMs * MS),
    netns: NETNS,
    ifindex: 2,
    dir,
    src: q ? CLIENT : RESOLVER,
    dst: q ? RESOLVER : CLIENT,
    sport: q ? sport : 53,
    dport: q ? 53 : sport,
    id,
    flags: q ? 0x0100 : 0x8180 | rcode,
  });
}

function stage(podOf?: (netns: number, ip: string) => { namespace: string; name: string; uid: string } | null) {
  let nowMs = 0;
  const lines: DnsLine[] = [];
  const s = new DnsStage({
    monoBaseNs: BASE,
    monoNow: () => nowMs * MS,
    now: () => new Date(Date.UTC(2026, 11, 5, 12, 0, 0) + nowMs),
    timeoutMs: 1000,
    ...(podOf ? { podOf } : {}),
    emit: (l) => lines.push(l),
  });
  return { s, lines, at: (ms: number) => (nowMs = ms) };
}

const counters = (rates: Record<string, number>): CountersLine =>
  ({
    type: 'counters',
    time: '2026-12-05T12:00:01.000Z',
    nic: [{ ifname: 'ens5', netns: 1, driver: 'ena', virtual: false, stats: {}, allowance: Object.fromEntries(Object.keys(rates).map((k) => [k, 1])), rates }],
  }) as unknown as CountersLine;

const kernel = { dns: { seen: 9n, ringLost: 1n, userLost: 2n, shortRecords: 0n } } as unknown as KernelCounters;

describe('DnsStage', () => {
  it('answered, NXDOMAIN and dropped on this node: counted per client netns and resolver, no verdict', () => {
    const { s, lines, at } = stage((netns, ip) => (netns === NETNS && ip === CLIENT ? { namespace: 'shop', name: 'cart', uid: 'u1' } : null));
    s.handle(Buffer.concat([rec('query', 0, 1, 41000), rec('query', 1, 2, 41001), rec('query', 2, 3, 41002)]));
    s.handle(Buffer.concat([rec('answer', 5, 1, 41000), rec('answer', 9, 2, 41001, 3)]));
    // the third query's drop on this node (its id from the dropped message)
    s.observe(ruleDropLine({ netns: NETNS, flow: { proto: 'udp', src: CLIENT, dst: RESOLVER, sport: 41002, dport: 53 }, dns: { name: 'a.example.', type: 'A', id: 3, response: false } }));
    at(2000);
    s.flush();
    expect(lines).toHaveLength(1);
    const l = lines[0]!;
    expect(l).toMatchObject({
      type: 'dns',
      netns: NETNS,
      pod: { namespace: 'shop', name: 'cart', uid: 'u1' },
      client: CLIENT,
      resolver: RESOLVER,
      resolver_port: 53,
      queries: 3,
      answered: 2,
      dropped: 1,
      unanswered: 0,
      unanswered_share: 0,
      rcodes: { NOERROR: 1, NXDOMAIN: 1 },
      nxdomain: 1,
      servfail: 0,
      drop_kinds: { netfilter_rule: 1 },
      latency_ms: { p50: 5, p99: 8 },
      interval_s: 2,
    });
    expect(l.verdict).toBeUndefined();
  });

  it('unanswered with no drop on this node: the verdict names the allowance counter that rose', () => {
    const { s, lines, at } = stage();
    const qs: Uint8Array[] = [];
    for (let i = 0; i < 10; i++) qs.push(rec('query', i, 100 + i, 42000 + i));
    s.handle(Buffer.concat(qs));
    s.handle(Buffer.concat([0, 1, 2, 3, 4, 5].map((i) => rec('answer', 20 + i, 100 + i, 42000 + i))));
    s.observe(counters({ linklocal_allowance_exceeded: 412, pps_allowance_exceeded: 3 }));
    at(1500);
    s.flush();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ queries: 10, answered: 6, unanswered: 4, dropped: 0, unanswered_share: 0.4 });
    expect(lines[0]!.verdict).toBe(
      `DNS from ${CLIENT} (netns ${NETNS}) to ${RESOLVER}:53: 40% unanswered in the last 2 s, none dropped on this node; linklocal_allowance_exceeded +412/s, pps_allowance_exceeded +3/s — the cloud resolver's packet limit`,
    );
    expect(lines[0]!.allowance).toEqual({ linklocal_allowance_exceeded: 412, pps_allowance_exceeded: 3 });
  });

  it('without NIC counters the verdict says lost beyond this node and names the resolver', () => {
    const { s, lines, at } = stage();
    s.handle(rec('query', 0, 7, 43000));
    at(999);
    s.flush();
    expect(lines).toEqual([]); // still waiting: not unanswered before the timeout
    at(1000);
    s.flush();
    expect(lines).toHaveLength(1);
    expect(lines[0]!.verdict).toBe(`DNS from ${CLIENT} (netns ${NETNS}) to ${RESOLVER}:53: 100% unanswered in the last 1 s, none dropped on this node; lost beyond this node, between it and the resolver ${RESOLVER}`);
    expect(lines[0]!.allowance).toBeUndefined();
  });

  it('the verdict shares over the window: two intervals of the same group add up', () => {
    const { s, lines, at } = stage();
    s.handle(Buffer.concat([rec('query', 0, 1, 45000), rec('query', 0, 2, 45001), rec('answer', 3, 1, 45000)]));
    at(2000);
    s.flush();
    s.handle(Buffer.concat([rec('query', 2000, 3, 45002), rec('query', 2000, 4, 45003), rec('query', 2000, 5, 45004), rec('query', 2000, 6, 45005)]));
    s.handle(Buffer.concat([rec('answer', 2003, 3, 45002), rec('answer', 2003, 4, 45003), rec('answer', 2003, 5, 45004)]));
    at(4000);
    s.flush();
    expect(lines.map((l) => [l.queries, l.unanswered])).toEqual([[2, 1], [4, 1]]);
    // 2 of 6 over the 4 s the two lines cover
    expect(lines[1]!.verdict).toMatch(/: 33% unanswered in the last 4 s, none dropped on this node; lost beyond this node/);
  });

  it('a drop line of another flow or protocol settles nothing; the stats block adds up the losses', () => {
    const { s, lines, at } = stage();
    s.handle(rec('query', 0, 8, 44000));
    s.observe(ruleDropLine({ flow: { proto: 'tcp', src: CLIENT, dst: RESOLVER, sport: 44000, dport: 53 } }));
    s.observe(ruleDropLine({ flow: { proto: 'udp', src: CLIENT, dst: RESOLVER, sport: 44001, dport: 53 } }));
    // a record cut short: counted, never guessed at
    s.handle(rec('query', 0, 9, 44002).subarray(0, 100));
    at(500);
    s.flush();
    expect(lines).toEqual([]);
    expect(s.stats(kernel)).toEqual({
      seen: 9,
      lost: { ring_buffer: 1, userspace: 2 },
      decode_errors: 1,
      pending: 1,
      evicted: 0,
      unmatched_answers: 0,
      unmatched_drops: 0,
    });
  });
});

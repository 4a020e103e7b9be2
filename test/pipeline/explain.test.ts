/**
 * explainReads() is a promise the stream relies on to reuse explanations and rebuild folded
 * lines (src/pipeline/events.ts, src/pipeline/fold.ts): what it says explain() does not read, explain() must not
 * read.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classify } from '../../src/pipeline/classify.js';
import type { Classification } from '../../src/pipeline/classify.js';
import type { RawDrop } from '../../src/pipeline/decode.js';
import { explain, explainReads } from '../../src/pipeline/explain.js';

const KINDS: Classification[] = [
  { family: 'neigh', kind: 'neigh_table_full' },
  { family: 'neigh', kind: 'neigh_resolution_failed' },
  { family: 'neigh', kind: 'neigh_queue_full' },
  { family: 'neigh', kind: 'neigh_dead' },
  { family: 'conntrack', kind: 'conntrack_table_full', evidence: ['e'] },
  { family: 'conntrack', kind: 'conntrack_insert_failed', evidence: ['e'] },
  { family: 'conntrack', kind: 'conntrack_invalid', evidence: ['e'] },
  { family: 'netfilter', kind: 'netfilter_rule' },
  { family: 'martian', kind: 'martian_source' },
  { family: 'martian', kind: 'martian_destination' },
  { family: 'martian', kind: 'rp_filter' },
  { family: 'other', kind: 'no_socket' },
  { family: 'other', kind: 'tcp_csum' },
];

const drop = fc.record({
  monoDeltaNs: fc.nat(),
  location: fc.constant(0n),
  locationLow: fc.constant(0),
  reason: fc.nat(200),
  netns: fc.constantFrom(1, 4026532457),
  ifindex: fc.nat(9),
  ifname: fc.constantFrom('', 'eth0', 'veth1'),
  l3Proto: fc.constantFrom(0, 0x0800, 0x86dd),
  l4Proto: fc.constantFrom(0, 6, 17, 58),
  src: fc.constantFrom(null, '198.18.0.1', 'fd00::1'),
  dst: fc.constantFrom(null, '198.18.0.2', 'fd00::2'),
  sport: fc.constantFrom(null, 1, 53),
  dport: fc.constantFrom(null, 2, 53),
  icmpType: fc.constantFrom(null, 8),
  icmpCode: fc.constantFrom(null, 0),
  pktLen: fc.nat(1500),
  flags: fc.nat(63),
  probe: fc.constantFrom(1, 2),
  ctFlags: fc.nat(255),
  martianConf: fc.constantFrom(0, 0x80, 0x81, 0x82),
  rpFilter: fc.nat(2),
  neigh: fc.constantFrom(null, { family: 2, entries: 5, key: '198.18.0.9' }, { family: 10, entries: 7, key: 'fd00::9' }),
  payload: fc.constant(null),
  record: fc.constant(null),
  at: fc.constant(0),
}) as fc.Arbitrary<RawDrop>;

describe('explainReads', () => {
  it('explain() reads no more of a drop than explainReads() says', () => {
    const noSysctl = () => {
      throw new Error('read a sysctl');
    };
    fc.assert(
      fc.property(fc.constantFrom(...KINDS), drop, drop, (c, a, b) => {
        const reads = explainReads(c.kind);
        if (reads === 'sysctl') return;
        // none of these read sysctls: values in force would make an explanation stale
        const x = explain(c, a, 'R', noSysctl, 'loc');
        if (reads === 'drop') return;
        // the same explanation for any other drop (of the same netns, for 'netns')
        expect(explain(c, { ...b, netns: reads === 'netns' ? a.netns : b.netns }, 'R', noSysctl, 'loc')).toEqual(x);
      }),
      { numRuns: 2000 },
    );
  });

  it('knows every kind classify() gives', () => {
    const kinds = ['NEIGH_CREATEFAIL', 'NEIGH_FAILED', 'NEIGH_QUEUEFULL', 'NEIGH_DEAD', 'IP_RPFILTER', 'IP_INVALID_SOURCE', 'IP_INVALID_DEST'].map(
      (r) => classify({ reason: r, location: 'x', src: null, dst: null }).kind,
    );
    expect(kinds.map(explainReads)).toEqual(['sysctl', 'sysctl', 'drop', 'drop', 'drop', 'drop', 'drop']);
    expect(explainReads('no_socket')).toBe('none');
  });
});

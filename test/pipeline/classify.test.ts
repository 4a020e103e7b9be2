import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classify, classifyReadsFlow, classifyReadsFlowAt } from '../../src/pipeline/classify.js';
import { CT_FLAG, MARTIAN_FLAG } from '../../src/gen/record.js';

const c = (reason: string, src: string | null = '198.18.0.1', dst: string | null = '198.18.0.2', location = 'x') =>
  classify({ reason, location, src, dst });

describe('classify', () => {
  it('NETFILTER_DROP is netfilter/netfilter_rule, likely (by elimination: no conntrack signal)', () => {
    expect(c('NETFILTER_DROP')).toEqual({ family: 'netfilter', kind: 'netfilter_rule', certainty: 'likely' });
  });

  it.each([
    ['NEIGH_CREATEFAIL', 'neigh', 'neigh_table_full'],
    ['NEIGH_FAILED', 'neigh', 'neigh_resolution_failed'],
    ['NEIGH_QUEUEFULL', 'neigh', 'neigh_queue_full'],
    ['NEIGH_DEAD', 'neigh', 'neigh_dead'],
    ['IP_INVALID_SOURCE', 'martian', 'martian_source'],
    ['IP_LOCAL_SOURCE', 'martian', 'martian_source'],
    ['IP_INVALID_DEST', 'martian', 'martian_destination'],
    ['IP_RPFILTER', 'martian', 'rp_filter'],
    ['NO_SOCKET', 'other', 'no_socket'],
    ['TCP_CSUM', 'other', 'tcp_csum'],
  ])('%s is %s/%s', (reason, family, kind) => {
    expect(c(reason)).toEqual({ family, kind });
  });

  it('tells a loopback source from a loopback destination (IP_LOCALNET)', () => {
    expect(c('IP_LOCALNET', '127.0.0.9', '198.18.0.2')).toEqual({ family: 'martian', kind: 'martian_source' });
    expect(c('IP_LOCALNET', '198.18.0.1', '127.0.0.1')).toEqual({ family: 'martian', kind: 'martian_destination' });
  });

  it('calls a 0.0.0.0/8 destination martian, other IP_INADDRERRORS not', () => {
    expect(c('IP_INADDRERRORS', '198.18.0.1', '0.0.0.9')).toEqual({ family: 'martian', kind: 'martian_destination' });
    expect(c('IP_INADDRERRORS', '198.18.0.1', '198.19.0.9')).toEqual({ family: 'other', kind: 'ip_inaddrerrors' });
  });
});

describe('classify NETFILTER_DROP: rule or conntrack', () => {
  const HAS = CT_FLAG.HAS_CT;
  const CONF = CT_FLAG.CONFIRMED;
  const nf = (ctFlags: number) => classify({ reason: 'NETFILTER_DROP', location: 'nf_hook_slow', src: 'a', dst: 'b', ctFlags }).kind;

  it('is a rule when no conntrack counter moved', () => {
    expect(nf(0)).toBe('netfilter_rule');
    expect(nf(CT_FLAG.ACTIVE | HAS | CONF)).toBe('netfilter_rule');
    // a legacy iptables drop of a new connection: unconfirmed entry, but insert_failed did not rise
    expect(nf(CT_FLAG.ACTIVE | HAS)).toBe('netfilter_rule');
  });

  it('is table full when the packet has no entry and the drop counter rose', () => {
    expect(nf(CT_FLAG.ACTIVE | CT_FLAG.DROP_ROSE)).toBe('conntrack_table_full');
    expect(nf(CT_FLAG.ALLOC_FAILED)).toBe('conntrack_table_full');
    // an entry on the packet rules it out
    expect(nf(CT_FLAG.ACTIVE | HAS | CONF | CT_FLAG.DROP_ROSE)).toBe('netfilter_rule');
  });

  it('is insert failed when an unconfirmed entry lost the race', () => {
    expect(nf(CT_FLAG.ACTIVE | HAS | CT_FLAG.DROP_ROSE | CT_FLAG.INSERT_FAILED_ROSE)).toBe('conntrack_insert_failed');
    expect(nf(CT_FLAG.ACTIVE | HAS | CONF | CT_FLAG.INSERT_FAILED_ROSE)).toBe('netfilter_rule');
  });

  it('is invalid when the packet has no entry and the invalid counter rose (even if conntrack dropped it itself)', () => {
    expect(nf(CT_FLAG.ACTIVE | CT_FLAG.INVALID_ROSE)).toBe('conntrack_invalid');
    expect(nf(CT_FLAG.ACTIVE | CT_FLAG.INVALID_ROSE | CT_FLAG.DROP_ROSE)).toBe('conntrack_invalid');
  });

  it('says when it had no baseline to compare with', () => {
    expect(classify({ reason: 'NETFILTER_DROP', location: 'x', src: null, dst: null, ctFlags: CT_FLAG.DROP_ROSE | CT_FLAG.NO_BASELINE }).evidence).toEqual([
      'no conntrack entry on the packet',
      "conntrack's drop counter rose on this CPU",
      'first drop seen in this netns on this CPU: conntrack counters compared with zero',
    ]);
  });
});

describe('martians on kernels without the IP_* drop reasons (6.1)', () => {
  const c6 = (src: string, martianConf: number, location = 'ip_rcv_finish_core') => classify({ reason: 'NOT_SPECIFIED', location, src, dst: '198.18.0.2', martianConf }).kind;
  it('trusts a hook on ip_handle_martian_source', () => {
    expect(c6('198.18.0.1', MARTIAN_FLAG.SOURCE_SEEN, 'anywhere')).toBe('martian_source');
  });
  it('falls back on the place and a source that is never valid', () => {
    expect(c6('127.0.0.9', 0)).toBe('martian_source');
    expect(c6('0.1.2.3', 0)).toBe('martian_source');
    expect(c6('224.0.0.1', 0)).toBe('martian_source');
    expect(c6('198.18.0.1', 0)).toBe('not_specified');
    expect(c6('127.0.0.9', 0, 'ip6_mc_input')).toBe('not_specified');
  });
  it('keeps rp_filter apart: its reason says so even when the martian hook also ran', () => {
    expect(classify({ reason: 'IP_RPFILTER', location: 'ip_rcv_finish_core', src: 'a', dst: 'b', martianConf: MARTIAN_FLAG.SOURCE_SEEN }).kind).toBe('rp_filter');
  });
});

describe('classifyReadsFlow', () => {
  // the stream classifies each (reason, location, flags) once unless this says the flow matters
  it('for any other reason, the flow changes nothing', () => {
    const reasons = ['NETFILTER_DROP', 'NO_SOCKET', 'NEIGH_CREATEFAIL', 'IP_RPFILTER', 'IP_INVALID_SOURCE', 'TCP_CSUM', 'NOT_SPECIFIED', 'IP_LOCALNET', 'IP_INADDRERRORS'];
    const ip = fc.constantFrom(null, '127.0.0.9', '0.1.2.3', '224.0.0.1', '198.18.0.1', '::1', 'fd00::1');
    fc.assert(
      fc.property(fc.constantFrom(...reasons), fc.constantFrom('ip_rcv_finish_core', 'x'), fc.nat(255), fc.nat(255), ip, ip, ip, ip, (reason, location, ctFlags, martianConf, s1, d1, s2, d2) => {
        fc.pre(!classifyReadsFlow(reason));
        expect(classify({ reason, location, src: s1, dst: d1, ctFlags, martianConf })).toEqual(classify({ reason, location, src: s2, dst: d2, ctFlags, martianConf }));
      }),
      { numRuns: 2000 },
    );
  });

  it('with the place and martian flags: for any other drop, the flow changes nothing', () => {
    const reasons = ['NETFILTER_DROP', 'NO_SOCKET', 'IP_RPFILTER', 'NOT_SPECIFIED', 'IP_LOCALNET', 'IP_INADDRERRORS'];
    const ip = fc.constantFrom(null, '127.0.0.9', '0.1.2.3', '224.0.0.1', '198.18.0.1', '::1', 'fd00::1');
    fc.assert(
      fc.property(fc.constantFrom(...reasons), fc.constantFrom('ip_rcv_finish_core', 'icmpv6_rcv', 'x'), fc.nat(255), fc.nat(255), ip, ip, ip, ip, (reason, location, ctFlags, martianConf, s1, d1, s2, d2) => {
        fc.pre(!classifyReadsFlowAt(reason, location, martianConf));
        expect(classify({ reason, location, src: s1, dst: d1, ctFlags, martianConf })).toEqual(classify({ reason, location, src: s2, dst: d2, ctFlags, martianConf }));
      }),
      { numRuns: 2000 },
    );
    expect(classifyReadsFlowAt('NOT_SPECIFIED', 'ip_rcv_finish_core', 0)).toBe(true);
    expect(classifyReadsFlowAt('NOT_SPECIFIED', 'icmpv6_rcv', 0)).toBe(false);
    expect(classifyReadsFlowAt('NOT_SPECIFIED', 'ip_rcv_finish_core', MARTIAN_FLAG.SOURCE_SEEN)).toBe(false);
  });

  it('says so for the reasons whose kind depends on the addresses', () => {
    expect(['NOT_SPECIFIED', 'IP_LOCALNET', 'IP_INADDRERRORS', 'NO_SOCKET'].map(classifyReadsFlow)).toEqual([true, true, true, false]);
  });
});

/** The filter language's meaning: each field, CIDRs, ports, wildcards, and/or/not, and its checked values. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileFilter, FilterError } from '../../../src/pipeline/filter/index.js';
import type { Subject } from '../../../src/pipeline/filter/index.js';

const base: Subject = {
  pod: 'payments/api-7d9f',
  namespace: 'payments',
  kind: 'netfilter_rule',
  family: 'netfilter',
  reason: 'NETFILTER_DROP',
  proto: 'udp',
  src: '198.18.7.1',
  dst: '198.18.7.2',
  sport: 40001,
  dport: 5301,
  netns: 4026532123,
  netnsName: 'dtt12b',
  names: ['kube-dns.kube-system.svc.cluster.local.'],
  ifnames: ['dvb12'],
};
const v6: Subject = { ...base, pod: null, namespace: null, kind: 'no_socket', family: 'other', reason: 'NO_SOCKET', src: 'fd99::7:1', dst: 'fd99::7:2', dport: 53, names: [], netnsName: undefined };
const noFlow: Subject = { ...base, pod: null, namespace: null, proto: null, src: null, dst: null, sport: null, dport: null, names: [], ifnames: [] };

const m = (text: string, s: Subject = base) => compileFilter(text).matches!(s);

describe('compileFilter: fields', () => {
  it('matches everything without a filter', () => {
    expect(compileFilter('  ').matches).toBeNull();
  });

  it('kind, family, reason: = is the whole value (any case, * a wildcard), : a part of it', () => {
    expect([m('kind=netfilter_rule'), m('kind=NETFILTER_RULE'), m('kind=netfilter'), m('kind=netfilter_*'), m('kind:filter')]).toEqual([true, true, false, true, true]);
    // kind: also finds the family, as the TUI's kind: always did; kind= does not
    expect([m('kind:netfilter', { ...base, kind: 'x' }), m('kind=netfilter', { ...base, kind: 'x' })]).toEqual([true, false]);
    expect([m('family=netfilter'), m('family!=neigh'), m('reason=netfilter_drop'), m('reason=SKB_DROP_REASON_NETFILTER_DROP'), m('reason=NETFILTER')]).toEqual([true, true, true, true, false]);
  });

  it('pod= is namespace/name or the name; ns= the namespace', () => {
    expect([m('pod=payments/api-7d9f'), m('pod=api-7d9f'), m('pod=api-*'), m('pod=api'), m('pod:API'), m('ns=payments'), m('ns=pay')]).toEqual([true, true, true, false, true, true, false]);
    // no pod: nothing equals it, everything differs from it
    expect([m('pod=api-7d9f', v6), m('pod!=api-7d9f', v6), m('ns:pay', v6), m('not ns=payments', v6)]).toEqual([false, true, false, true]);
  });

  it('ip, src, dst: an address in any spelling, a CIDR, or text with :', () => {
    expect([m('ip=198.18.7.2'), m('src=198.18.7.2'), m('dst=198.18.7.2'), m('ip=198.18.0.0/15'), m('ip=198.20.0.0/16'), m('ip:198.18.7.')]).toEqual([true, false, true, true, false, true]);
    expect([m('ip=fd99:0:0:0:0:0:7:2', v6), m('dst=FD99::7:0/112', v6), m('ip=fd99::/16', v6), m('ip=198.18.0.0/15', v6), m('ip:fd99::7', v6)]).toEqual([true, true, true, false, true]);
    expect([m('ip:0.0.0.0/0'), m('ip=0.0.0.0/0', noFlow), m('ip!=198.18.7.2', noFlow)]).toEqual([true, false, true]);
  });

  it('port, sport, dport: a number or a range; a flow without ports has none', () => {
    expect([m('port=5301'), m('port=40001'), m('dport=40001'), m('sport=40001'), m('port=5300-5302'), m('port:5301'), m('port=53')]).toEqual([true, true, false, true, true, true, false]);
    expect([m('port=5301', noFlow), m('port!=5301', noFlow)]).toEqual([false, true]);
  });

  it('dns, netns, ifname, proto, and a bare word over all of them', () => {
    expect([m('dns=kube-dns.kube-system.svc.cluster.local'), m('dns=kube-dns.kube-system.svc.cluster.local.'), m('dns=*.svc.cluster.local'), m('dns:kube-system'), m('dns=kube-dns')]).toEqual([true, true, true, true, false]);
    expect([m('netns=4026532123'), m('netns=dtt12b'), m('netns:dtt'), m('netns=4026532'), m('ifname=dvb12'), m('proto=udp'), m('proto=tcp')]).toEqual([true, true, true, false, true, true, false]);
    expect([m('payments'), m('198.18.7'), m('DROP'), m('cluster.local'), m('dtt12'), m('nothing-like-it')]).toEqual([true, true, true, true, true, false]);
  });

  it('combines: and, or, not, parentheses', () => {
    expect(m('kind=netfilter_rule and port=5301')).toBe(true);
    expect(m('kind=netfilter_rule and port=5302')).toBe(false);
    expect(m('kind=no_socket or port=5301')).toBe(true);
    expect(m('not (kind=no_socket or port=5301)')).toBe(false);
    expect(m('ns=payments and not (reason=NO_SOCKET or family=neigh)')).toBe(true);
    expect(m('ns=payments and not (reason=NO_SOCKET or family=neigh)', v6)).toBe(false);
  });
});

describe('compileFilter: values are checked once, at their column', () => {
  const bad = (text: string) => {
    try {
      compileFilter(text);
    } catch (e) {
      if (e instanceof FilterError) return [e.col, e.why];
      throw e;
    }
    return 'compiled';
  };
  it('rejects what could only ever match nothing', () => {
    expect(bad('kind=x and ip=198.18.0.0/33')).toEqual([15, '"198.18.0.0/33" is not an IP address or CIDR (198.18.0.0/15, fd99::1)']);
    expect(bad('dst=10.0.0.256')).toEqual([5, '"10.0.0.256" is not an IP address or CIDR (198.18.0.0/15, fd99::1)']);
    expect(bad('ip:10.0.0.0/8/8')).toEqual([4, '"10.0.0.0/8/8" is not an IP address or CIDR (198.18.0.0/15, fd99::1)']);
    expect(bad('(port=99999)')).toEqual([7, '"99999" is not a port or a range of ports (53, 30000-32767)']);
    expect(bad('port=20-10')).toEqual([6, '"20-10" is not a port or a range of ports (53, 30000-32767)']);
    expect(bad('sport=http')).toEqual([7, '"http" is not a port or a range of ports (53, 30000-32767)']);
    expect(bad('family=netfiltr')).toEqual([8, 'unknown family "netfiltr" (neigh, conntrack, netfilter, martian, other)']);
    expect(bad('family:netf ip=fd99::1 port=1-65535')).toBe('compiled');
  });
});

// the laws a boolean language must keep, over random filters of real terms and random drops
const term = fc.constantFrom('kind=netfilter_rule', 'kind=no_socket', 'port=5301', 'dport=53', 'ip=198.18.0.0/15', 'ip=fd99::/16', 'pod=api-*', 'ns:pay', 'family!=other', 'dns:cluster', 'udp', 'NETFILTER');
const expr: fc.Arbitrary<string> = fc.letrec<{ e: string }>((tie) => ({
  e: fc.oneof(
    { depthSize: 'small' },
    term,
    tie('e').map((e) => `not (${e})`),
    fc.tuple(tie('e'), fc.constantFrom('and', 'or', ''), tie('e')).map(([a, op, b]) => `(${a}) ${op} (${b})`),
  ),
})).e;
const subject = fc.record({
  kind: fc.constantFrom('netfilter_rule', 'no_socket'),
  dport: fc.constantFrom(5301, 53, null),
  dst: fc.constantFrom('198.18.7.2', 'fd99::7:2', null),
  pod: fc.constantFrom('payments/api-1', null),
  names: fc.constantFrom([], ['a.cluster.local.']),
}).map((r): Subject => ({ ...base, ...r, namespace: r.pod ? 'payments' : null, sport: r.dport === null ? null : 40001 }));

describe('compileFilter, properties', () => {
  it('keeps not, De Morgan and the space-as-and', () => {
    fc.assert(
      fc.property(expr, expr, subject, (a, b, s) => {
        const e = (t: string) => m(t, s);
        expect(e(`not not (${a})`)).toBe(e(a));
        expect(e(`not ((${a}) and (${b}))`)).toBe(e(`not (${a}) or not (${b})`));
        expect(e(`(${a}) (${b})`)).toBe(e(a) && e(b));
        expect(e(`(${a}) or (${b})`)).toBe(e(a) || e(b));
      }),
      { numRuns: 400 },
    );
  });
});

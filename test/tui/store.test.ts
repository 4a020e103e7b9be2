/**
 * The store, from the recorded fixture (fixtures/drops.ndjson, made by fixtures/record.sh) and
 * from hand-made lines where a case needs numbers the lab cannot produce on demand (lost
 * events, a table at 97%, pods before attribution lands). Expected numbers were computed from
 * the fixture independently of the store (a plain sum over its drop lines).
 */
import { ruleDropLine } from '../helpers/lines.js';
import { describe, expect, it } from 'vitest';
import type { CountersLine, DropEvent, StatsLine, StreamLine } from '../../src/pipeline/events.js';
import { flowKeyOf, parseFilter, SPARK_SECONDS, TuiStore } from '../../src/tui/store.js';
import { formatFilter } from '../../src/pipeline/filter/index.js';
import type { GroupRow } from '../../src/tui/store.js';
import { fixtureLines, loadedStore } from './helpers.js';

const NETNS_B = 4026532528;
const rows = (g: GroupRow[]) => g.map((r) => [r.label, r.total, r.rate]);
const T0 = Date.parse('2026-11-24T10:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

function drop(o: Partial<DropEvent> & { at: number }): DropEvent {
  const { at, ...rest } = o;
  return ruleDropLine({ time: iso(at), ...rest });
}

function stats(lost: { ring_buffer: number; userspace: number }, at = T0): StatsLine {
  return {
    type: 'stats',
    time: iso(at),
    final: false,
    events: 10,
    folded: 0,
    lost: { ...lost, total: lost.ring_buffer + lost.userspace },
    decode_errors: 0,
    enrichment_failures: 0,
    counters_failures: 0,
    kernel: { drops: 133, suppressed: 0, by_reason: { NETFILTER_DROP: 133 } },
  };
}

describe('grouping the recorded stream', () => {
  it('groups by kind with exact totals, rates and first/last seen', () => {
    const s = loadedStore().snapshot();
    expect(s.groupBy).toBe('kind');
    expect(s.now).toBe(Date.parse('2026-11-24T09:52:41.875Z'));
    expect(s.total).toBe(281);
    expect(s.stats?.kernelDrops).toBe(281);
    expect(s.groups.map((g) => [g.label, g.family, g.total, g.rate, iso(g.first), iso(g.last)])).toEqual([
      ['netfilter_rule', 'netfilter', 264, 40.8, '2026-11-24T09:52:34.073Z', '2026-11-24T09:52:38.820Z'],
      ['martian_source', 'martian', 3, 0.6, '2026-11-24T09:52:39.998Z', '2026-11-24T09:52:39.999Z'],
      ['not_specified', 'other', 10, 0.4, '2026-11-24T09:52:33.561Z', '2026-11-24T09:52:38.169Z'],
      ['no_socket', 'other', 4, 0.4, '2026-11-24T09:52:33.928Z', '2026-11-24T09:52:39.965Z'],
    ]);
  });

  it('has a 60 s sparkline per group ending at the current second', () => {
    const g = loadedStore().snapshot().groups[0]!;
    expect(g.spark).toHaveLength(SPARK_SECONDS);
    // seconds -7..-3 before 09:52:41, as sent by record.sh: 10, 40, 90, 60, 20 (+1/5 from c)
    expect(g.spark.slice(50)).toEqual([0, 0, 12, 48, 108, 72, 24, 0, 0, 0]);
    expect(g.spark.slice(0, 50).every((n) => n === 0)).toBe(true);
  });

  it('groups by pod (the netns where none is known), flow (without the source port) and reason', () => {
    const store = loadedStore();
    store.setGroupBy('pod');
    // the senders are pods (attributed by source IP); the node's own IPv6 chatter has none
    expect(rows(store.snapshot().groups)).toEqual([
      ['shop/checkout-7f9c', 222, 34.2],
      ['payments/api-5d8b', 46, 7],
      [`netns ${NETNS_B}`, 13, 1],
    ]);
    store.setGroupBy('flow');
    expect(rows(store.snapshot().groups).slice(0, 4)).toEqual([
      ['udp 198.18.210.1 → 198.18.210.2:5301', 220, 34],
      ['udp 198.18.211.1 → 198.18.210.2:5301', 44, 6.8],
      ['udp 127.0.0.9 → 198.18.211.2:9999', 3, 0.6],
      ['icmpv6 fe80::4041:42ff:fed5:53b1 → ff02::2 type 133/0', 2, 0.2],
    ]);
    store.setGroupBy('reason');
    expect(rows(store.snapshot().groups)).toEqual([
      ['NETFILTER_DROP', 264, 40.8],
      ['IP_LOCALNET', 3, 0.6],
      ['NOT_SPECIFIED', 10, 0.4],
      ['NO_SOCKET', 4, 0.4],
    ]);
  });

  it('cycles group-by kind → pod → flow → reason → kind, selecting the top row each time', () => {
    const store = loadedStore();
    store.moveSelection(2);
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) {
      store.cycleGroupBy();
      const s = store.snapshot();
      seen.push(s.groupBy);
      expect(s.selected).toBe(0);
    }
    expect(seen).toEqual(['pod', 'flow', 'reason', 'kind']);
  });
});

describe('sorting', () => {
  it('sorts by rate, total, last seen, first seen and name', () => {
    const store = loadedStore();
    const order = () => store.snapshot().groups.map((g) => g.label);
    expect(order()).toEqual(['netfilter_rule', 'martian_source', 'not_specified', 'no_socket']);
    store.cycleSort();
    expect(store.snapshot().sortBy).toBe('total');
    expect(order()).toEqual(['netfilter_rule', 'not_specified', 'no_socket', 'martian_source']);
    store.cycleSort();
    expect(order()).toEqual(['martian_source', 'no_socket', 'netfilter_rule', 'not_specified']);
    store.cycleSort();
    expect(store.snapshot().sortBy).toBe('first');
    expect(order()).toEqual(['martian_source', 'netfilter_rule', 'no_socket', 'not_specified']);
    store.cycleSort();
    expect(order()).toEqual(['martian_source', 'netfilter_rule', 'no_socket', 'not_specified']);
    store.cycleSort();
    expect(store.snapshot().sortBy).toBe('rate');
  });

  it('follows the top row until the user moves the selection', () => {
    const store = new TuiStore();
    store.ingest(drop({ at: T0, kind: 'no_socket', family: 'other', reason: 'NO_SOCKET', count: 1 }));
    store.ingest(drop({ at: T0, count: 5 }));
    expect(store.snapshot().groups[store.snapshot().selected]!.label).toBe('netfilter_rule');
    store.moveSelection(1);
    store.ingest(drop({ at: T0, kind: 'no_socket', family: 'other', reason: 'NO_SOCKET', count: 9 }));
    const s = store.snapshot();
    expect([s.selected, s.groups[s.selected]!.label]).toEqual([0, 'no_socket']);
  });

  it('keeps the selection on the same group when the order changes', () => {
    const store = loadedStore();
    store.moveSelection(3);
    expect(store.snapshot().groups[store.snapshot().selected]!.label).toBe('no_socket');
    store.setSort('name');
    const s = store.snapshot();
    expect(s.selected).toBe(2);
    expect(s.groups[s.selected]!.label).toBe('no_socket');
  });
});

describe('filter', () => {
  it('parses fields, bare words and IPv6 addresses', () => {
    // the one filter language (src/pipeline/filter/): a space is an `and`
    expect(formatFilter(parseFilter('  pod:Web ns:kube-system  10.0.3.7 fe80::1 kind:neigh dns:payments '))).toBe(
      'pod:Web and ns:kube-system and 10.0.3.7 and fe80::1 and kind:neigh and dns:payments',
    );
  });

  it('filters drops, not groups: totals count only what matches', () => {
    const store = loadedStore();
    store.setFilter('ip:198.18.211.');
    let s = store.snapshot();
    // from c (198.18.211.1): 44 rule drops, the ARP-warming and the DNS datagram to closed ports; to c's side: 3 martians
    expect(rows(s.groups)).toEqual([
      ['netfilter_rule', 44, 6.8],
      ['martian_source', 3, 0.6],
      ['no_socket', 2, 0.2],
    ]);
    expect([s.shownTotal, s.hiddenDrops]).toEqual([49, 232]);
    store.setFilter('kind:martian');
    expect(rows(store.snapshot().groups)).toEqual([['martian_source', 3, 0.6]]);
    store.setFilter('reason:no_sock ip:198.18.210.1');
    expect(rows(store.snapshot().groups)).toEqual([['no_socket', 2, 0.2]]);
    store.setFilter('dns:payments');
    s = store.snapshot();
    expect(rows(s.groups)).toEqual([['no_socket', 2, 0.4]]);
    expect(s.detail?.names).toEqual(['api.payments.svc.cluster.local. A']);
    // a bare word: the pod namespace "payments" and the DNS name alike
    store.setFilter('payments');
    expect(rows(store.snapshot().groups)).toEqual([
      ['netfilter_rule', 44, 6.8],
      ['no_socket', 3, 0.4],
    ]);
    store.setFilter(`netns:${NETNS_B} fe80::4041`);
    expect(rows(store.snapshot().groups)).toEqual([['not_specified', 4, 0.2]]);
    store.setFilter('nothing-matches-this');
    s = store.snapshot();
    expect([s.groups.length, s.selected, s.detail, s.hiddenDrops]).toEqual([0, -1, null, 281]);
  });

  it('speaks the stream\'s language: and/or/not, =, CIDR and ports; a half-typed filter keeps the last one', () => {
    const store = loadedStore();
    store.setFilter('ip=198.18.211.0/24 and not (kind=martian_source or reason=NO_SOCKET)');
    expect(rows(store.snapshot().groups)).toEqual([['netfilter_rule', 44, 6.8]]);
    store.setFilter('kind=martian_source or kind=no_socket and ip=198.18.211.1');
    expect(rows(store.snapshot().groups)).toEqual([
      ['martian_source', 3, 0.6],
      ['no_socket', 2, 0.2],
    ]);
    expect(store.filterError).toBeNull();
    // typed on: "kind=martian_source or (" does not parse yet, so the filter before it applies
    store.setFilter('kind=martian_source or (');
    expect(rows(store.snapshot().groups)).toEqual([
      ['martian_source', 3, 0.6],
      ['no_socket', 2, 0.2],
    ]);
    expect(store.filterError).toBe('expected a term, found the end (column 25)');
    expect(store.snapshot().filterError).toBe('expected a term, found the end (column 25)');
    store.setFilter('kind=martian_source or (port=53)');
    expect(store.filterError).toBeNull();
    expect(rows(store.snapshot().groups).map((r) => r[0])).toContain('martian_source');
  });

  it('filters on pod name and namespace', () => {
    const store = new TuiStore();
    store.ingest(drop({ at: T0, pod: { namespace: 'payments', name: 'api-7d9f', uid: 'u1' }, count: 5 }));
    store.ingest(drop({ at: T0, pod: { namespace: 'kube-system', name: 'coredns-1', uid: 'u2' }, count: 7, kind: 'conntrack_insert_failed', family: 'conntrack' }));
    store.setGroupBy('pod');
    store.setFilter('ns:kube');
    expect(rows(store.snapshot().groups)).toEqual([['kube-system/coredns-1', 7, 0]]);
    store.setFilter('pod:api');
    expect(rows(store.snapshot().groups)).toEqual([['payments/api-7d9f', 5, 0]]);
    store.setFilter('conntrack');
    expect(rows(store.snapshot().groups)).toEqual([['kube-system/coredns-1', 7, 0]]);
  });

  it('applies as it is typed; esc goes back to the filter from before, enter keeps it', () => {
    const store = loadedStore();
    store.setFilter('kind:net');
    store.editFilter();
    store.typeFilter('x');
    expect(store.snapshot().filter).toBe('kind:netx');
    expect(store.snapshot().groups).toEqual([]);
    store.cancelFilter();
    expect([store.snapshot().filter, store.snapshot().editing]).toEqual(['kind:net', null]);
    store.editFilter();
    store.backspaceFilter();
    store.backspaceFilter();
    store.backspaceFilter();
    store.typeFilter('mar');
    store.commitFilter();
    const s = store.snapshot();
    expect([s.filter, s.editing, s.groups.map((g) => g.label)]).toEqual(['kind:mar', null, ['martian_source']]);
  });
});

describe('rates, sparklines and the clock', () => {
  it('rates are drops in the last 5 whole seconds / 5; the sparkline moves with tick()', () => {
    const store = new TuiStore();
    store.ingest(drop({ at: T0 + 100, count: 10 }));
    store.ingest(drop({ at: T0 + 1_500, count: 20 }));
    store.ingest(drop({ at: T0 + 2_900, count: 5 }));
    let s = store.snapshot();
    // now is 10:00:02.9: whole seconds 0 and 1 are in the window, the current second (2) is not yet
    expect([s.now, s.rate, s.groups[0]!.rate, s.total]).toEqual([T0 + 2_900, 6, 6, 35]);
    expect(s.groups[0]!.spark.slice(-3)).toEqual([10, 20, 5]);
    store.tick(T0 + 5_000);
    s = store.snapshot();
    expect([s.rate, s.groups[0]!.spark.slice(-6)]).toEqual([7, [10, 20, 5, 0, 0, 0]]);
    store.tick(T0 + 7_000);
    expect(store.snapshot().rate).toBe(1);
    store.tick(T0 + 62_000);
    s = store.snapshot();
    expect([s.rate, s.groups[0]!.total, s.groups[0]!.spark.every((n) => n === 0)]).toEqual([0, 35, true]);
    // the clock never runs backwards
    store.tick(T0);
    expect(store.snapshot().now).toBe(T0 + 62_000);
  });

  it('counts folded drops (count > 1) and spans first/last with last_time', () => {
    const store = new TuiStore();
    store.ingest({ ...drop({ at: T0, count: 37 }), last_time: iso(T0 + 8) });
    const g = store.snapshot().groups[0]!;
    expect([g.total, g.first, g.last]).toEqual([37, T0, T0 + 8]);
  });

  it('uptime runs from the start line', () => {
    const store = loadedStore();
    expect(store.snapshot().uptimeMs).toBe(Date.parse('2026-11-24T09:52:41.875Z') - Date.parse('2026-11-24T09:52:33.627Z'));
  });
});

describe('lost events', () => {
  it('shows the latest stats line: lost, errors and exact kernel counts', () => {
    const store = new TuiStore();
    expect(store.snapshot().stats).toBeNull();
    store.ingest(stats({ ring_buffer: 120, userspace: 3 }));
    expect(store.snapshot().stats).toEqual({
      time: T0,
      final: false,
      events: 10,
      lost: { ringBuffer: 120, userspace: 3, total: 123 },
      decodeErrors: 0,
      enrichmentFailures: 0,
      countersFailures: 0,
      kernelDrops: 133,
      byReason: { NETFILTER_DROP: 133 },
      neighCreateFailed: null,
    });
  });

  it('reads an older stats line without the newer fields', () => {
    const store = new TuiStore();
    store.ingest({ type: 'stats', time: iso(T0), lost: { ring_buffer: 4, userspace: 1 } } as unknown as StreamLine);
    const st = store.snapshot().stats!;
    expect([st.lost, st.kernelDrops, st.countersFailures]).toEqual([{ ringBuffer: 4, userspace: 1, total: 5 }, null, 0]);
  });

  it('are kept through clear and shown live while paused', () => {
    const store = loadedStore();
    store.togglePause();
    store.ingest(stats({ ring_buffer: 7, userspace: 0 }, Date.parse('2026-11-24T09:52:42Z')));
    expect(store.snapshot().stats?.lost.total).toBe(7);
    store.clear();
    expect(store.snapshot().stats?.lost.total).toBe(7);
  });
});

describe('pause and clear', () => {
  it('pause freezes the groups but keeps counting underneath', () => {
    const store = new TuiStore();
    store.ingest(drop({ at: T0, count: 3 }));
    store.togglePause();
    store.ingest(drop({ at: T0 + 10, count: 4 }));
    store.ingest(drop({ at: T0 + 20, count: 1, kind: 'no_socket', family: 'other', reason: 'NO_SOCKET' }));
    let s = store.snapshot();
    expect([s.paused, s.newWhilePaused, rows(s.groups)]).toEqual([true, 5, [['netfilter_rule', 3, 0]]]);
    store.togglePause();
    s = store.snapshot();
    expect([s.paused, s.newWhilePaused, s.total, s.groups.map((g) => g.total)]).toEqual([false, 0, 8, [7, 1]]);
  });

  it('clear forgets groups and totals, keeps probes and table levels, and says when', () => {
    const store = loadedStore();
    store.clear();
    const s = store.snapshot();
    expect([s.groups, s.total, s.rate, s.clearedAt]).toEqual([[], 0, 0, Date.parse('2026-11-24T09:52:41.875Z')]);
    expect(s.start?.node).toBe('vm');
    expect(s.tables?.neigh.map((t) => t.label)).toEqual(['arp_cache ipv4', 'ndisc_cache ipv6']);
    store.ingest(drop({ at: Date.parse('2026-11-24T09:52:42Z'), count: 2 }));
    expect(rows(store.snapshot().groups)).toEqual([['netfilter_rule', 2, 0]]);
  });
});

describe('detail of the selected group', () => {
  it('has the explanation, hint, kernel location, pods, exact flows and DNS names', () => {
    const store = loadedStore();
    store.moveSelection(3);
    const d = store.snapshot().detail!;
    expect(d.label).toBe('no_socket');
    expect(d.kinds.map((k) => [k.kind, k.count])).toEqual([['no_socket', 4]]);
    expect(d.kinds[0]!.hint).toBe('see the kernel documentation of enum skb_drop_reason for NO_SOCKET');
    expect(d.reasons).toEqual([{ name: 'NO_SOCKET', count: 4 }]);
    expect(d.locations).toEqual([{ name: '__udp4_lib_rcv', count: 4 }]);
    expect(d.ifnames).toEqual([
      { name: 'dtub6d77d5', count: 2 },
      { name: 'dtud6d77d5', count: 2 },
    ]);
    expect(d.pods).toEqual([
      { name: 'payments/api-5d8b', count: 2 },
      { name: 'shop/checkout-7f9c', count: 2 },
    ]);
    // the newest drop's explanation: the DNS question it carried
    expect(d.kinds[0]!.explain).toBe(
      'DNS query for api.payments.svc.cluster.local. (A) dropped: the kernel dropped the packet with reason NO_SOCKET in the function shown in location',
    );
    expect(d.names).toEqual(['api.payments.svc.cluster.local. A']);
    expect(d.kernel).toEqual([{ name: 'NO_SOCKET', count: 4 }]);
    expect(d.flows.map((f) => [f.flow, f.count, iso(f.last)])).toEqual([
      ['udp 198.18.211.1:47359 → 198.18.211.2:53', 1, '2026-11-24T09:52:39.965Z'],
      ['udp 198.18.210.1:55625 → 198.18.210.2:53', 1, '2026-11-24T09:52:39.815Z'],
      ['udp 198.18.211.1:40999 → 198.18.211.2:9', 1, '2026-11-24T09:52:34.003Z'],
      ['udp 198.18.210.1:40999 → 198.18.210.2:9', 1, '2026-11-24T09:52:33.928Z'],
    ]);
  });

  it('brings the neighbour table and the failing next hops to a neighbour drop', () => {
    const store = new TuiStore();
    store.ingest(counters({ entries: 1024, gc_thresh3: 1024 }));
    store.ingest({
      ...drop({ at: T0, kind: 'neigh_table_full', family: 'neigh', reason: 'NEIGH_CREATEFAIL', location: 'ip_finish_output2', count: 312 }),
      neigh: { table: 'arp_cache', address: '10.0.9.1', entries: 1024, gc_thresh1: 128, gc_thresh2: 512, gc_thresh3: 1024 },
    });
    const d = store.snapshot().detail!;
    expect(d.nexthops).toEqual([{ name: '10.0.9.1', count: 312 }]);
    expect(d.related.map((t) => [t.label, t.used, t.limit, t.fill, t.warn])).toEqual([['arp_cache ipv4', 1024, 1024, 1, true]]);
  });
});

function counters(arp: { entries: number; gc_thresh3: number }): CountersLine {
  return {
    type: 'counters',
    version: 1,
    time: iso(T0),
    interval_s: 1,
    netns_self: 4026531840,
    neigh: [{ table: 'arp_cache', family: 'ipv4', entries: arp.entries, gc_thresh1: 128, gc_thresh2: 512, gc_thresh3: arp.gc_thresh3, fill: arp.entries / arp.gc_thresh3, stats: {}, rates: { table_fulls: 3 } }],
    conntrack: null,
    nic: [],
    warnings: [],
    unavailable: [],
    scan: { pids: 1, netns: 1, vanished: 0, denied: 0 },
    cost_ms: 1,
  };
}

describe('table levels from counters lines', () => {
  it('marks a table at 90% or more, not below', () => {
    const store = new TuiStore();
    store.ingest(counters({ entries: 922, gc_thresh3: 1024 }));
    expect(store.snapshot().tables?.neigh[0]).toEqual({
      label: 'arp_cache ipv4',
      used: 922,
      limit: 1024,
      fill: 922 / 1024,
      note: 'of gc_thresh3, gc_thresh1 128, gc_thresh2 512',
      rising: ['table_fulls 3.0/s'],
      warn: true,
    });
    // 921/1024 is 89.9%
    store.ingest(counters({ entries: 921, gc_thresh3: 1024 }));
    expect(store.snapshot().tables?.neigh[0]?.warn).toBe(false);
  });

  it('renders what it can from a counters line with missing or odd fields', () => {
    const store = new TuiStore();
    store.ingest({
      type: 'counters',
      time: 'not a time',
      neigh: [{ table: 'arp_cache', entries: 3 }, { entries: 'x' }, null],
      conntrack: { netns: [{ netns: 4026532001, count: 29, init: false, comm: 'coredns', pid: 812 }, { count: 'x' }], nf_conntrack_max: 30 },
      nic: [{ ifname: 'eth0', allowance: { conntrack_allowance_exceeded: 12, linklocal_allowance_exceeded: 'x' }, rates: { conntrack_allowance_exceeded: 2 } }],
    } as unknown as StreamLine);
    const t = store.snapshot().tables!;
    expect(t.time).toBeNull();
    expect(t.neigh).toEqual([{ label: 'arp_cache', used: 3, limit: null, fill: null, note: 'gc_thresh3 not visible', rising: [], warn: false }]);
    expect(t.conntrack?.map((c) => [c.label, c.used, c.limit, c.warn])).toEqual([['conntrack coredns[812]', 29, 30, true]]);
    expect(t.allowances).toEqual([{ ifname: 'eth0', driver: null, counter: 'conntrack_allowance_exceeded', total: 12, rate: 2, warn: true }]);
    expect([t.warnings, t.unavailable]).toEqual([[], []]);
  });

  it('names netns from counters lines in the pod grouping', () => {
    const store = new TuiStore();
    store.ingest(drop({ at: T0, netns: 4026532001 }));
    store.ingest({ ...counters({ entries: 1, gc_thresh3: 1024 }), conntrack: { nf_conntrack_max: 100, netns_total: 1, netns_idle: 0, netns: [{ netns: 4026532001, name: 'dtlab-a', pid: null, comm: null, self: false, init: false, count: 1, fill: 0.01, stats: {}, rates: null }] } });
    store.setGroupBy('pod');
    expect(store.snapshot().groups.map((g) => g.label)).toEqual(['netns 4026532001 (dtlab-a)']);
    store.setFilter('dtlab');
    expect(store.snapshot().groups).toHaveLength(1);
  });
});

describe('bounds', () => {
  it('folds drops of new keys into one (other) leaf per kind beyond maxLeaves, and says so', () => {
    const store = new TuiStore({ maxLeaves: 2 });
    for (let i = 0; i < 5; i++) store.ingest(drop({ at: T0, flow: { proto: 'udp', src: `10.0.0.${i}`, dst: '10.0.9.1', sport: 1, dport: 53 }, count: 2 }));
    store.setGroupBy('flow');
    const s = store.snapshot();
    expect(rows(s.groups)).toEqual([
      ['(other flows)', 6, 0],
      ['udp 10.0.0.0 → 10.0.9.1:53', 2, 0],
      ['udp 10.0.0.1 → 10.0.9.1:53', 2, 0],
    ]);
    expect([s.foldedDrops, s.total]).toEqual([6, 10]);
  });

  it('keys flows without the source port, IPv6 in brackets, ICMP by type/code', () => {
    expect(flowKeyOf({ proto: 'tcp', src: 'fd99::1', dst: 'fd99::2', sport: 5, dport: 443 })).toBe('tcp fd99::1 → [fd99::2]:443');
    expect(flowKeyOf({ proto: 'icmp', src: '10.0.0.1', dst: '10.0.0.2', type: 8, code: 0 })).toBe('icmp 10.0.0.1 → 10.0.0.2 type 8/0');
    expect(flowKeyOf(null)).toBeNull();
  });

  it('counts lines of unknown types instead of dropping them silently', () => {
    const store = new TuiStore();
    store.ingest({ type: 'future' } as unknown as StreamLine);
    store.ignore(2);
    expect(store.snapshot().ignoredLines).toBe(3);
  });

  it('lets an idle screen rest: ticks redraw while drops are recent, then once a minute', () => {
    const store = new TuiStore();
    store.ingest({ type: 'start', schema: 1, time: iso(T0), version: '0', node: 'n', kernel: 'k', filter: { netns: null }, probes: [], attribution: 'none' });
    store.ingest(drop({ at: T0 + 70_000 }));
    const redraws: number[] = [];
    store.subscribe(() => redraws.push(store.snapshot().now! - T0));
    for (let t = 71_000; t <= 300_000; t += 1000) store.tick(T0 + t);
    // each second until the drop left the sparkline and the rate window (66 s), then per minute
    expect(redraws.filter((t) => t > 136_000)).toEqual([180_000, 240_000, 300_000]);
    expect(redraws.filter((t) => t <= 136_000)).toHaveLength(66);
    // a stats line that says nothing new redraws nothing
    const before = redraws.length;
    store.ingest(stats({ ring_buffer: 0, userspace: 0 }, T0 + 300_500));
    store.ingest(stats({ ring_buffer: 0, userspace: 0 }, T0 + 302_500));
    expect(redraws.length).toBe(before + 1);
  });

  it('notifies listeners: keys urgently, data lazily', () => {
    const store = new TuiStore();
    const seen: boolean[] = [];
    const off = store.subscribe((urgent) => seen.push(urgent));
    store.ingest(drop({ at: T0 }));
    store.cycleSort();
    store.tick(T0 + 10); // same second: nothing to redraw
    store.tick(T0 + 1000);
    off();
    store.ingest(drop({ at: T0 }));
    expect(seen).toEqual([false, true, false]);
  });
});

it('the fixture is what record.sh wrote: one start line, then drops, stats and counters lines', () => {
  const lines = fixtureLines();
  expect(lines[0]?.type).toBe('start');
  expect(lines.filter((l) => l.type === 'drop')).toHaveLength(187);
});

/**
 * Issue 18's neighbour and noise rules, without a kernel: packets freed by a failed neighbour
 * resolution are neigh_resolution_failed whatever reason the kernel gave them; a full table
 * just before is named as the cause (from drops of the same netns, or the host sample); the
 * routine drops of every node are marked benign, and nothing else is.
 */
import { describe, expect, it } from 'vitest';
import { benignWhy } from '../../src/pipeline/benign.js';
import { classify } from '../../src/pipeline/classify.js';
import type { RawDrop } from '../../src/pipeline/decode.js';
import { explain } from '../../src/pipeline/explain.js';
import { NeighPressure, OVERFLOW_WINDOW_MS, neighTableOf } from '../../src/pipeline/neigh-pressure.js';
import type { CountersLine } from '../../src/host/counters-line.js';

const at = (reason: string, location: string, src: string | null = 'fd99::1', dst: string | null = 'fd99::2:0:7') =>
  classify({ reason, location, src, dst });

function rawDrop(o: Partial<RawDrop> = {}): RawDrop {
  return {
    monoDeltaNs: 0,
    location: 0n,
    locationLow: 0,
    reason: 2,
    netns: 4026532238,
    ifindex: 2,
    ifname: 'dtv0',
    l3Proto: 0x86dd,
    l4Proto: 17,
    src: 'fd99::1',
    dst: 'fd99::2:0:7',
    sport: 40000,
    dport: 9,
    icmpType: null,
    icmpCode: null,
    pktLen: 100,
    flags: 0,
    probe: 1,
    ctFlags: 0,
    martianConf: 0,
    rpFilter: 0,
    neigh: null,
    payload: null,
    record: null,
    at: 0,
    ...o,
  } as RawDrop;
}

const sysctl = (k: string) => ({ 'net.ipv6.neigh.default.gc_thresh3': 1024, 'net.ipv6.neigh.default.gc_thresh2': 512, 'net.ipv4.neigh.default.gc_thresh3': 1024, 'net.ipv4.neigh.default.gc_thresh2': 512 })[k] ?? null;

describe('packets of a failed neighbour resolution', () => {
  it('are neigh_resolution_failed when freed at neigh_invalidate or an error_report, even with NOT_SPECIFIED', () => {
    const unreasoned = {
      family: 'neigh',
      kind: 'neigh_resolution_failed',
      evidence: ['freed where a failed neighbour entry drops the packets queued on it (neigh_invalidate); the kernel gives no reason there'],
    };
    expect(at('NOT_SPECIFIED', 'neigh_invalidate')).toEqual(unreasoned);
    expect(at('NOT_SPECIFIED', 'ndisc_error_report')).toEqual(unreasoned);
    expect(at('NOT_SPECIFIED', 'arp_error_report', '198.18.0.1', '198.18.2.2')).toEqual(unreasoned);
    // IPv4 (and IPv6's own purge) say so themselves
    expect(at('NEIGH_FAILED', 'neigh_invalidate')).toEqual({ family: 'neigh', kind: 'neigh_resolution_failed' });
  });

  it('leave other places and reasons as they were', () => {
    // on old kernels NOT_SPECIFIED there is a failed entry or a full queue: not decided here
    expect(at('NOT_SPECIFIED', '__neigh_event_send')).toEqual({ family: 'other', kind: 'not_specified' });
    expect(at('NOT_SPECIFIED', 'ip6_mc_input')).toEqual({ family: 'other', kind: 'not_specified' });
    expect(at('NEIGH_QUEUEFULL', 'neigh_invalidate')).toEqual({ family: 'neigh', kind: 'neigh_queue_full' });
    expect(at('NO_SOCKET', 'neigh_invalidate')).toEqual({ family: 'other', kind: 'no_socket' });
  });

  it('name the destination as the neighbour address, and the hook address when there is one', () => {
    const c = at('NOT_SPECIFIED', 'neigh_invalidate');
    const x = explain(c, rawDrop(), 'NOT_SPECIFIED', sysctl, 'neigh_invalidate');
    expect(x.neigh).toEqual({ table: 'ndisc_cache', address: 'fd99::2:0:7', entries: null, gc_thresh1: null, gc_thresh2: 512, gc_thresh3: 1024 });
    expect(x.explain).toBe('the next hop for fd99::2:0:7 did not answer neighbour solicitation: packets waiting for it were dropped');
    const hooked = explain(c, rawDrop({ neigh: { family: 10, entries: 3, key: 'fd99::9' } }), 'NOT_SPECIFIED', sysctl, 'neigh_invalidate');
    expect(hooked.neigh?.address).toBe('fd99::9');
  });

  it('say the overflow is why when the table was full just before', () => {
    const c = at('NEIGH_FAILED', 'neigh_invalidate', '198.18.0.1', '198.18.2.2');
    const d = rawDrop({ l3Proto: 0x0800, src: '198.18.0.1', dst: '198.18.2.2' });
    const x = explain(c, d, 'NEIGH_FAILED', sysctl, 'neigh_invalidate', { source: 'drops', seconds_before: 3 });
    expect(x.explain).toBe(
      'resolution of 198.18.2.2 failed (no answer to ARP) and the packets waiting for it were dropped; ' +
        'the neighbour table arp_cache was full 3 s before (neigh_table_full drops in this netns, gc_thresh3=1024): the overflow is why',
    );
    expect(x.hint).toBe(
      'raise net.ipv4.neigh.default.gc_thresh3 (now 1024) and gc_thresh2 (now 512), or cut the number of neighbours on this node (ip -s neigh; cat /proc/net/stat/arp_cache)',
    );
    expect(x.neigh).toEqual({
      table: 'arp_cache',
      address: '198.18.2.2',
      entries: null,
      gc_thresh1: null,
      gc_thresh2: 512,
      gc_thresh3: 1024,
      overflow: { source: 'drops', seconds_before: 3 },
    });
  });
});

describe('NeighPressure', () => {
  const counters = (table: string, fill: number | null, tableFulls: number | null): CountersLine =>
    ({ type: 'counters', neigh: [{ table, family: 'ipv6', entries: 0, gc_thresh1: null, gc_thresh2: null, gc_thresh3: null, fill, stats: {}, rates: tableFulls === null ? null : { table_fulls: tableFulls } }] }) as unknown as CountersLine;

  it('remembers neigh_table_full drops per netns and table, for the window only', () => {
    let now = 1_000_000;
    const p = new NeighPressure(() => now);
    p.noteFull(7, 'ndisc_cache');
    now += 3_400;
    expect(p.recent(7, 'ndisc_cache')).toEqual({ source: 'drops', seconds_before: 3 });
    // another netns, another table: not this one's overflow
    expect(p.recent(8, 'ndisc_cache')).toBeUndefined();
    expect(p.recent(7, 'arp_cache')).toBeUndefined();
    now += OVERFLOW_WINDOW_MS;
    expect(p.recent(7, 'ndisc_cache')).toBeUndefined();
  });

  it('takes the host sample: a table at gc_thresh3 or its table_fulls rising, for any netns', () => {
    let now = 5_000;
    const p = new NeighPressure(() => now);
    p.noteCounters(counters('arp_cache', 0.99, 0));
    p.noteCounters(counters('arp_cache', null, null));
    expect(p.recent(1, 'arp_cache')).toBeUndefined();
    p.noteCounters(counters('arp_cache', 1, 0));
    expect(p.recent(1, 'arp_cache')).toEqual({ source: 'counters', seconds_before: 0 });
    p.noteCounters(counters('ndisc_cache', 0.2, 12.5));
    now += 2_000;
    expect(p.recent(99, 'ndisc_cache')).toEqual({ source: 'counters', seconds_before: 2 });
    // this netns' own drops are the closer witness
    p.noteFull(99, 'ndisc_cache');
    expect(p.recent(99, 'ndisc_cache')).toEqual({ source: 'drops', seconds_before: 0 });
  });

  it('picks the table from the neighbour hook, else the packet', () => {
    expect(neighTableOf(rawDrop())).toBe('ndisc_cache');
    expect(neighTableOf(rawDrop({ l3Proto: 0x0800 }))).toBe('arp_cache');
    expect(neighTableOf(rawDrop({ l3Proto: 0x86dd, neigh: { family: 2, entries: 1, key: '198.18.0.9' } }))).toBe('arp_cache');
  });
});

describe('benign drops', () => {
  it('marks the routine ones with why', () => {
    expect(benignWhy('NOT_SPECIFIED', 'ip6_mc_input')).toBe(
      'IPv6 multicast to a group no socket on this interface joined (MLD reports, router solicitations): every IPv6 link carries it',
    );
    for (const where of ['skb_queue_purge_reason', 'sk_stream_kill_queues']) {
      expect(benignWhy('QUEUE_PURGE', where)).toBe('a queue freed in bulk because its owner went away (a device removed, a socket closed): teardown, not a failure');
    }
    expect(benignWhy('OTHERHOST', 'ip_rcv_core')).toMatch(/^a frame for another host seen because the interface is promiscuous/);
    expect(benignWhy('IPV6_NDISC_NS_OTHERHOST', 'ndisc_recv_ns')).toMatch(/^a neighbour solicitation for another host's address/);
  });

  it('on a kernel without drop reasons (reason null), goes by the place alone', () => {
    expect(benignWhy(null, 'ip6_mc_input')).toBe(benignWhy('NOT_SPECIFIED', 'ip6_mc_input'));
    expect(benignWhy(null, 'skb_queue_purge_reason')).toBeNull();
    expect(benignWhy(null, 'neigh_invalidate')).toBeNull();
  });

  it('leaves everything else unmarked, the same reason elsewhere included', () => {
    expect(benignWhy('NOT_SPECIFIED', 'neigh_invalidate')).toBeNull();
    expect(benignWhy('NOT_SPECIFIED', 'ip6_mc_input.cold')).toBeNull();
    expect(benignWhy('IP_INNOROUTES', 'ip6_mc_input')).toBeNull();
    for (const r of ['NEIGH_CREATEFAIL', 'NEIGH_FAILED', 'NETFILTER_DROP', 'NO_SOCKET', 'TCP_CSUM', 'IP_RPFILTER', 'QDISC_DROP']) {
      expect(benignWhy(r, 'anywhere')).toBeNull();
    }
  });
});

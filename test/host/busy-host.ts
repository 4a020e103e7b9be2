/** A node with many busy netns, as HostSnapshots (no /proc): for the counters line splitting tests. */
import type { ConntrackNetnsSample, HostSnapshot, NicSample } from '../../src/host/sampler.js';

// the columns of /proc/net/stat/nf_conntrack on 6.18, but entries
export const CT_COLUMNS = ['clashres', 'found', 'new', 'invalid', 'ignore', 'delete', 'chainlength', 'insert', 'insert_failed', 'drop', 'early_drop', 'icmp_error', 'expect_new', 'expect_create', 'expect_delete', 'search_restart'];
export const FIRST_INODE = 4026532000;

/** A pod's netns as kubelet names them, with busy counters: ~800 bytes as a line entry. */
export function netns(i: number, bump = 0): ConntrackNetnsSample {
  const stats = Object.fromEntries(CT_COLUMNS.map((c, k) => [c, 1_000_000 + i * 997 + k * 131 + bump]));
  const rates = Object.fromEntries(CT_COLUMNS.map((c, k) => [c, k === 1 ? 12.345 + bump : 0]));
  return {
    netns: FIRST_INODE + i,
    name: `cni-${i.toString(16).padStart(8, '0')}-5e2a-4c1f-9b7d-0242ac120002`,
    pid: 100_000 + i,
    comm: 'envoy',
    self: false,
    init: false,
    count: 40 + i + bump,
    fill: (40 + i + bump) / 262144,
    stats,
    rates,
  };
}

export function nic(ifname: string, counters: number, netnsInode: number | null = null): NicSample {
  const stats = Object.fromEntries(Array.from({ length: counters }, (_, k) => [`rx_queue_${k >> 3}_${['packets', 'bytes', 'drops', 'xdp_redirect', 'csum_err', 'page_alloc_fail', 'wake', 'kicks'][k & 7]}`, 123_456_789 + k]));
  return {
    ifname,
    netns: netnsInode,
    driver: 'mlx5_core',
    virtual: false,
    stats,
    allowance: {},
    rates: Object.fromEntries(Object.keys(stats).map((k) => [k, 1.5])),
  };
}

export function snapshot(o: { netns: ConntrackNetnsSample[]; nics?: NicSample[]; warnings?: string[]; second?: number; conntrack?: boolean }): HostSnapshot {
  const arp = Object.fromEntries(['allocs', 'destroys', 'hash_grows', 'lookups', 'hits', 'res_failed', 'rcv_probes_mcast', 'rcv_probes_ucast', 'periodic_gc_runs', 'forced_gc_runs', 'unresolved_discards', 'table_fulls'].map((c) => [c, 7]));
  return {
    time: new Date(Date.UTC(2026, 11, 5, 9, 0, o.second ?? 0)),
    intervalS: o.second === undefined ? null : 5,
    selfNetns: 4026531833,
    neigh: (['arp_cache', 'ndisc_cache'] as const).map((table) => ({
      table,
      family: table === 'arp_cache' ? ('ipv4' as const) : ('ipv6' as const),
      entries: 12,
      gcThresh1: 128,
      gcThresh2: 512,
      gcThresh3: 1024,
      fill: 12 / 1024,
      stats: arp,
      rates: null,
    })),
    conntrack: o.conntrack === false ? null : { max: 262144, netns: o.netns },
    nics: o.nics ?? [nic('eth0', 16)],
    warnings: o.warnings ?? [],
    unavailable: [],
    scan: { pids: 900, netns: o.netns.length, vanished: 0, denied: 0 },
    costMs: 41.5,
  };
}

export const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => i + from);


/**
 * The `counters` line of the NDJSON stream, built from one HostSnapshot.
 */
import type { ConntrackNetnsSample, HostSnapshot, NicSample, Rates } from './sampler.js';

/** Bumped when a field of the counters line is renamed or changes meaning. */
export const COUNTERS_LINE_VERSION = 2;

/** JSON-safe shape of the line; see toCountersLine for what each field means. */
export interface CountersLine {
  type: 'counters';
  version: number;
  /**
   * The host sample this line is part of, 1, 2, ... (src/host/counters-split.ts). This and the
   * next three are always written since version 2; a version 1 line is a whole full sample.
   */
  sample?: number;
  /** This line is `part` of the `parts` lines of its sample, from 1. */
  part?: number;
  parts?: number;
  /** true: the sample lists every netns; false: only those that changed, and `conntrack.gone`. */
  full?: boolean;
  time: string;
  interval_s: number | null;
  netns_self: number | null;
  neigh: {
    table: string;
    family: string;
    entries: number;
    gc_thresh1: number | null;
    gc_thresh2: number | null;
    gc_thresh3: number | null;
    fill: number | null;
    stats: Record<string, number>;
    rates: Rates | null;
  }[];
  conntrack: {
    nf_conntrack_max: number | null;
    netns_total: number;
    netns_idle: number;
    netns: ConntrackNetnsSample[];
    /** Inodes of netns listed before and no more (left, or idle again); empty in a full sample; absent in version 1. */
    gone?: number[];
  } | null;
  nic: NicSample[];
  warnings: string[];
  unavailable: string[];
  scan: { pids: number; netns: number; vanished: number; denied: number };
  cost_ms: number;
}

export interface CountersLineOptions {
  /**
   * Also list netns whose conntrack count and statistics are all zero. Off by default: on a
   * node with hundreds of pods most netns never load conntrack, and listing them all would
   * bury the few that matter; `netns_total` and `netns_idle` still count them.
   */
  includeIdleNetns?: boolean;
}

/**
 * `{"type":"counters", ...}`: host table fill levels and NIC counters. Plain JSON (numbers,
 * strings, booleans, null); names are the kernel's and the drivers' own.
 *
 * - `type`: `"counters"`; `version`: layout version of this line (2).
 * - `sample`, `part`, `parts`, `full`, `conntrack.gone`: how a sample is cut into lines under
 *   16 KiB and sent as changes (src/host/counters-split.ts); this function makes the one whole
 *   line of a sample (`part` 1 of 1, full), the splitter cuts it.
 * - `time`: ISO-8601 UTC time of the sample; `interval_s`: seconds since the previous sample
 *   (null on the first, and then every `rates` is null).
 * - `netns_self`: inode of the netns droptrace reads from.
 * - `neigh[]`: one per neighbour table, shared by all netns:
 *   `table` (`arp_cache` | `ndisc_cache`), `family` (`ipv4` | `ipv6`), `entries`,
 *   `gc_thresh1`, `gc_thresh2`, `gc_thresh3` (null when not visible), `fill` (entries /
 *   gc_thresh3, or null), `stats` (every other column of /proc/net/stat/<table> summed over
 *   CPUs: `allocs`, `destroys`, `hash_grows`, `lookups`, `hits`, `res_failed`,
 *   `rcv_probes_mcast`, `rcv_probes_ucast`, `periodic_gc_runs`, `forced_gc_runs`,
 *   `unresolved_discards`, `table_fulls`), `rates` (the same names, per second, or null).
 * - `conntrack`: null when the nf_conntrack module is not loaded, else
 *   `nf_conntrack_max` (global limit, or null), `netns_total` (netns seen), `netns_idle`
 *   (those left out for being all zero), and `netns[]`: `netns` (inode), `name` (under
 *   /run/netns, or null), `pid` and `comm` (a process in it, or null), `self`, `init` (the
 *   netns of pid 1), `count` (nf_conntrack_count), `fill` (count / nf_conntrack_max, or null),
 *   `stats` (every other column of /proc/net/stat/nf_conntrack summed over CPUs: `clashres`,
 *   `found`, `new`, `invalid`, `ignore`, `delete`, `chainlength`, `insert`, `insert_failed`,
 *   `drop`, `early_drop`, `icmp_error`, `expect_new`, `expect_create`, `expect_delete`,
 *   `search_restart` on 6.x), `rates` (per second, or null).
 * - `nic[]`: `ifname`, `netns` (inode), `driver` (or null), `virtual` (or null when unknown),
 *   `stats` (every `ethtool -S` counter), `allowance` (the subset `bw_in_allowance_exceeded`,
 *   `bw_out_allowance_exceeded`, `pps_allowance_exceeded`, `conntrack_allowance_exceeded`,
 *   `linklocal_allowance_exceeded`, `conntrack_allowance_available` that the device has),
 *   `rates` (per second, for counters only, or null).
 * - `warnings[]`: one line each, e.g. a table at 90% of its limit or an allowance counter rising.
 * - `unavailable[]`: what could not be read and why.
 * - `scan`: `pids` looked at, `netns` found, `vanished` (exited mid-scan), `denied`;
 *   `cost_ms`: how long the sample took.
 *
 * Rates are rounded to 3 decimals, fills to 6. Counters above 2^53 lose precision (JSON numbers).
 */
export function toCountersLine(s: HostSnapshot, opts: CountersLineOptions = {}): CountersLine {
  const netns = s.conntrack?.netns ?? [];
  const shown = opts.includeIdleNetns === true ? netns : netns.filter((n) => n.count > 0 || Object.values(n.stats).some((v) => v > 0));
  return {
    type: 'counters',
    version: COUNTERS_LINE_VERSION,
    sample: 1,
    part: 1,
    parts: 1,
    full: true,
    time: s.time.toISOString(),
    interval_s: s.intervalS === null ? null : round(s.intervalS),
    netns_self: s.selfNetns,
    neigh: s.neigh.map((t) => ({
      table: t.table,
      family: t.family,
      entries: t.entries,
      gc_thresh1: t.gcThresh1,
      gc_thresh2: t.gcThresh2,
      gc_thresh3: t.gcThresh3,
      fill: t.fill === null ? null : round(t.fill, 6),
      stats: t.stats,
      rates: rates(t.rates),
    })),
    conntrack:
      s.conntrack === null
        ? null
        : {
            nf_conntrack_max: s.conntrack.max,
            netns_total: netns.length,
            netns_idle: netns.length - shown.length,
            netns: shown.map((n) => ({
              netns: n.netns,
              name: n.name,
              pid: n.pid,
              comm: n.comm,
              self: n.self,
              init: n.init,
              count: n.count,
              fill: n.fill === null ? null : round(n.fill, 6),
              stats: n.stats,
              rates: rates(n.rates),
            })),
            gone: [],
          },
    nic: s.nics.map((n) => ({
      ifname: n.ifname,
      netns: n.netns,
      driver: n.driver,
      virtual: n.virtual,
      stats: n.stats,
      allowance: n.allowance,
      rates: rates(n.rates),
    })),
    warnings: s.warnings,
    unavailable: s.unavailable,
    scan: { ...s.scan },
    cost_ms: round(s.costMs),
  };
}

function rates(r: Rates | null): Rates | null {
  if (r === null) return null;
  const out: Rates = {};
  for (const [k, v] of Object.entries(r)) out[k] = v === null ? null : round(v);
  return out;
}

function round(v: number, decimals = 3): number {
  const f = 10 ** decimals;
  return Math.round(v * f) / f;
}

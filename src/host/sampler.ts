/**
 * One call, one picture of the host's kernel tables: neighbour tables against gc_thresh3,
 * conntrack per netns against nf_conntrack_max, NIC counters; with per-second rates from the
 * previous call and warnings an engineer can act on.
 */
import type { ConntrackReading } from './conntrack.js';
import { readConntrack } from './conntrack.js';
import type { NicReading, NicSelection } from './ethtool.js';
import { ALLOWANCE_COUNTERS, NIC_GAUGES, allowanceOf, readNics } from './ethtool.js';
import type { Clock, HostIo } from './io.js';
import { nodeHostIo, systemClock } from './io.js';
import type { NeighReading, NeighTableName } from './neigh.js';
import { readNeighTables } from './neigh.js';
import { NetnsCache } from './netns-cache.js';
import type { NetnsScan } from './netns.js';
import { EnteredReads, describeNetns, scanNetns } from './netns.js';
import { ProcWalker, machineProcWalker } from './proc-walk.js';
import type { ProcStatTable } from './proc-stat.js';
import { TableCache, counterIncreases, tableTotals } from './proc-stat.js';

/** Per-second rate of each counter since the previous sample; null where it cannot be known. */
export type Rates = Record<string, number | null>;

export interface NeighTableSample {
  table: NeighTableName;
  family: 'ipv4' | 'ipv6';
  entries: number;
  gcThresh1: number | null;
  gcThresh2: number | null;
  gcThresh3: number | null;
  /** entries / gc_thresh3. */
  fill: number | null;
  /** Every other column of /proc/net/stat/<table>, summed over CPUs. */
  stats: Record<string, number>;
  rates: Rates | null;
}

export interface ConntrackNetnsSample {
  netns: number;
  name: string | null;
  /** A process in the netns (the lowest pid); null for a process-less named netns. */
  pid: number | null;
  comm: string | null;
  self: boolean;
  init: boolean;
  /** nf_conntrack_count of this netns. */
  count: number;
  /** count / nf_conntrack_max. */
  fill: number | null;
  /** Every other column of /proc/net/stat/nf_conntrack, summed over CPUs. */
  stats: Record<string, number>;
  rates: Rates | null;
}

export interface ConntrackSample {
  /** nf_conntrack_max: one global limit, held against each netns's count separately. */
  max: number | null;
  netns: ConntrackNetnsSample[];
}

export interface NicSample {
  ifname: string;
  netns: number | null;
  driver: string | null;
  virtual: boolean | null;
  stats: Record<string, number>;
  /** The cloud allowance counters this device has (ENA); empty elsewhere. */
  allowance: Record<string, number>;
  /** Rates of the counters in `stats` (levels such as peer_ifindex have none). */
  rates: Rates | null;
}

export interface HostSnapshot {
  time: Date;
  /** Seconds since the previous sample; null for the first. */
  intervalS: number | null;
  /** Inode of the netns droptrace reads from. */
  selfNetns: number | null;
  neigh: NeighTableSample[];
  /** Null when the nf_conntrack module is not loaded. */
  conntrack: ConntrackSample | null;
  nics: NicSample[];
  /** One line each, in an engineer's words. */
  warnings: string[];
  /** What could not be read and why, one line each. */
  unavailable: string[];
  scan: { pids: number; netns: number; vanished: number; denied: number };
  /** Wall time this sample took. */
  costMs: number;
}

export interface HostSamplerOptions {
  io?: HostIo;
  clock?: Clock;
  /** NICs of droptrace's own netns to read with ethtool -S; default `all` (every one but lo). */
  nics?: NicSelection;
  /** Also read ethtool -S of the devices inside every other netns (a spawn per device). */
  nicNetns?: boolean;
  /**
   * Run `ethtool -S` (a spawn per NIC, the largest cost of an idle sample) at most this often;
   * samples in between repeat the last counters, without rates. Default 15 s; 0: every sample.
   */
  nicEveryMs?: number;
  /** Walk /proc for every netns (conntrack is per netns); false reads only droptrace's own. */
  allNetns?: boolean;
  /** Where named netns are bind-mounted; default `/run/netns`. */
  netnsDirs?: readonly string[];
  /**
   * Walk /proc for the netns set at most this often (default 30 s; 0: every sample). In between,
   * the known netns are checked (one readlink each) and any change walks again at once; a new
   * netns shows up at the next walk.
   */
  netnsRescanMs?: number;
  /** Warn when a table is at least this full; default 0.9. */
  warnFill?: number;
  /**
   * Who walks /proc. Default: the machine's one walker, shared with pod discovery, when `io`
   * is the real machine; a walker of its own over `io` otherwise.
   */
  walker?: ProcWalker;
}

interface Previous {
  mono: number;
  neigh: Map<string, ProcStatTable>;
  /** Each netns's table and the monotonic ms it was read at (older than `mono` when reused). */
  conntrack: Map<number, { raw: ProcStatTable; at: number }>;
  /** Each NIC's counters and the monotonic ms they were read at (older than `mono` when reused). */
  nics: Map<string, { stats: Record<string, number>; at: number }>;
}

type Increases = Record<string, number | null>;

export class HostSampler {
  readonly #io: HostIo;
  readonly #clock: Clock;
  readonly #opts: HostSamplerOptions;
  readonly #netns: NetnsCache;
  readonly #entered: EnteredReads;
  /** Each netns's last nf_conntrack table: an idle netns's unchanged file is not parsed again. */
  readonly #conntrackTables = new TableCache<number>();
  #nicsRead: { at: number; readings: NicReading[] } | null = null;
  #prev: Previous | null = null;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(opts: HostSamplerOptions = {}) {
    this.#io = opts.io ?? nodeHostIo();
    this.#clock = opts.clock ?? systemClock;
    this.#opts = opts;
    const io = this.#io;
    const all = opts.allNetns !== false;
    const walker = opts.walker ?? (opts.io === undefined && opts.clock === undefined ? machineProcWalker() : new ProcWalker({ io, clock: this.#clock }));
    let previous: NetnsScan | null = null;
    const rescanMs = opts.netnsRescanMs ?? 30_000;
    // a netns without a process costs a spawn to read: as often as the netns set is walked
    this.#entered = new EnteredReads(this.#clock, rescanMs);
    this.#netns = new NetnsCache(io, this.#clock, {
      maxAgeMs: rescanMs,
      walk: async (notBefore) => {
        const walk = all ? await walker.get(notBefore) : undefined;
        previous = await scanNetns(io, { all, netnsDirs: opts.netnsDirs, previous, ...(walk ? { walk } : {}) });
        return previous;
      },
    });
    const warnFill = opts.warnFill ?? 0.9;
    if (!(warnFill > 0 && warnFill <= 1)) throw new RangeError(`warnFill must be in (0, 1], got ${warnFill}`);
  }

  /** Samples everything once. Calls are serialised: rates always compare consecutive samples. */
  sample(): Promise<HostSnapshot> {
    const next = this.#queue.then(() => this.#sample());
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #readNics(scan: NetnsScan, started: number, notes: string[]): Promise<NicsRead> {
    const every = this.#opts.nicEveryMs ?? 15_000;
    const kept = this.#nicsRead;
    if (kept !== null && started - kept.at < every) return kept;
    try {
      const readings = await readNics(this.#io, scan, { nics: this.#opts.nics, nicNetns: this.#opts.nicNetns }, notes);
      this.#nicsRead = { at: started, readings };
      return this.#nicsRead;
    } catch (err) {
      notes.push(`nic counters: ${err instanceof Error ? err.message : String(err)}`);
      return { at: started, readings: [] };
    }
  }

  async #sample(): Promise<HostSnapshot> {
    const io = this.#io;
    const started = this.#clock.monotonicMs();
    const time = this.#clock.now();
    const notes: string[] = [];
    const guard = async <T>(what: string, fallback: T, fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        notes.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
        return fallback;
      }
    };

    const emptyScan: NetnsScan = { netns: [], selfInode: null, pids: 0, vanished: 0, denied: 0 };
    const scan = await guard('netns scan', emptyScan, () => this.#netns.get());
    if (scan.denied > 0) {
      notes.push(`netns scan: ${scan.denied} processes could not be looked at (not root), so their netns may be missing`);
    }
    const present = new Set(scan.netns.map((h) => h.inode));
    this.#entered.keepOnly(present);
    this.#conntrackTables.keepOnly(present);
    const [neigh, conntrack, nics] = await Promise.all([
      guard('neighbour tables', [] as NeighReading[], () => readNeighTables(io, notes)),
      guard('conntrack', null as ConntrackReading | null, () => readConntrack(io, scan, notes, this.#entered, started, this.#conntrackTables)),
      this.#readNics(scan, started, notes),
    ]);

    const now = this.#clock.monotonicMs();
    const prev = this.#prev;
    const intervalS = prev !== null && now > prev.mono ? (now - prev.mono) / 1000 : null;
    const perSecond = (inc: Increases | null): Rates | null => {
      if (inc === null || intervalS === null) return null;
      const out: Rates = {};
      for (const [k, v] of Object.entries(inc)) out[k] = v === null ? null : v / intervalS;
      return out;
    };
    const perNetnsSecond = (inc: Increases | null, seconds: number | null): Rates | null => {
      if (inc === null || seconds === null) return null;
      const out: Rates = {};
      for (const [k, v] of Object.entries(inc)) out[k] = v === null ? null : v / seconds;
      return out;
    };
    const warnings: string[] = [];
    const warnFill = this.#opts.warnFill ?? 0.9;
    const ago = intervalS === null ? '' : `in the last ${intervalS.toFixed(1)} s`;

    const neighOut = neigh.map((t): NeighTableSample => {
      const before = prev?.neigh.get(t.table);
      const inc = before !== undefined && intervalS !== null ? counterIncreases(before, t.raw) : null;
      const fill = t.gcThresh3 !== null && t.gcThresh3 > 0 ? t.entries / t.gcThresh3 : null;
      if (fill !== null && fill >= warnFill) {
        warnings.push(
          `neighbour table ${t.table} at ${t.entries}/${t.gcThresh3} (${percent(t.entries, t.gcThresh3 ?? 0)} of gc_thresh3): new neighbours will fail (NEIGH_CREATEFAIL)`,
        );
      }
      const fulls = inc?.table_fulls;
      if (fulls != null && fulls > 0) {
        warnings.push(
          `neighbour table ${t.table} overflowed ${fulls} ${fulls === 1 ? 'time' : 'times'} ${ago} (table_fulls, gc_thresh3=${t.gcThresh3 ?? '?'}): new neighbours failed (NEIGH_CREATEFAIL)`,
        );
      }
      return {
        table: t.table,
        family: t.family,
        entries: t.entries,
        gcThresh1: t.gcThresh1,
        gcThresh2: t.gcThresh2,
        gcThresh3: t.gcThresh3,
        fill,
        stats: tableTotals(t.raw),
        rates: perSecond(inc),
      };
    });

    const conntrackOut: ConntrackSample | null =
      conntrack === null
        ? null
        : {
            max: conntrack.max,
            netns: conntrack.netns.map((c): ConntrackNetnsSample => {
              const h = c.netns;
              const before = prev?.conntrack.get(h.inode);
              // a reading reused from an earlier sample (a process-less netns) has no rate of its own
              const at = c.at === started ? now : c.at;
              const seconds = before !== undefined && at > before.at ? (at - before.at) / 1000 : null;
              const inc = before !== undefined && seconds !== null && intervalS !== null ? counterIncreases(before.raw, c.raw) : null;
              const netnsAgo = seconds === null ? ago : `in the last ${seconds.toFixed(1)} s`;
              const max = conntrack.max;
              const fill = max !== null && max > 0 ? c.count / max : null;
              const who = describeNetns(h);
              if (fill !== null && fill >= warnFill) {
                warnings.push(
                  `conntrack table of ${who} at ${c.count}/${max} (${percent(c.count, max ?? 0)} of nf_conntrack_max): new connections will be dropped (NETFILTER_DROP, "nf_conntrack: table full")`,
                );
              }
              const drop = inc?.drop;
              if (drop != null && drop > 0) {
                warnings.push(
                  `conntrack of ${who} dropped ${drop} ${drop === 1 ? 'packet' : 'packets'} ${netnsAgo} (drop, count ${c.count}/${max ?? '?'}): table full or insert failed`,
                );
              }
              const early = inc?.early_drop;
              if (early != null && early > 0) {
                warnings.push(
                  `conntrack of ${who} evicted ${early} unreplied ${early === 1 ? 'connection' : 'connections'} ${netnsAgo} (early_drop): the table is full`,
                );
              }
              const failed = inc?.insert_failed;
              if (failed != null && failed > 0) {
                warnings.push(
                  `conntrack of ${who} failed ${failed} ${failed === 1 ? 'insert' : 'inserts'} ${netnsAgo} (insert_failed): connections clashed on confirm, the race behind 5 s DNS timeouts`,
                );
              }
              return {
                netns: h.inode,
                name: h.name,
                pid: h.pids[0] ?? null,
                comm: h.comm,
                self: h.self,
                init: h.init,
                count: c.count,
                fill,
                stats: tableTotals(c.raw),
                rates: perNetnsSecond(inc, seconds),
              };
            }),
          };

    const nicsAt = nics.at === started ? now : nics.at;
    const nicsOut = nics.readings.map((n): NicSample => {
      const before = prev?.nics.get(nicKey(n));
      const seconds = before !== undefined && nicsAt > before.at ? (nicsAt - before.at) / 1000 : null;
      const inc = before !== undefined && seconds !== null && intervalS !== null ? nicIncreases(before.stats, n.stats) : null;
      for (const name of ALLOWANCE_COUNTERS) {
        const d = inc?.[name];
        if (d != null && d > 0) {
          warnings.push(
            `${n.ifname}${n.driver !== null ? ` (${n.driver})` : ''}: ${name} +${d} ${seconds === null ? ago : `in the last ${seconds.toFixed(1)} s`}: ${ALLOWANCE_MEANING[name]}`,
          );
        }
      }
      return {
        ifname: n.ifname,
        netns: n.netns,
        driver: n.driver,
        virtual: n.virtual,
        stats: n.stats,
        allowance: allowanceOf(n.stats),
        rates: perNetnsSecond(inc, seconds),
      };
    });

    this.#prev = {
      mono: now,
      neigh: new Map(neigh.map((t) => [t.table, t.raw])),
      conntrack: new Map(
        (conntrack?.netns ?? []).map((c) => [
          c.netns.inode,
          (c.at === started ? undefined : prev?.conntrack.get(c.netns.inode)) ?? { raw: c.raw, at: c.at === started ? now : c.at },
        ]),
      ),
      // a reused reading keeps the entry it was first stored with (read at that sample's end)
      nics: new Map(
        nics.readings.map((n) => [nicKey(n), (nics.at === started ? undefined : prev?.nics.get(nicKey(n))) ?? { stats: n.stats, at: nicsAt }]),
      ),
    };
    return {
      time,
      intervalS,
      selfNetns: scan.selfInode,
      neigh: neighOut,
      conntrack: conntrackOut,
      nics: nicsOut,
      warnings,
      unavailable: notes,
      scan: { pids: scan.pids, netns: scan.netns.length, vanished: scan.vanished, denied: scan.denied },
      costMs: this.#clock.monotonicMs() - started,
    };
  }
}

/** A sample's NIC readings: `at` is `started` when read now, else the time of the reused reading. */
interface NicsRead {
  at: number;
  readings: NicReading[];
}

const ALLOWANCE_MEANING: Record<(typeof ALLOWANCE_COUNTERS)[number], string> = {
  bw_in_allowance_exceeded: "packets queued or dropped by the cloud provider at the instance's inbound bandwidth limit",
  bw_out_allowance_exceeded: "packets queued or dropped by the cloud provider at the instance's outbound bandwidth limit",
  pps_allowance_exceeded: "packets queued or dropped by the cloud provider at the instance's packets-per-second limit",
  conntrack_allowance_exceeded:
    "packets dropped by the cloud provider at the instance's connection-tracking limit: new connections fail",
  linklocal_allowance_exceeded:
    'packets to link-local services (DNS resolver, instance metadata, time sync) dropped by the cloud provider at their packets-per-second limit',
};

function nicKey(n: { netns: number | null; ifname: string }): string {
  return `${n.netns ?? '?'}/${n.ifname}`;
}

/** Counters that went backwards (driver reset, device recreated under the same name) get null. */
function nicIncreases(before: Record<string, number>, now: Record<string, number>): Increases {
  const out: Increases = {};
  for (const [k, v] of Object.entries(now)) {
    if (NIC_GAUGES.has(k)) continue;
    const b = before[k];
    out[k] = b === undefined || v < b ? null : v - b;
  }
  return out;
}

/** Rounded, but never "100%" before the limit is really reached. */
function percent(value: number, limit: number): string {
  const p = Math.round((value / limit) * 100);
  return `${value < limit ? Math.min(p, 99) : p}%`;
}

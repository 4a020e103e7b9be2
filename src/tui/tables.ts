/**
 * A `counters` line (src/host/counters-line.ts) read tolerantly into what the tables panel
 * shows: a field that is missing or of the wrong type leaves out that one item, never the
 * whole panel, so an older or newer sampler still renders.
 */
import type { CountersLine } from '../pipeline/events.js';

/** Fill at or above this is shown in the warning colour with a `!`. */
export const WARN_FILL = 0.9;

export interface TableLevel {
  /** `arp_cache ipv4`, `conntrack host`, `conntrack dtlab-a` */
  label: string;
  used: number;
  limit: number | null;
  /** used / limit */
  fill: number | null;
  /** the limit's name (`gc_thresh3`, `nf_conntrack_max`) and other context, short */
  note: string;
  /** per-second rates worth seeing (`table_fulls 3.0/s`); empty when all are zero */
  rising: string[];
  warn: boolean;
}

export interface AllowanceLevel {
  ifname: string;
  driver: string | null;
  counter: string;
  total: number;
  /** per second since the previous sample; null on the first sample */
  rate: number | null;
  warn: boolean;
}

export interface Tables {
  time: number | null;
  neigh: TableLevel[];
  /** null: the nf_conntrack module is not loaded (or the line has no conntrack field) */
  conntrack: TableLevel[] | null;
  /** netns left out for being idle (all zero) */
  conntrackIdle: number;
  allowances: AllowanceLevel[];
  /** NICs read; allowance counters exist on cloud NICs (ENA) only */
  nics: number;
  warnings: string[];
  unavailable: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const strs = (v: unknown): string[] => arr(v).filter((x): x is string => typeof x === 'string');

function rising(rates: unknown, names: readonly string[]): string[] {
  if (!isObj(rates)) return [];
  const out: string[] = [];
  for (const n of names) {
    const r = num(rates[n]);
    if (r !== null && r > 0) out.push(`${n} ${r < 10 ? r.toFixed(1) : Math.round(r)}/s`);
  }
  return out;
}

const NEIGH_RISING = ['table_fulls', 'forced_gc_runs', 'unresolved_discards', 'res_failed'] as const;
const CONNTRACK_RISING = ['drop', 'early_drop', 'insert_failed', 'invalid'] as const;

function fillOf(used: number, limit: number | null, given: unknown): number | null {
  const f = num(given);
  if (f !== null) return f;
  return limit !== null && limit > 0 ? used / limit : null;
}

function neighLevel(t: unknown): TableLevel | null {
  if (!isObj(t)) return null;
  const table = str(t.table);
  const used = num(t.entries);
  if (table === null || used === null) return null;
  const g1 = num(t.gc_thresh1);
  const g2 = num(t.gc_thresh2);
  const g3 = num(t.gc_thresh3);
  const fill = fillOf(used, g3, t.fill);
  const family = str(t.family);
  return {
    label: family ? `${table} ${family}` : table,
    used,
    limit: g3,
    fill,
    note: g3 === null ? 'gc_thresh3 not visible' : `of gc_thresh3, gc_thresh1 ${g1 ?? '?'}, gc_thresh2 ${g2 ?? '?'}`,
    rising: rising(t.rates, NEIGH_RISING),
    warn: fill !== null && fill >= WARN_FILL,
  };
}

function conntrackLevel(n: unknown, max: number | null): TableLevel | null {
  if (!isObj(n)) return null;
  const used = num(n.count);
  if (used === null) return null;
  const name = str(n.name);
  const comm = str(n.comm);
  const pid = num(n.pid);
  const inode = num(n.netns);
  const who =
    n.init === true ? 'host' : name ?? (comm !== null ? `${comm}[${pid ?? '?'}]` : inode !== null ? `netns ${inode}` : 'netns ?');
  const fill = fillOf(used, max, n.fill);
  return {
    label: `conntrack ${who}`,
    used,
    limit: max,
    fill,
    note: max === null ? 'nf_conntrack_max not visible' : 'of nf_conntrack_max',
    rising: rising(n.rates, CONNTRACK_RISING),
    warn: fill !== null && fill >= WARN_FILL,
  };
}

export function tablesFrom(line: CountersLine): Tables {
  const time = typeof line.time === 'string' ? Date.parse(line.time) : NaN;
  const neigh = arr(line.neigh)
    .map(neighLevel)
    .filter((x): x is TableLevel => x !== null);
  let conntrack: TableLevel[] | null = null;
  let conntrackIdle = 0;
  if (isObj(line.conntrack)) {
    const max = num(line.conntrack.nf_conntrack_max);
    conntrackIdle = num(line.conntrack.netns_idle) ?? 0;
    conntrack = arr(line.conntrack.netns)
      .map((n) => conntrackLevel(n, max))
      .filter((x): x is TableLevel => x !== null)
      // the fullest first: that is the one about to drop
      .sort((a, b) => (b.fill ?? 0) - (a.fill ?? 0) || b.used - a.used || a.label.localeCompare(b.label));
  }
  const allowances: AllowanceLevel[] = [];
  const nics = arr(line.nic);
  for (const n of nics) {
    if (!isObj(n) || !isObj(n.allowance)) continue;
    const ifname = str(n.ifname) ?? '?';
    const rates = isObj(n.rates) ? n.rates : {};
    for (const [counter, v] of Object.entries(n.allowance)) {
      const total = num(v);
      if (total === null) continue;
      const r = num(rates[counter]);
      // conntrack_allowance_available is a level, not a counter of drops
      const isDrops = counter.endsWith('_exceeded');
      allowances.push({ ifname, driver: str(n.driver), counter, total, rate: r, warn: isDrops && r !== null && r > 0 });
    }
  }
  return {
    time: Number.isFinite(time) ? time : null,
    neigh,
    conntrack,
    conntrackIdle,
    allowances,
    nics: nics.length,
    warnings: strs(line.warnings),
    unavailable: strs(line.unavailable),
  };
}

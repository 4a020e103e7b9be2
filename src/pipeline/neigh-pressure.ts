/**
 * Was the neighbour table full a moment ago? A packet queued on an INCOMPLETE entry dies when
 * the entry gives up, mcast_solicit/app_solicit/ucast_solicit probes × retrans_time after it
 * was created (3 s by default). If the table was full in that time, the overflow is why: the
 * solicitations that needed an entry of their own were dropped (NEIGH_CREATEFAIL) and forced
 * GC evicted entries, so the resolution never finished. Two witnesses: neigh_table_full drops
 * of the same netns and table (exact, per netns), and the host sampler's counters lines (the
 * tables are shared by all netns: the table at gc_thresh3, or its table_fulls rising).
 */
import type { CountersLine } from '../host/counters-line.js';
import type { RawDrop } from './decode.js';

export type NeighTable = 'arp_cache' | 'ndisc_cache';

export interface NeighOverflow {
  /** which witness saw the table full: this netns' neigh_table_full drops, or the host sample */
  source: 'drops' | 'counters';
  /** how long before this drop, in whole seconds */
  seconds_before: number;
}

/** The table a drop's neighbour lives in: the neighbour hook's family, else the packet's. */
export function neighTableOf(d: RawDrop): NeighTable {
  return (d.neigh ? d.neigh.family === 10 : d.l3Proto === 0x86dd) ? 'ndisc_cache' : 'arp_cache';
}

/** How far back a full table still explains a failed resolution: several default resolution times (3 s). */
export const OVERFLOW_WINDOW_MS = 10_000;
/** netns × table pairs remembered before starting over (a miss only loses the sentence). */
const MAX_NETNS = 4096;

/** a netns inode (32 bits) and its table in one exact number */
const tableKey = (netns: number, table: NeighTable) => netns * 2 + (table === 'ndisc_cache' ? 1 : 0);

export class NeighPressure {
  /** netns × table (tableKey): a number, not a string, as this runs for every neigh_table_full drop */
  private readonly byNetns = new Map<number, number>();
  private readonly byTable = new Map<string, number>();

  constructor(
    private readonly now: () => number = () => Date.now(),
    private readonly windowMs = OVERFLOW_WINDOW_MS,
  ) {}

  /** A neigh_table_full drop in `netns`. */
  noteFull(netns: number, table: NeighTable): void {
    if (this.byNetns.size >= MAX_NETNS) this.byNetns.clear();
    this.byNetns.set(tableKey(netns, table), this.now());
  }

  /** A counters line: a table at gc_thresh3, or its table_fulls rising since the last sample. */
  noteCounters(line: CountersLine): void {
    const t = this.now();
    for (const n of line.neigh ?? []) {
      if ((n.fill !== null && n.fill >= 1) || (n.rates?.table_fulls ?? 0) > 0) this.byTable.set(n.table, t);
    }
  }

  /** The table full within the window before now, in this netns (drops) or on the host (counters). */
  recent(netns: number, table: NeighTable): NeighOverflow | undefined {
    const t = this.now();
    const seen = (at: number | undefined) => at !== undefined && t - at <= this.windowMs;
    const d = this.byNetns.get(tableKey(netns, table));
    if (seen(d)) return { source: 'drops', seconds_before: Math.floor((t - d!) / 1000) };
    const c = this.byTable.get(table);
    if (seen(c)) return { source: 'counters', seconds_before: Math.floor((t - c!) / 1000) };
    return undefined;
  }
}

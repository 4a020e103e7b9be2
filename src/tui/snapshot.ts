/**
 * What the store hands the components: one immutable snapshot per frame, and the view's choices
 * (group-by, sort) that keys cycle through.
 */
import type { Counted } from '../aggregate/counts.js';
import type { TableLevel, Tables } from './tables.js';

export const GROUP_BYS = ['kind', 'pod', 'flow', 'reason'] as const;
export type GroupBy = (typeof GROUP_BYS)[number];

/** rate and total: biggest first; last: most recently seen first; first: newest groups first. */
export const SORTS = ['rate', 'total', 'last', 'first', 'name'] as const;
export type SortBy = (typeof SORTS)[number];

/** Seconds shown by each sparkline. */
export const SPARK_SECONDS = 60;
/** Rates are drops in the last this many whole seconds, divided by it: exact, and steady. */
export const RATE_SECONDS = 5;

export interface ProbeInfo {
  probe: string;
  hook: string;
  state: string;
  why?: string;
}

export interface StartInfo {
  node: string;
  kernel: string;
  version: string;
  time: number | null;
  probes: ProbeInfo[];
  filterNetns: number | null;
  /** where pod names come from (`file (3 pods), discovery`, `none`); null when the line does not say */
  attribution: string | null;
}

export interface StatsInfo {
  time: number | null;
  final: boolean;
  events: number;
  lost: { ringBuffer: number; userspace: number; total: number };
  decodeErrors: number;
  enrichmentFailures: number;
  /** host table samples that failed */
  countersFailures: number;
  kernelDrops: number | null;
  byReason: Record<string, number>;
  /** exact count of neighbour entries the kernel failed to create */
  neighCreateFailed: { ipv4: number; ipv6: number } | null;
}

export interface GroupRow {
  key: string;
  label: string;
  /** family of the kind(s) in this group; `mixed` when several */
  family: string;
  total: number;
  /** drops/s over the last RATE_SECONDS whole seconds */
  rate: number;
  /** SPARK_SECONDS per-second counts, oldest first, ending with the current second */
  spark: number[];
  first: number;
  last: number;
}


export type { Counted };

export interface GroupDetail {
  key: string;
  label: string;
  groupBy: GroupBy;
  total: number;
  rate: number;
  first: number;
  last: number;
  kinds: Array<{ kind: string; family: string; count: number; explain: string; hint: string }>;
  reasons: Counted[];
  locations: Counted[];
  ifnames: Counted[];
  pods: Counted[];
  /** exact 5-tuples seen recently, the busiest first */
  flows: Array<{ flow: string; count: number; last: number }>;
  names: string[];
  nexthops: Counted[];
  evidence: Counted[];
  /** drops after DNAT: "service → pod", the busiest first */
  services: Counted[];
  /** exact in-kernel counts since the start for this group's reasons (all namespaces traced),
   * and for neighbour drops the kernel's count of failed neighbour creations */
  kernel: Counted[];
  /** table levels that explain this kind of drop (neighbour tables, conntrack) */
  related: TableLevel[];
  /** why the benign drops of this group are routine (empty when none is) */
  benign: string[];
  /** --stack: the kernel stack of the group's latest drop that had one, innermost first, and when; null without */
  stack: { frames: readonly string[]; at: number } | null;
}

export interface Snapshot {
  source: 'live' | 'replay';
  /** store clock; null before anything arrived */
  now: number | null;
  start: StartInfo | null;
  uptimeMs: number | null;
  /** all drops/s, unfiltered */
  rate: number;
  total: number;
  spark: number[];
  /** the latest stats line, live even while paused: lost events are never hidden */
  stats: StatsInfo | null;
  tables: Tables | null;
  groupBy: GroupBy;
  sortBy: SortBy;
  filter: string;
  /** the filter being typed, or null when not editing */
  editing: string | null;
  /** why the filter text does not parse yet (`why (column N)`; the last good one applies), or null */
  filterError: string | null;
  paused: boolean;
  /** drops that arrived since the view was paused */
  newWhilePaused: number;
  help: boolean;
  /** the user's choice; null until Enter or Esc: open when the terminal has room (src/tui/layout.ts) */
  detailOpen: boolean | null;
  /** `b`: benign drops (src/pipeline/benign.ts) in the groups; hidden by default */
  showBenign: boolean;
  /** benign drops since the start or the last clear, shown or not */
  benignDrops: number;
  groups: GroupRow[];
  /** drops in the groups shown (after the filter) */
  shownTotal: number;
  shownRate: number;
  hiddenDrops: number;
  selected: number;
  detail: GroupDetail | null;
  /** why no more lines will come (`stream ended`, `end of recording`), or null */
  ended: string | null;
  ignoredLines: number;
  foldedDrops: number;
  /** detail records the live view had no time for (counted, never drawn); 0 in a replay */
  shedDetail: number;
  /** all drops/s from the kernel's exact counter, over the last two stats lines; null before */
  kernelRate: number | null;
  clearedAt: number | null;
}

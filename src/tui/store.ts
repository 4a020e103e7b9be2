/**
 * The TUI's one source of truth: stream lines go in (`write`: the store is a Sink), immutable snapshots come out
 * (`snapshot`), and key actions change the view. Nothing here reads a clock, touches the
 * addon or starts a timer: time comes from the lines themselves and from `tick`, so replays,
 * tests and the live pipeline all see the same numbers for the same lines.
 *
 * Drops are aggregated once into "leaves" (kind × reason × netns × pod × flow without the
 * source port); groups, filters and sorts are views over the leaves computed per snapshot,
 * so switching group-by or filtering shows everything since the start, not since the switch.
 */
import type { CountersLine, DropEvent, Flow, Pod, StartLine, StatsLine, StreamLine } from '../pipeline/events.js';
import type { Sink } from '../sinks/sink.js';
import { tablesFrom } from './tables.js';
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
/** Distinct leaves kept; drops of further keys are counted in one `(other)` leaf per kind. */
export const MAX_LEAVES = 20_000;
const RECENT_FLOWS = 8;
const SMALL_MAP = 16;
const RING = 64;

/** Per-second counts of the last RING seconds, keyed by absolute second. */
class SecondRing {
  readonly secs = new Float64Array(RING).fill(-1);
  readonly counts = new Float64Array(RING);

  add(sec: number, n: number): void {
    const i = sec & (RING - 1);
    if (this.secs[i] !== sec) {
      // an event older than the ring's reach must not wipe a newer second
      if (this.secs[i]! > sec) return;
      this.secs[i] = sec;
      this.counts[i] = 0;
    }
    this.counts[i]! += n;
  }

  get(sec: number): number {
    const i = sec & (RING - 1);
    return this.secs[i] === sec ? this.counts[i]! : 0;
  }

  /** Sum over the seconds [from, to]. */
  sum(from: number, to: number): number {
    let s = 0;
    for (let t = from; t <= to; t++) s += this.get(t);
    return s;
  }

  addInto(out: number[], firstSec: number): void {
    for (let k = 0; k < out.length; k++) out[k]! += this.get(firstSec + k);
  }

  clone(): SecondRing {
    const r = new SecondRing();
    r.secs.set(this.secs);
    r.counts.set(this.counts);
    return r;
  }
}

interface Recent {
  count: number;
  last: number;
}

interface Leaf {
  family: string;
  kind: string;
  reason: string;
  netns: number;
  pod: Pod | null;
  /** `udp 198.18.7.1 → 198.18.7.2:5301`; null without an IP header */
  flowKey: string | null;
  src: string | null;
  dst: string | null;
  explain: string;
  hint: string;
  total: number;
  first: number;
  last: number;
  ring: SecondRing;
  locations: Map<string, number>;
  ifnames: Map<string, number>;
  /** exact 5-tuples, most recent few */
  recent: Map<string, Recent>;
  names: Set<string>;
  /** neighbour addresses that could not be created or resolved */
  nexthops: Map<string, number>;
  /** the signals that decided a conntrack kind */
  evidence: Map<string, number>;
  /** the catch-all leaf of a kind once MAX_LEAVES is reached */
  overflow: boolean;
}

interface Data {
  leaves: Map<string, Leaf>;
  global: SecondRing;
  /** drops since the start or the last clear */
  total: number;
  /** store clock, ms since the epoch; 0 before the first line or tick */
  now: number;
  /** when the last drop happened; 0 before any */
  lastDrop: number;
  folded: number;
  tables: Tables | null;
  /** netns inode → a name a human knows it by (from counters lines) */
  netnsNames: Map<number, string>;
}

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

export interface Counted {
  name: string;
  count: number;
}

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
  /** exact in-kernel counts since the start for this group's reasons (all namespaces traced),
   * and for neighbour drops the kernel's count of failed neighbour creations */
  kernel: Counted[];
  /** table levels that explain this kind of drop (neighbour tables, conntrack) */
  related: TableLevel[];
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
  paused: boolean;
  /** drops that arrived since the view was paused */
  newWhilePaused: number;
  help: boolean;
  detailOpen: boolean;
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

export interface StoreOptions {
  source?: 'live' | 'replay';
  groupBy?: GroupBy;
  sortBy?: SortBy;
  filter?: string;
  maxLeaves?: number;
}

type FilterField = 'any' | 'pod' | 'ns' | 'kind' | 'reason' | 'ip' | 'netns' | 'dns';
interface Term {
  field: FilterField;
  value: string;
}

const FIELD_ALIASES: Record<string, FilterField> = {
  pod: 'pod',
  ns: 'ns',
  namespace: 'ns',
  kind: 'kind',
  reason: 'reason',
  ip: 'ip',
  netns: 'netns',
  dns: 'dns',
};

/**
 * Space-separated terms, all of which must match (case-insensitive substrings). A term may
 * name its field: `pod:web`, `ns:kube-system`, `kind:neigh`, `reason:NETFILTER`, `ip:10.0.3.`,
 * `netns:4026532` (or the netns's name), `dns:payments` (a dropped query's name); a bare term
 * matches any of them.
 */
export function parseFilter(text: string): Term[] {
  const terms: Term[] = [];
  for (const raw of text.trim().split(/\s+/)) {
    if (raw === '') continue;
    const colon = raw.indexOf(':');
    const field = colon > 0 ? FIELD_ALIASES[raw.slice(0, colon).toLowerCase()] : undefined;
    // IPv6 addresses have colons too: only a known field name before the colon is a field
    if (field !== undefined) terms.push({ field, value: raw.slice(colon + 1).toLowerCase() });
    else terms.push({ field: 'any', value: raw.toLowerCase() });
  }
  return terms;
}

function termMatches(l: Leaf, t: Term, netnsName: string | undefined): boolean {
  const has = (s: string | null | undefined) => s != null && s.toLowerCase().includes(t.value);
  const pod = l.pod ? `${l.pod.namespace}/${l.pod.name}` : null;
  switch (t.field) {
    case 'pod':
      return has(pod);
    case 'ns':
      return has(l.pod?.namespace);
    case 'kind':
      return has(l.kind) || has(l.family);
    case 'reason':
      return has(l.reason);
    case 'ip':
      return has(l.src) || has(l.dst);
    case 'netns':
      return has(String(l.netns)) || has(netnsName);
    case 'dns':
      return [...l.names].some(has);
    case 'any':
      return (
        has(pod) ||
        has(l.kind) ||
        has(l.family) ||
        has(l.reason) ||
        has(l.src) ||
        has(l.dst) ||
        has(String(l.netns)) ||
        has(netnsName) ||
        [...l.names].some(has)
      );
  }
}

function bump(m: Map<string, number>, k: string, n: number): void {
  const v = m.get(k);
  if (v !== undefined) m.set(k, v + n);
  else if (m.size < SMALL_MAP) m.set(k, n);
}

function ipPort(ip: string, port: number | undefined): string {
  if (port === undefined) return ip;
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** The flow a group is keyed by: the client's source port changes per connection, so it is left out. */
export function flowKeyOf(f: Flow | null): string | null {
  if (f === null) return null;
  if (f.type !== undefined) return `${f.proto} ${f.src} → ${f.dst} type ${f.type}/${f.code ?? '?'}`;
  return `${f.proto} ${f.src} → ${ipPort(f.dst, f.dport)}`;
}

export function flowText(f: Flow | null): string {
  if (f === null) return '(no IP header)';
  if (f.type !== undefined) return `${f.proto} ${f.src} → ${f.dst} type ${f.type}/${f.code ?? '?'}`;
  return `${f.proto} ${ipPort(f.src, f.sport)} → ${ipPort(f.dst, f.dport)}`;
}

/** `example.com A` for a dropped DNS query (the stream parses the question from the packet). */
function dnsName(ev: DropEvent): string | null {
  const q = ev.dns;
  if (q === null || q === undefined || typeof q.name !== 'string' || q.name === '') return null;
  return typeof q.type === 'string' && q.type !== '' ? `${q.name} ${q.type}` : q.name;
}

function emptyData(now: number, tables: Tables | null, netnsNames: Map<number, string>): Data {
  return { leaves: new Map(), global: new SecondRing(), total: 0, now, lastDrop: 0, folded: 0, tables, netnsNames };
}

function cloneData(d: Data): Data {
  const leaves = new Map<string, Leaf>();
  for (const [k, l] of d.leaves) {
    leaves.set(k, {
      ...l,
      ring: l.ring.clone(),
      locations: new Map(l.locations),
      ifnames: new Map(l.ifnames),
      recent: new Map([...l.recent].map(([f, r]) => [f, { ...r }])),
      names: new Set(l.names),
      nexthops: new Map(l.nexthops),
      evidence: new Map(l.evidence),
    });
  }
  return { ...d, leaves, global: d.global.clone(), netnsNames: new Map(d.netnsNames) };
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const isoMs = (v: unknown): number | null => {
  if (typeof v !== 'string') return null;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : null;
};

type Listener = (urgent: boolean) => void;

export class TuiStore implements Sink {
  readonly source: 'live' | 'replay';
  readonly #maxLeaves: number;
  #data: Data = emptyData(0, null, new Map());
  #frozen: Data | null = null;
  #start: StartInfo | null = null;
  #stats: StatsInfo | null = null;
  #ended: string | null = null;
  #ignored = 0;
  #shed = 0;
  #kernelRate: number | null = null;
  #clearedAt: number | null = null;
  #groupBy: GroupBy;
  #sortBy: SortBy;
  #filter: string;
  #terms: Term[];
  #editing: string | null = null;
  #filterBeforeEdit = '';
  #help = false;
  #detail = false;
  /** null until the user moves the selection: until then it follows the top row */
  #selKey: string | null = null;
  #selIndex = 0;
  #cache: Snapshot | null = null;
  readonly #listeners = new Set<Listener>();

  constructor(o: StoreOptions = {}) {
    this.source = o.source ?? 'live';
    this.#maxLeaves = o.maxLeaves ?? MAX_LEAVES;
    this.#groupBy = o.groupBy ?? 'kind';
    this.#sortBy = o.sortBy ?? 'rate';
    this.#filter = o.filter ?? '';
    this.#terms = parseFilter(this.#filter);
  }

  /** `urgent`: a key was pressed, redraw now; otherwise data changed, redraw when convenient. */
  subscribe(fn: Listener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #changed(urgent: boolean): void {
    this.#cache = null;
    for (const fn of this.#listeners) fn(urgent);
  }

  // ---- data in ----

  /** The Sink side: every line of the stream, in order. */
  write(line: StreamLine): void {
    switch (line.type) {
      case 'drop':
        this.#drop(line);
        break;
      case 'stats':
        // a quiet node sends the same stats every few seconds: no redraw for nothing
        if (!this.#statsLine(line)) {
          this.#cache = null;
          return;
        }
        break;
      case 'counters':
        this.#counters(line);
        break;
      case 'start':
        this.#startLine(line);
        break;
      default:
        // newer stream versions may add line types; count them so nothing vanishes unseen
        this.#ignored++;
    }
    this.#changed(false);
  }

  /** The same as `write` (the recording player and the bench feed lines by this name). */
  ingest(line: StreamLine): void {
    this.write(line);
  }

  /**
   * Advances the store clock (wall time live, recorded time in a replay); never goes back.
   * Listeners hear of it only when something on screen moves: sparklines and rates while drops
   * are recent, the uptime's seconds in the first minute, its minutes after that. An idle
   * screen redraws once a minute.
   */
  tick(ms: number): void {
    const d = this.#data;
    const before = d.now;
    if (ms <= before) return;
    d.now = ms;
    this.#cache = null;
    const sec = (t: number) => Math.floor(t / 1000);
    const min = (t: number) => Math.floor(t / 60_000);
    if (sec(ms) === sec(before)) return;
    const recent = d.lastDrop > 0 && ms - d.lastDrop <= (SPARK_SECONDS + RATE_SECONDS + 1) * 1000;
    const start = this.#start?.time ?? null;
    const young = start !== null && ms - start < 61_000;
    if (recent || young || start === null || min(ms - (start ?? 0)) !== min(before - (start ?? 0))) this.#changed(false);
  }

  /** Lines the feeder skipped (unknown types in a recording): counted on screen, never silent. */
  ignore(n: number): void {
    if (n <= 0) return;
    this.#ignored += n;
    this.#changed(false);
  }

  /** Detail records shed by the live view's budget: counted on screen, never silent. */
  shed(n: number): void {
    if (n <= 0) return;
    this.#shed += n;
    this.#changed(false);
  }

  /** No more lines will come; `why` is shown in the header. */
  end(why: string): void {
    this.#ended = why;
    this.#changed(false);
  }

  #drop(ev: DropEvent): void {
    const d = this.#data;
    const t = isoMs(ev.time);
    if (t === null) {
      this.#ignored++;
      return;
    }
    const tLast = isoMs(ev.last_time) ?? t;
    const n = typeof ev.count === 'number' && ev.count > 0 ? ev.count : 1;
    const flow = ev.flow ?? null;
    const pod = ev.pod ?? null;
    const flowKey = flowKeyOf(flow);
    const podKey = pod ? `${pod.namespace}/${pod.name}/${pod.uid}` : '';
    let key = `${ev.kind}|${ev.reason}|${ev.netns}|${podKey}|${flowKey ?? ''}`;
    let leaf = d.leaves.get(key);
    if (leaf === undefined && d.leaves.size >= this.#maxLeaves) {
      key = `${ev.kind}|${ev.reason}|~overflow`;
      leaf = d.leaves.get(key);
      d.folded += n;
    }
    if (leaf === undefined) {
      const overflow = key.endsWith('|~overflow');
      leaf = {
        family: ev.family ?? 'other',
        kind: ev.kind,
        reason: ev.reason ?? '',
        netns: overflow ? -1 : num(ev.netns),
        pod: overflow ? null : pod,
        flowKey: overflow ? '(other flows)' : flowKey,
        src: overflow ? null : (flow?.src ?? null),
        dst: overflow ? null : (flow?.dst ?? null),
        explain: typeof ev.explain === 'string' ? ev.explain : '',
        hint: typeof ev.hint === 'string' ? ev.hint : '',
        total: 0,
        first: t,
        last: tLast,
        ring: new SecondRing(),
        locations: new Map(),
        ifnames: new Map(),
        recent: new Map(),
        names: new Set(),
        nexthops: new Map(),
        evidence: new Map(),
        overflow,
      };
      d.leaves.set(key, leaf);
    }
    leaf.total += n;
    if (t < leaf.first) leaf.first = t;
    if (tLast > leaf.last) leaf.last = tLast;
    const sec = Math.floor(t / 1000);
    leaf.ring.add(sec, n);
    d.global.add(sec, n);
    d.total += n;
    if (typeof ev.location === 'string' && ev.location !== '') bump(leaf.locations, ev.location, n);
    if (typeof ev.ifname === 'string' && ev.ifname !== '') bump(leaf.ifnames, ev.ifname, n);
    const exact = flowText(flow);
    const r = leaf.recent.get(exact);
    if (r) {
      r.count += n;
      r.last = Math.max(r.last, tLast);
    } else {
      if (leaf.recent.size >= RECENT_FLOWS) {
        let oldest: string | null = null;
        let oldestT = Infinity;
        for (const [k, v] of leaf.recent) if (v.last < oldestT) [oldest, oldestT] = [k, v.last];
        if (oldest !== null) leaf.recent.delete(oldest);
      }
      leaf.recent.set(exact, { count: n, last: tLast });
    }
    const name = dnsName(ev);
    if (name !== null && leaf.names.size < SMALL_MAP) leaf.names.add(name);
    const hop = ev.neigh?.address;
    if (typeof hop === 'string' && hop !== '') bump(leaf.nexthops, hop, n);
    for (const e of Array.isArray(ev.evidence) ? ev.evidence : []) if (typeof e === 'string') bump(leaf.evidence, e, n);
    if (tLast > d.now) d.now = tLast;
    if (tLast > d.lastDrop) d.lastDrop = tLast;
  }

  /** Returns whether anything shown changed. */
  #statsLine(s: StatsLine): boolean {
    const before = this.#stats;
    const lost = (s.lost ?? {}) as Partial<StatsLine['lost']>;
    const byReason: Record<string, number> = {};
    const k = (s.kernel ?? {}) as Partial<StatsLine['kernel']>;
    for (const [r, v] of Object.entries(k.by_reason ?? {})) byReason[r] = num(v);
    const ringBuffer = num(lost.ring_buffer);
    const userspace = num(lost.userspace);
    this.#stats = {
      time: isoMs(s.time),
      final: s.final === true,
      events: num(s.events),
      lost: { ringBuffer, userspace, total: typeof lost.total === 'number' ? lost.total : ringBuffer + userspace },
      decodeErrors: num(s.decode_errors),
      enrichmentFailures: num(s.enrichment_failures),
      countersFailures: num(s.counters_failures),
      kernelDrops: typeof k.drops === 'number' ? k.drops : null,
      byReason,
      neighCreateFailed:
        typeof k.neigh_create_failed === 'object' && k.neigh_create_failed !== null
          ? { ipv4: num(k.neigh_create_failed.ipv4), ipv6: num(k.neigh_create_failed.ipv6) }
          : null,
    };
    const t = this.#stats.time;
    if (t !== null && t > this.#data.now) this.#data.now = t;
    if (before?.time != null && t !== null && t > before.time && before.kernelDrops !== null && this.#stats.kernelDrops !== null) {
      this.#kernelRate = Math.max(0, this.#stats.kernelDrops - before.kernelDrops) / ((t - before.time) / 1000);
    }
    const a = { ...before, time: null };
    const b = { ...this.#stats, time: null };
    return before === null || JSON.stringify(a) !== JSON.stringify(b);
  }

  #counters(c: CountersLine): void {
    const tables = tablesFrom(c);
    this.#data.tables = tables;
    const ct = c.conntrack as { netns?: unknown } | null | undefined;
    if (ct && Array.isArray(ct.netns)) {
      for (const n of ct.netns as Array<Record<string, unknown>>) {
        if (typeof n?.netns !== 'number') continue;
        const name = typeof n.name === 'string' ? n.name : typeof n.comm === 'string' ? n.comm : n.init === true ? 'host' : null;
        if (name !== null) this.#data.netnsNames.set(n.netns, name);
      }
    }
    if (tables.time !== null && tables.time > this.#data.now) this.#data.now = tables.time;
  }

  #startLine(s: StartLine): void {
    const probes = Array.isArray(s.probes) ? s.probes : [];
    this.#start = {
      node: typeof s.node === 'string' ? s.node : '?',
      kernel: typeof s.kernel === 'string' ? s.kernel : '?',
      version: typeof s.version === 'string' ? s.version : '?',
      time: isoMs(s.time),
      probes: probes.map((p) => ({
        probe: String(p.probe ?? '?'),
        hook: String(p.hook ?? '?'),
        state: String(p.state ?? '?'),
        ...(typeof p.why === 'string' ? { why: p.why } : {}),
      })),
      filterNetns: typeof s.filter?.netns === 'number' ? s.filter.netns : null,
      attribution: typeof s.attribution === 'string' ? s.attribution : null,
    };
    const t = this.#start.time;
    if (t !== null && t > this.#data.now) this.#data.now = t;
  }

  // ---- view actions (keys) ----

  get groupBy(): GroupBy {
    return this.#groupBy;
  }

  setGroupBy(g: GroupBy): void {
    this.#groupBy = g;
    this.#selKey = null;
    this.#selIndex = 0;
    this.#changed(true);
  }

  cycleGroupBy(): void {
    this.setGroupBy(GROUP_BYS[(GROUP_BYS.indexOf(this.#groupBy) + 1) % GROUP_BYS.length]!);
  }

  setSort(s: SortBy): void {
    this.#sortBy = s;
    this.#changed(true);
  }

  cycleSort(): void {
    this.setSort(SORTS[(SORTS.indexOf(this.#sortBy) + 1) % SORTS.length]!);
  }

  setFilter(text: string): void {
    this.#filter = text;
    this.#terms = parseFilter(text);
    this.#changed(true);
  }

  /** `/`: start typing a filter; the filter applies as it is typed. */
  editFilter(): void {
    this.#filterBeforeEdit = this.#filter;
    this.#editing = this.#filter;
    this.#changed(true);
  }

  get editing(): boolean {
    return this.#editing !== null;
  }

  typeFilter(chars: string): void {
    if (this.#editing === null) return;
    this.#editing += chars;
    this.setFilter(this.#editing);
  }

  backspaceFilter(): void {
    if (this.#editing === null) return;
    this.#editing = this.#editing.slice(0, -1);
    this.setFilter(this.#editing);
  }

  /** Enter: keep the typed filter. */
  commitFilter(): void {
    this.#editing = null;
    this.#changed(true);
  }

  /** Esc while typing: back to the filter from before. */
  cancelFilter(): void {
    this.#editing = null;
    this.setFilter(this.#filterBeforeEdit);
  }

  /**
   * Pause freezes what is shown; lines keep being counted underneath (nothing is dropped while
   * paused) and the header says how many drops arrived since. Unpausing jumps to the present.
   */
  togglePause(): void {
    this.#frozen = this.#frozen === null ? cloneData(this.#data) : null;
    this.#changed(true);
  }

  get paused(): boolean {
    return this.#frozen !== null;
  }

  /** Forgets drop groups, totals and sparklines; keeps probes, table levels and lost counts (those are since the start). */
  clear(): void {
    const d = this.#data;
    this.#data = emptyData(d.now, d.tables, d.netnsNames);
    if (this.#frozen !== null) this.#frozen = cloneData(this.#data);
    this.#clearedAt = d.now;
    this.#selKey = null;
    this.#selIndex = 0;
    this.#changed(true);
  }

  moveSelection(delta: number): void {
    const rows = this.#rows(this.#frozen ?? this.#data).rows;
    if (rows.length === 0) return;
    const cur = this.#resolveSelection(rows);
    const next = Math.max(0, Math.min(rows.length - 1, cur + delta));
    this.#selIndex = next;
    this.#selKey = rows[next]!.key;
    this.#changed(true);
  }

  selectEdge(which: 'first' | 'last'): void {
    this.moveSelection(which === 'first' ? -Infinity : Infinity);
  }

  toggleDetail(): void {
    this.#detail = !this.#detail;
    this.#changed(true);
  }

  toggleHelp(): void {
    this.#help = !this.#help;
    this.#changed(true);
  }

  /** Esc: close help, else the detail pane, else clear the filter. */
  back(): void {
    if (this.#help) this.#help = false;
    else if (this.#detail) this.#detail = false;
    else if (this.#filter !== '') {
      this.setFilter('');
      return;
    } else return;
    this.#changed(true);
  }

  // ---- snapshots out ----

  snapshot(): Snapshot {
    if (this.#cache) return this.#cache;
    const live = this.#data;
    const d = this.#frozen ?? live;
    const { rows, byKey, shownTotal, shownRate, hiddenDrops } = this.#rows(d);
    const selected = rows.length === 0 ? -1 : this.#resolveSelection(rows);
    const sel = selected >= 0 ? rows[selected]! : null;
    const nowSec = Math.floor(d.now / 1000);
    const spark = new Array<number>(SPARK_SECONDS).fill(0);
    d.global.addInto(spark, nowSec - SPARK_SECONDS + 1);
    const start = this.#start;
    const snap: Snapshot = {
      source: this.source,
      now: d.now > 0 ? d.now : null,
      start,
      uptimeMs: start?.time != null && d.now > 0 ? Math.max(0, d.now - start.time) : null,
      rate: d.global.sum(nowSec - RATE_SECONDS, nowSec - 1) / RATE_SECONDS,
      total: d.total,
      spark,
      stats: this.#stats,
      tables: d.tables,
      groupBy: this.#groupBy,
      sortBy: this.#sortBy,
      filter: this.#filter,
      editing: this.#editing,
      paused: this.#frozen !== null,
      newWhilePaused: this.#frozen !== null ? Math.max(0, live.total - this.#frozen.total) : 0,
      help: this.#help,
      detailOpen: this.#detail,
      groups: rows,
      shownTotal,
      shownRate,
      hiddenDrops,
      selected,
      detail: null,
      ended: this.#ended,
      ignoredLines: this.#ignored,
      foldedDrops: d.folded,
      shedDetail: this.#shed,
      kernelRate: this.#kernelRate,
      clearedAt: this.#clearedAt,
    };
    // the detail merges every leaf of the selected group: only worked out when a frame asks
    const groupBy = this.#groupBy;
    const stats = this.#stats;
    let detail: GroupDetail | null | undefined;
    Object.defineProperty(snap, 'detail', {
      enumerable: true,
      get: () => (detail === undefined ? (detail = sel ? this.#detailOf(sel, byKey.get(sel.key) ?? [], d, groupBy, stats) : null) : detail),
    });
    this.#cache = snap;
    return snap;
  }

  #resolveSelection(rows: GroupRow[]): number {
    if (this.#selKey === null) return 0;
    const i = rows.findIndex((r) => r.key === this.#selKey);
    if (i >= 0) {
      this.#selIndex = i;
      return i;
    }
    // The selected group is not shown (a filter being typed): stay at the same height, but
    // keep wanting that group, so it is selected again when it comes back.
    return Math.max(0, Math.min(rows.length - 1, this.#selIndex));
  }

  #groupOf(l: Leaf, d: Data): { key: string; label: string } {
    switch (this.#groupBy) {
      case 'kind':
        return { key: l.kind, label: l.kind };
      case 'reason':
        return { key: l.reason, label: l.reason };
      case 'flow':
        return { key: l.flowKey ?? '', label: l.flowKey ?? '(no IP header)' };
      case 'pod':
        return { key: l.pod ? `pod:${l.pod.namespace}/${l.pod.name}` : `netns:${l.netns}`, label: this.#podLabel(l, d) };
    }
  }

  #podLabel(l: Leaf, d: Data): string {
    if (l.pod) return `${l.pod.namespace}/${l.pod.name}`;
    if (l.overflow) return '(other pods)';
    const name = d.netnsNames.get(l.netns);
    return name ? `netns ${l.netns} (${name})` : `netns ${l.netns}`;
  }

  #rows(d: Data): { rows: GroupRow[]; byKey: Map<string, Leaf[]>; shownTotal: number; shownRate: number; hiddenDrops: number } {
    const nowSec = Math.floor(d.now / 1000);
    const byKey = new Map<string, Leaf[]>();
    const acc = new Map<string, GroupRow>();
    let hiddenDrops = 0;
    let shownTotal = 0;
    let shownRate = 0;
    for (const l of d.leaves.values()) {
      const nsName = d.netnsNames.get(l.netns);
      if (this.#terms.length > 0 && !this.#terms.every((t) => termMatches(l, t, nsName))) {
        hiddenDrops += l.total;
        continue;
      }
      const { key, label } = this.#groupOf(l, d);
      // whole drops are summed and divided once, so rates add up exactly (no 20.599999)
      const recent = l.ring.sum(nowSec - RATE_SECONDS, nowSec - 1);
      shownTotal += l.total;
      shownRate += recent;
      let g = acc.get(key);
      if (g === undefined) {
        g = { key, label, family: l.family, total: 0, rate: 0, spark: new Array<number>(SPARK_SECONDS).fill(0), first: l.first, last: l.last };
        acc.set(key, g);
        byKey.set(key, []);
      }
      if (g.family !== l.family) g.family = 'mixed';
      g.total += l.total;
      g.rate += recent;
      g.first = Math.min(g.first, l.first);
      g.last = Math.max(g.last, l.last);
      l.ring.addInto(g.spark, nowSec - SPARK_SECONDS + 1);
      byKey.get(key)!.push(l);
    }
    const rows = [...acc.values()];
    for (const g of rows) g.rate /= RATE_SECONDS;
    shownRate /= RATE_SECONDS;
    const byName = (a: GroupRow, b: GroupRow) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0);
    const cmp: Record<SortBy, (a: GroupRow, b: GroupRow) => number> = {
      rate: (a, b) => b.rate - a.rate || b.total - a.total || byName(a, b),
      total: (a, b) => b.total - a.total || b.rate - a.rate || byName(a, b),
      last: (a, b) => b.last - a.last || b.total - a.total || byName(a, b),
      first: (a, b) => b.first - a.first || b.total - a.total || byName(a, b),
      name: byName,
    };
    rows.sort(cmp[this.#sortBy]);
    return { rows, byKey, shownTotal, shownRate, hiddenDrops };
  }

  #detailOf(g: GroupRow, leaves: Leaf[], d: Data, groupBy: GroupBy, stats: StatsInfo | null): GroupDetail {
    const kinds = new Map<string, { kind: string; family: string; count: number; explain: string; hint: string; last: number }>();
    const reasons = new Map<string, number>();
    const locations = new Map<string, number>();
    const ifnames = new Map<string, number>();
    const pods = new Map<string, number>();
    const flows = new Map<string, Recent>();
    const names = new Set<string>();
    const nexthops = new Map<string, number>();
    const evidence = new Map<string, number>();
    const add = (m: Map<string, number>, k: string, n: number) => m.set(k, (m.get(k) ?? 0) + n);
    for (const l of leaves) {
      const k = kinds.get(l.kind);
      if (!k) kinds.set(l.kind, { kind: l.kind, family: l.family, count: l.total, explain: l.explain, hint: l.hint, last: l.last });
      else {
        k.count += l.total;
        // the newest drop's words: they carry the values in force now, and the most specific case
        if (l.last > k.last && l.explain !== '') Object.assign(k, { explain: l.explain, hint: l.hint, last: l.last });
      }
      add(reasons, l.reason, l.total);
      for (const [x, n] of l.locations) add(locations, x, n);
      for (const [x, n] of l.ifnames) add(ifnames, x, n);
      add(pods, this.#podLabel(l, d), l.total);
      for (const [f, r] of l.recent) {
        const have = flows.get(f);
        if (have) {
          have.count += r.count;
          have.last = Math.max(have.last, r.last);
        } else flows.set(f, { ...r });
      }
      for (const n of l.names) names.add(n);
      for (const [x, n] of l.nexthops) add(nexthops, x, n);
      for (const [x, n] of l.evidence) add(evidence, x, n);
    }
    const sorted = (m: Map<string, number>): Counted[] =>
      [...m].map(([name, count]) => ({ name, count })).sort((a, b) => b.count - a.count || (a.name < b.name ? -1 : 1));
    const byReason = stats?.byReason ?? {};
    const kernel = [...reasons.keys()]
      .filter((r) => byReason[r] !== undefined)
      .sort()
      .map((r) => ({ name: r, count: byReason[r]! }));
    const ncf = stats?.neighCreateFailed;
    if (kinds.has('neigh_table_full') && ncf) {
      kernel.push({ name: 'neigh_create_failed ipv4', count: ncf.ipv4 }, { name: 'neigh_create_failed ipv6', count: ncf.ipv6 });
    }
    const related: TableLevel[] = [];
    const families = new Set([...kinds.values()].map((k) => k.family));
    if (families.has('neigh')) related.push(...(d.tables?.neigh ?? []));
    // a hook's own NF_DROP (nf_hook_slow), not a rule's, is how a full conntrack table drops
    if (families.has('conntrack') || locations.has('nf_hook_slow')) related.push(...(d.tables?.conntrack ?? []).slice(0, 3));
    return {
      key: g.key,
      label: g.label,
      groupBy,
      total: g.total,
      rate: g.rate,
      first: g.first,
      last: g.last,
      kinds: [...kinds.values()]
        .sort((a, b) => b.count - a.count || (a.kind < b.kind ? -1 : 1))
        .map(({ kind, family, count, explain, hint }) => ({ kind, family, count, explain, hint })),
      reasons: sorted(reasons),
      locations: sorted(locations),
      ifnames: sorted(ifnames),
      pods: sorted(pods),
      flows: [...flows]
        .map(([flow, r]) => ({ flow, count: r.count, last: r.last }))
        // of the recent flows, the busiest first
        .sort((a, b) => b.count - a.count || b.last - a.last || (a.flow < b.flow ? -1 : 1)),
      names: [...names].sort(),
      nexthops: sorted(nexthops),
      evidence: sorted(evidence),
      kernel,
      related,
    };
  }
}

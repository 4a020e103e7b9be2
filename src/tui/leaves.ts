/**
 * The store's aggregate: drops folded once into "leaves" (kind × reason × netns × pod × flow
 * without the source port). Groups, filters and sorts are views over the leaves (selectors.ts),
 * so switching group-by or filtering shows everything since the start, not since the switch.
 * Memory is bounded: at most `maxLeaves` leaves, each with bounded tallies; drops of further
 * keys go to one `(other)` leaf per kind and reason.
 */
import { bump } from '../aggregate/counts.js';
import { SecondWindow } from '../aggregate/window.js';
import { hostPort } from '../pipeline/addr.js';
import { timeMs as lineTimeMs } from '../pipeline/clock.js';
import type { LineTime } from '../pipeline/clock.js';
import type { DropEvent, Flow, Pod } from '../pipeline/events.js';
import { serviceText } from '../pipeline/service.js';
import { withInner } from '../pipeline/overlay.js';
import type { Tables } from './tables.js';

/** Distinct leaves kept; drops of further keys are counted in one `(other)` leaf per kind. */
export const MAX_LEAVES = 20_000;
const RECENT_FLOWS = 8;
const SMALL_MAP = 16;

/**
 * The one place the store reads a line's time: numbers from the live pipeline, ISO-8601 text
 * from a recording (src/pipeline/clock.ts).
 */
export function timeMs(v: LineTime | number | undefined | null): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (v === undefined || v === null) return null;
  const t = lineTimeMs(v);
  return Number.isFinite(t) ? t : null;
}

export interface Recent {
  count: number;
  last: number;
}

export interface Leaf {
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
  window: SecondWindow;
  locations: Map<string, number>;
  ifnames: Map<string, number>;
  /** exact 5-tuples, most recent few */
  recent: Map<string, Recent>;
  names: Set<string>;
  /** neighbour addresses that could not be created or resolved */
  nexthops: Map<string, number>;
  /** the signals that decided a conntrack kind */
  evidence: Map<string, number>;
  /** drops after DNAT: "service → pod" (src/pipeline/service.ts) */
  services: Map<string, number>;
  /** the catch-all leaf of a kind once MAX_LEAVES is reached */
  overflow: boolean;
  /** benign drops (src/pipeline/benign.ts): why they are routine; null for all others */
  benign: string | null;
  /** --stack: the kernel stack of the latest drop that had one (shared with its line: never changed), and its time */
  stack: readonly string[] | null;
  stackAt: number;
}

export interface Data {
  leaves: Map<string, Leaf>;
  global: SecondWindow;
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

/** The flow a group is keyed by: the client's source port changes per connection, so it is left out. */
export function flowKeyOf(f: Flow | null): string | null {
  if (f === null) return null;
  if (f.type !== undefined) return `${f.proto} ${f.src} → ${f.dst} type ${f.type}/${f.code ?? '?'}`;
  return `${f.proto} ${f.src} → ${hostPort(f.dst, f.dport)}`;
}

export function flowText(f: Flow | null): string {
  if (f === null) return '(no IP header)';
  if (f.type !== undefined) return `${f.proto} ${f.src} → ${f.dst} type ${f.type}/${f.code ?? '?'}`;
  return `${f.proto} ${hostPort(f.src, f.sport)} → ${hostPort(f.dst, f.dport)}`;
}

/** `example.com A` for a dropped DNS query (the stream parses the question from the packet). */
function dnsName(ev: DropEvent): string | null {
  const q = ev.dns;
  if (q == null || q.name === '') return null;
  return q.type !== '' ? `${q.name} ${q.type}` : q.name;
}

export function emptyData(now: number, tables: Tables | null, netnsNames: Map<number, string>): Data {
  return { leaves: new Map(), global: new SecondWindow(), total: 0, now, lastDrop: 0, folded: 0, tables, netnsNames };
}

export function cloneData(d: Data): Data {
  const leaves = new Map<string, Leaf>();
  for (const [k, l] of d.leaves) {
    leaves.set(k, {
      ...l,
      window: l.window.clone(),
      locations: new Map(l.locations),
      ifnames: new Map(l.ifnames),
      recent: new Map([...l.recent].map(([f, r]) => [f, { ...r }])),
      names: new Set(l.names),
      nexthops: new Map(l.nexthops),
      evidence: new Map(l.evidence),
      services: new Map(l.services),
    });
  }
  return { ...d, leaves, global: d.global.clone(), netnsNames: new Map(d.netnsNames) };
}

function newLeaf(ev: DropEvent, key: string, flowKey: string | null, t: number, tLast: number): Leaf {
  const overflow = key.endsWith('|~overflow');
  return {
    family: ev.family,
    kind: ev.kind,
    reason: ev.reason ?? '',
    netns: overflow ? -1 : ev.netns,
    pod: overflow ? null : ev.pod,
    flowKey: overflow ? '(other flows)' : flowKey,
    src: overflow ? null : (ev.flow?.src ?? null),
    dst: overflow ? null : (ev.flow?.dst ?? null),
    explain: ev.explain,
    hint: ev.hint,
    total: 0,
    first: t,
    last: tLast,
    window: new SecondWindow(),
    locations: new Map(),
    ifnames: new Map(),
    recent: new Map(),
    names: new Set(),
    nexthops: new Map(),
    evidence: new Map(),
    services: new Map(),
    overflow,
    benign: ev.benign === true ? (ev.benign_why ?? 'benign') : null,
    stack: null,
    stackAt: 0,
  };
}

/** Adds one drop line to the aggregate; false when its time cannot be read (counted by the caller). */
export function addDrop(d: Data, ev: DropEvent, maxLeaves: number): boolean {
  const t = timeMs(ev.time);
  if (t === null) return false;
  const tLast = timeMs(ev.last_time) ?? t;
  const n = ev.count > 0 ? ev.count : 1;
  const flow = ev.flow;
  const pod = ev.pod;
  const flowKey = flowKeyOf(flow);
  const podKey = pod ? `${pod.namespace}/${pod.name}/${pod.uid}` : '';
  // benign drops have leaves of their own: the view hides them as a whole
  const benign = ev.benign === true ? '|benign' : '';
  let key = `${ev.kind}|${ev.reason}|${ev.netns}|${podKey}|${flowKey ?? ''}${benign}`;
  let leaf = d.leaves.get(key);
  if (leaf === undefined && d.leaves.size >= maxLeaves) {
    key = `${ev.kind}|${ev.reason}${benign}|~overflow`;
    leaf = d.leaves.get(key);
    d.folded += n;
  }
  if (leaf === undefined) {
    leaf = newLeaf(ev, key, flowKey, t, tLast);
    d.leaves.set(key, leaf);
  }
  // the rule a rule drop's line names (src/host/rules) is what the detail pane says, the newest first
  if (ev.rule !== undefined && !leaf.overflow) [leaf.explain, leaf.hint] = [ev.explain, ev.hint];
  leaf.total += n;
  if (t < leaf.first) leaf.first = t;
  if (tLast > leaf.last) leaf.last = tLast;
  const sec = Math.floor(t / 1000);
  leaf.window.add(sec, n);
  d.global.add(sec, n);
  d.total += n;
  if (ev.location !== '') bump(leaf.locations, ev.location, n, SMALL_MAP);
  if (ev.ifname !== '') bump(leaf.ifnames, ev.ifname, n, SMALL_MAP);
  // a tunnelled drop: the nodes' flow and the pods' inside it
  const exact = withInner(flowText(flow), ev.inner);
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
  if (hop !== undefined && hop !== null && hop !== '') bump(leaf.nexthops, hop, n, SMALL_MAP);
  for (const e of ev.evidence ?? []) bump(leaf.evidence, e, n, SMALL_MAP);
  if (ev.service) bump(leaf.services, serviceText(ev.service, flow), n, SMALL_MAP);
  if (ev.stack !== undefined && ev.stack.length > 0 && tLast >= leaf.stackAt) {
    leaf.stack = ev.stack;
    leaf.stackAt = tLast;
  }
  if (tLast > d.now) d.now = tLast;
  if (tLast > d.lastDrop) d.lastDrop = tLast;
  return true;
}

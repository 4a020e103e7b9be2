/**
 * The fleet as Prometheus sees it: per node (the `node` label every droptrace series carries),
 * drops in a window and per second, its top kinds and pods, neighbour and conntrack table fill,
 * cloud NIC allowance rates and lost events. Built from a handful of instant queries, all
 * evaluated at the same time; pure apart from the QueryFn it is given, so unit tests feed it
 * recorded API answers.
 *
 * Counts are exact: a counter's increase over a window is its value now minus its value at the
 * window's start (0 for a series born inside the window: droptrace creates a series at its
 * first drop). Prometheus' own increase() extrapolates to the window's edges (non-integer
 * counts) and rate() never counts a series' first value (a burst between two scrapes would
 * show as 0/s). Only a series that was reset (droptrace restarted) or vanished in the window
 * falls back to increase().
 */
import type { QueryFn, Sample } from './prom.js';

export const DROPS = 'droptrace_drops_total';
const NIC = 'droptrace_nic_allowance_exceeded_total';
const LOST = 'droptrace_events_lost_total';

/** Label value of series without a `node` label (a droptrace older than the label). */
export const NO_NODE = '(no node label)';

export interface FleetKind {
  kind: string;
  /** drops in the window */
  drops: number;
  /** drops per second over the rate window */
  per_s: number;
}

export interface FleetPod {
  namespace: string;
  pod: string;
  drops: number;
  /** this pod's drops per kind (in the drill-in only: the fleet lists them per node) */
  kinds?: { kind: string; drops: number }[];
}

export interface FleetNode {
  node: string;
  drops: number;
  per_s: number;
  kinds: FleetKind[];
  /** the pods with the most drops in the window (at most POD_LIMIT) */
  pods: FleetPod[];
  /** neighbour table entries / gc_thresh3, per table */
  neigh: { table: string; fill: number }[];
  /** the fullest network namespace's conntrack entries / nf_conntrack_max; null when not reported */
  conntrack_fill: number | null;
  /** cloud NIC allowance counters (summed over interfaces): packets in the window, per second */
  nic_allowance: { counter: string; drops: number; per_s: number }[];
  /** detail events droptrace lost in the window (its counts stay exact) */
  lost_events: number;
}

export interface Fleet {
  /** unix seconds all queries were evaluated at */
  time: number;
  since_s: number;
  rate_window_s: number;
  /** ranked: drops/s, then drops in the window, then name */
  nodes: FleetNode[];
}

export interface FleetWindow {
  /** window of the counts (the `--since`), seconds */
  sinceS: number;
  /** window of the per-second rates, seconds */
  rateS: number;
}

export const POD_LIMIT = 10;
/** Past this a table or an allowance is a warning (the alert rules' threshold). */
export const WARN_FILL = 0.9;

/** `3600` → `3600s`: PromQL durations in whole seconds. */
const dur = (s: number) => `${Math.max(1, Math.round(s))}s`;

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** `metric{sel}`'s exact increase over `w` seconds, per series (see the file comment). */
export function exactIncrease(metric: string, sel: string, w: number): string {
  const m = `${metric}${sel ? `{${sel}}` : ''}`;
  const d = dur(w);
  return `((${m} - (${m} offset ${d} or ${m} * 0)) unless (resets(${m}[${d}]) > 0)) or increase(${m}[${d}])`;
}

/** The queries of one fleet snapshot, by what they answer. */
export const QUERY_NAMES = ['kindDrops', 'kindRate', 'pods', 'neigh', 'conntrack', 'nicDrops', 'nicRate', 'lost', 'up'] as const;
export type QueryName = (typeof QUERY_NAMES)[number];

export function fleetQueries(w: FleetWindow): Record<QueryName, string> {
  const ex = (metric: string, by: string, win: number, sel = '') => `sum by (${by}) (${exactIncrease(metric, sel, win)})`;
  return {
    kindDrops: ex(DROPS, 'node, kind', w.sinceS),
    kindRate: `${ex(DROPS, 'node, kind', w.rateS)} / ${Math.max(1, Math.round(w.rateS))}`,
    pods: `topk by (node) (${POD_LIMIT}, ${ex(DROPS, 'node, namespace, pod', w.sinceS, 'pod!=""')} > 0)`,
    neigh: 'max by (node, table) (droptrace_neigh_fill_ratio)',
    conntrack: 'max by (node) (droptrace_conntrack_fill_ratio)',
    nicDrops: ex(NIC, 'node, counter', w.sinceS),
    nicRate: `${ex(NIC, 'node, counter', w.rateS)} / ${Math.max(1, Math.round(w.rateS))}`,
    lost: ex(LOST, 'node', w.sinceS),
    // nodes that run droptrace now, dropping or not
    up: 'max by (node) (droptrace_info)',
  };
}

/** One node's pods with their kinds, for the drill-in. */
export function podKindsQuery(node: string, w: FleetWindow): string {
  const sel = node === NO_NODE ? 'node="",pod!=""' : `node="${esc(node)}",pod!=""`;
  return `sum by (namespace, pod, kind) (${exactIncrease(DROPS, sel, w.sinceS)}) > 0`;
}

export type Answers = Record<QueryName, Sample[]>;

const nodeOf = (s: Sample) => s.metric.node || NO_NODE;
/** counts are whole; the float arithmetic of a subtraction must not show as 12.000000001 */
const whole = (v: number) => Math.max(0, Math.round(v));
const byDesc = <T>(key: (x: T) => number, name: (x: T) => string) => (a: T, b: T) => key(b) - key(a) || name(a).localeCompare(name(b));

/** The model from the answers of fleetQueries (each an instant vector). */
export function buildFleet(a: Answers, time: number, w: FleetWindow): Fleet {
  const nodes = new Map<string, FleetNode>();
  const node = (name: string): FleetNode => {
    let n = nodes.get(name);
    if (!n) nodes.set(name, (n = { node: name, drops: 0, per_s: 0, kinds: [], pods: [], neigh: [], conntrack_fill: null, nic_allowance: [], lost_events: 0 }));
    return n;
  };
  const kind = (n: FleetNode, k: string): FleetKind => {
    let x = n.kinds.find((e) => e.kind === k);
    if (!x) n.kinds.push((x = { kind: k, drops: 0, per_s: 0 }));
    return x;
  };
  const nic = (n: FleetNode, c: string) => {
    let x = n.nic_allowance.find((e) => e.counter === c);
    if (!x) n.nic_allowance.push((x = { counter: c, drops: 0, per_s: 0 }));
    return x;
  };

  for (const s of a.up) node(nodeOf(s));
  for (const s of a.kindDrops) if (whole(s.value) > 0) kind(node(nodeOf(s)), s.metric.kind ?? '?').drops = whole(s.value);
  for (const s of a.kindRate) if (s.value > 0) kind(node(nodeOf(s)), s.metric.kind ?? '?').per_s = s.value;
  for (const s of a.pods) node(nodeOf(s)).pods.push({ namespace: s.metric.namespace ?? '', pod: s.metric.pod ?? '', drops: whole(s.value) });
  for (const s of a.neigh) node(nodeOf(s)).neigh.push({ table: s.metric.table ?? '?', fill: s.value });
  for (const s of a.conntrack) {
    const n = node(nodeOf(s));
    n.conntrack_fill = Math.max(n.conntrack_fill ?? 0, s.value);
  }
  for (const s of a.nicDrops) if (whole(s.value) > 0) nic(node(nodeOf(s)), s.metric.counter ?? '?').drops = whole(s.value);
  for (const s of a.nicRate) if (s.value > 0) nic(node(nodeOf(s)), s.metric.counter ?? '?').per_s = s.value;
  for (const s of a.lost) node(nodeOf(s)).lost_events += whole(s.value);

  for (const n of nodes.values()) {
    rank(n.kinds);
    n.drops = n.kinds.reduce((t, k) => t + k.drops, 0);
    n.per_s = n.kinds.reduce((t, k) => t + k.per_s, 0);
    n.pods = n.pods.sort(byDesc((p) => p.drops, (p) => `${p.namespace}/${p.pod}`)).slice(0, POD_LIMIT);
    n.neigh.sort((x, y) => x.table.localeCompare(y.table));
    n.nic_allowance.sort((x, y) => x.counter.localeCompare(y.counter));
  }
  return { time, since_s: w.sinceS, rate_window_s: w.rateS, nodes: rank([...nodes.values()], (n) => n.node) };
}

/** drops/s, then drops in the window, then name: the order both lists are shown in. */
function rank<T extends { per_s: number; drops: number }>(xs: T[], name: (x: T) => string = (x) => (x as unknown as FleetKind).kind): T[] {
  return xs.sort((a, b) => b.per_s - a.per_s || b.drops - a.drops || name(a).localeCompare(name(b)));
}

/** Runs every query of one snapshot at the same `time` (unix seconds) and builds the model. */
export async function queryFleet(q: QueryFn, w: FleetWindow, time: number): Promise<Fleet> {
  const qs = fleetQueries(w);
  const answers = await Promise.all(QUERY_NAMES.map((k) => q(qs[k], time)));
  return buildFleet(Object.fromEntries(QUERY_NAMES.map((k, i) => [k, answers[i]!])) as Answers, time, w);
}

/** One node's pods with the kinds of their drops, most drops first. */
export async function queryPodKinds(q: QueryFn, node: string, w: FleetWindow, time: number): Promise<FleetPod[]> {
  const pods = new Map<string, FleetPod>();
  for (const s of await q(podKindsQuery(node, w), time)) {
    const key = `${s.metric.namespace ?? ''}/${s.metric.pod ?? ''}`;
    let p = pods.get(key);
    if (!p) pods.set(key, (p = { namespace: s.metric.namespace ?? '', pod: s.metric.pod ?? '', drops: 0, kinds: [] }));
    p.drops += whole(s.value);
    p.kinds!.push({ kind: s.metric.kind ?? '?', drops: whole(s.value) });
  }
  for (const p of pods.values()) p.kinds!.sort(byDesc((k) => k.drops, (k) => k.kind));
  return [...pods.values()].sort(byDesc((p) => p.drops, (p) => `${p.namespace}/${p.pod}`));
}

/**
 * The fate of every DNS query: each query a netns sends (src/pipeline/dns-decode.ts) is
 * matched with its answer by netns, 5-tuple and id — answered (latency, rcode) — or with a
 * drop of the same flow on this node (the drop pipeline's lines) — dropped — or, when neither
 * comes within the timeout (the resolver's own 5 s by default), unanswered: lost beyond this
 * node. Counted per client netns and resolver, handed out per interval (take()).
 *
 * Pure: messages, drops and the monotonic time come in as arguments; unit-tested without
 * root (test/pipeline/dns-fate.test.ts). Bounded: at most maxPending queries wait, the oldest
 * is evicted (and counted) past that; drops waiting for their query likewise.
 */
import type { DnsMessage } from './dns-decode.js';

export const DEFAULT_DNS_TIMEOUT_MS = 5000;
export const DEFAULT_DNS_PENDING = 65536;
/** latencies kept per group and interval for its percentiles; past it, a uniform sample */
const LATENCY_SAMPLES = 4096;

export const RCODE_NAMES: Record<number, string> = {
  0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED',
};

/** A drop of a port-53 UDP flow, as the drop pipeline describes it. */
export interface DnsDrop {
  monoNs: number;
  netns: number;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** the DNS id when the drop kept the message, else null (any query of the flow) */
  id: number | null;
  /** the dropped packet was an answer (from port 53) */
  response: boolean;
  kind: string;
  /** drops this line stands for (folded repeats) */
  count: number;
}

/** One client netns × resolver over one interval. */
export interface DnsGroupCounts {
  netns: number;
  /** the client address last seen in this group */
  client: string;
  resolver: string;
  resolverPort: number;
  /** queries settled in this interval: answered + dropped + unanswered */
  queries: number;
  answered: number;
  dropped: number;
  unanswered: number;
  /** the same query sent again (same 5-tuple and id) while waiting */
  retransmits: number;
  /** answer latencies in ms (a sample past LATENCY_SAMPLES), unsorted */
  latenciesMs: number[];
  rcodes: Record<string, number>;
  dropKinds: Record<string, number>;
}

export interface DnsFateStats {
  /** queries waiting for their fate now */
  pending: number;
  /** queries pushed out of the full pending table (fate unknown) */
  evicted: number;
  /** answers with no waiting query (after the timeout, or to a query not seen) */
  unmatchedAnswers: number;
  /** drops of DNS answers whose query was not waiting */
  unmatchedDrops: number;
}

export interface DnsFateOptions {
  timeoutMs?: number;
  maxPending?: number;
  /** for the latency sample past LATENCY_SAMPLES (tests pass a fixed one) */
  random?: () => number;
}

interface Pending {
  m: DnsMessage;
  tuple: string;
}

interface HeldDrop {
  d: DnsDrop;
  left: number;
}

const tupleOf = (src: string, sport: number, dst: string, dport: number) => `${src}|${sport}|${dst}|${dport}`;

export class DnsFate {
  private readonly timeoutNs: number;
  private readonly maxPending: number;
  private readonly random: () => number;
  /** netns|tuple|id → the query, in arrival order (so expiry walks from the front) */
  private readonly pending = new Map<string, Pending>();
  /** tuple → keys of pending queries of that flow (any netns: a drop may be in another) */
  private readonly byTuple = new Map<string, Set<string>>();
  /** drops of queries not seen (yet: the two rings are read apart), by tuple, oldest first */
  private readonly held = new Map<string, HeldDrop[]>();
  private heldCount = 0;
  private groups = new Map<string, DnsGroupCounts>();
  readonly stats: DnsFateStats = { pending: 0, evicted: 0, unmatchedAnswers: 0, unmatchedDrops: 0 };

  constructor(o: DnsFateOptions = {}) {
    this.timeoutNs = (o.timeoutMs ?? DEFAULT_DNS_TIMEOUT_MS) * 1e6;
    this.maxPending = o.maxPending ?? DEFAULT_DNS_PENDING;
    this.random = o.random ?? Math.random;
  }

  message(m: DnsMessage): void {
    if (m.dir === 'query') this.query(m);
    else this.answer(m);
  }

  private query(m: DnsMessage): void {
    const tuple = tupleOf(m.src, m.sport, m.dst, m.dport);
    const key = `${m.netns}|${tuple}|${m.id}`;
    if (this.pending.has(key)) {
      this.group(m.netns, m.src, m.dst, m.dport).retransmits++;
      return;
    }
    const h = this.takeHeld(tuple, m.id);
    if (h) {
      this.settleDropped(m.netns, m.src, m.dst, m.dport, h.kind);
      return;
    }
    if (this.pending.size >= this.maxPending) {
      const oldest = this.pending.keys().next().value as string;
      this.remove(oldest);
      this.stats.evicted++;
    }
    this.pending.set(key, { m, tuple });
    let s = this.byTuple.get(tuple);
    if (!s) this.byTuple.set(tuple, (s = new Set()));
    s.add(key);
  }

  private answer(m: DnsMessage): void {
    // the answer's flow is the query's turned round
    const key = `${m.netns}|${tupleOf(m.dst, m.dport, m.src, m.sport)}|${m.id}`;
    const p = this.pending.get(key);
    if (!p) {
      this.stats.unmatchedAnswers++;
      return;
    }
    this.remove(key);
    const g = this.group(p.m.netns, p.m.src, p.m.dst, p.m.dport);
    g.queries++;
    g.answered++;
    const ms = Math.max(0, m.monoNs - p.m.monoNs) / 1e6;
    if (g.latenciesMs.length < LATENCY_SAMPLES) g.latenciesMs.push(ms);
    else {
      // reservoir sample: each answer of the interval equally likely to be kept
      const j = Math.floor(this.random() * g.answered);
      if (j < LATENCY_SAMPLES) g.latenciesMs[j] = ms;
    }
    const rc = RCODE_NAMES[m.rcode] ?? `RCODE${m.rcode}`;
    g.rcodes[rc] = (g.rcodes[rc] ?? 0) + 1;
  }

  /** A drop of a port-53 UDP flow on this node: the queries it stands for are dropped. */
  drop(d: DnsDrop): void {
    const tuple = d.response ? tupleOf(d.dst, d.dport, d.src, d.sport) : tupleOf(d.src, d.sport, d.dst, d.dport);
    let left = d.count;
    const keys = this.byTuple.get(tuple);
    if (keys) {
      for (const key of [...keys]) {
        if (left === 0) break;
        const p = this.pending.get(key)!;
        if (d.id !== null && p.m.id !== d.id) continue;
        this.remove(key);
        this.settleDropped(p.m.netns, p.m.src, p.m.dst, p.m.dport, d.kind);
        left--;
      }
    }
    if (left === 0) return;
    if (d.response) {
      // an answer dropped on its way in: its query was already settled, or never seen here
      this.stats.unmatchedDrops += left;
      return;
    }
    // a query dropped before it reached a device (OUTPUT), or whose record is still on its way
    let list = this.held.get(tuple);
    if (!list) this.held.set(tuple, (list = []));
    list.push({ d, left });
    this.heldCount += left;
    while (this.heldCount > this.maxPending) this.releaseOldestHeld();
  }

  /** Settles what the timeout settles at monotonic time `nowNs`. */
  tick(nowNs: number): void {
    for (const [key, p] of this.pending) {
      if (nowNs - p.m.monoNs < this.timeoutNs) break;
      this.remove(key);
      const g = this.group(p.m.netns, p.m.src, p.m.dst, p.m.dport);
      g.queries++;
      g.unanswered++;
    }
    // a held drop no query claimed within the timeout: a query dropped before any device
    for (const [tuple, list] of this.held) {
      while (list.length && nowNs - list[0]!.d.monoNs >= this.timeoutNs) this.releaseHeld(tuple, list);
      if (!list.length) this.held.delete(tuple);
    }
    this.stats.pending = this.pending.size;
  }

  /** The groups settled since the last take(), and a new interval. */
  take(): DnsGroupCounts[] {
    const out = [...this.groups.values()];
    this.groups = new Map();
    this.stats.pending = this.pending.size;
    return out;
  }

  private group(netns: number, client: string, resolver: string, port: number): DnsGroupCounts {
    const k = `${netns}|${resolver}|${port}`;
    let g = this.groups.get(k);
    if (!g) {
      g = {
        netns, client, resolver, resolverPort: port,
        queries: 0, answered: 0, dropped: 0, unanswered: 0, retransmits: 0,
        latenciesMs: [], rcodes: {}, dropKinds: {},
      };
      this.groups.set(k, g);
    }
    g.client = client;
    return g;
  }

  private settleDropped(netns: number, client: string, resolver: string, port: number, kind: string): void {
    const g = this.group(netns, client, resolver, port);
    g.queries++;
    g.dropped++;
    g.dropKinds[kind] = (g.dropKinds[kind] ?? 0) + 1;
  }

  private remove(key: string): void {
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    const s = this.byTuple.get(p.tuple);
    s?.delete(key);
    if (s?.size === 0) this.byTuple.delete(p.tuple);
  }

  private takeHeld(tuple: string, id: number): DnsDrop | null {
    const list = this.held.get(tuple);
    if (!list) return null;
    const i = list.findIndex((h) => h.d.id === null || h.d.id === id);
    if (i < 0) return null;
    const h = list[i]!;
    h.left--;
    this.heldCount--;
    if (h.left === 0) list.splice(i, 1);
    if (!list.length) this.held.delete(tuple);
    return h.d;
  }

  private releaseHeld(tuple: string, list: HeldDrop[]): void {
    const h = list.shift()!;
    this.heldCount -= h.left;
    for (let i = 0; i < h.left; i++) this.settleDropped(h.d.netns, h.d.src, h.d.dst, h.d.dport, h.d.kind);
    if (!list.length) this.held.delete(tuple);
  }

  private releaseOldestHeld(): void {
    const [tuple, list] = this.held.entries().next().value as [string, HeldDrop[]];
    this.releaseHeld(tuple, list);
  }
}

/** The p-quantile (0..1) of `xs` by the nearest-rank method; null for none. Sorts `xs`. */
export function quantile(xs: number[], p: number): number | null {
  if (!xs.length) return null;
  xs.sort((a, b) => a - b);
  return xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(p * xs.length) - 1))]!;
}

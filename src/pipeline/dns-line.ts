/*
 * NOTE TO THE HELPER WORKING ON THIS BRANCH: a second helper, started at 18:07 UTC and told this
 * worktree's first helper had been interrupted, wrote this file at 18:10 over yours by mistake
 * (yours was untracked: its text is lost). At 18:12 it rewrote it to export what your
 * dns-stage.ts imports (DnsLine, dnsLine, DnsVerdict: noteCounters, judge) so the build holds;
 * check it against what you meant. It also committed 4f41120 (test/pipeline/dns-fate.test.ts,
 * 12 tests; encodeDnsRecord no longer asks for monoNs). It edits nothing more here.
 */
/**
 * The `dns` line (docs/ndjson.md, schema/ndjson.schema.json): one client netns × resolver over
 * one interval — queries settled, how (answered, dropped on this node, unanswered), latency
 * percentiles, rcodes — and, when queries went unanswered with no drop on this node to explain
 * them, the verdict: one sentence saying the loss happened beyond this node, with the NIC
 * allowance counters that rose in the same seconds (the cloud's limits) when the NIC has them.
 * The stream's side is src/pipeline/dns-stage.ts.
 */
import type { CountersLine } from '../host/counters-line.js';
import { quantile } from './dns-fate.js';
import type { DnsDrop, DnsGroupCounts } from './dns-fate.js';
import type { DropEvent, Pod } from './events.js';

export interface DnsLine {
  type: 'dns';
  time: string;
  /** seconds the line covers: queries settled in them */
  interval_s: number;
  /** the client's network namespace (inode) */
  netns: number;
  pod: Pod | null;
  client: string;
  resolver: string;
  resolver_port: number;
  queries: number;
  answered: number;
  dropped: number;
  unanswered: number;
  /** unanswered / queries, 0 to 1, three decimals */
  unanswered_share: number;
  retransmits: number;
  /** answer latency percentiles in ms (null: no answer) */
  latency_ms: { p50: number; p99: number } | null;
  rcodes: Record<string, number>;
  nxdomain: number;
  servfail: number;
  /** kinds of the drops on this node that settled queries */
  drop_kinds: Record<string, number>;
  /** NIC allowance counters rising in the same seconds, per second (only with a verdict) */
  allowance?: Record<string, number>;
  /** when queries went unanswered: where they were lost, in one sentence */
  verdict?: string;
}

/** What each allowance counter rising means for DNS that is not answered. */
const ALLOWANCE_LIMIT: Record<string, string> = {
  linklocal_allowance_exceeded: "the cloud resolver's packet limit",
  conntrack_allowance_exceeded: "the cloud's connection-tracking limit",
  pps_allowance_exceeded: "the instance's packet-rate limit",
  bw_in_allowance_exceeded: "the instance's inbound bandwidth limit",
  bw_out_allowance_exceeded: "the instance's outbound bandwidth limit",
};

const round3 = (x: number) => Math.round(x * 1000) / 1000;

export function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/**
 * The verdict of one group, or null when every query was answered or dropped on this node.
 * `allowance`: the allowance counters that rose (per second) in the same seconds.
 */
export function dnsVerdict(g: Pick<DnsLine, 'pod' | 'netns' | 'client' | 'resolver' | 'resolver_port' | 'queries' | 'unanswered' | 'dropped' | 'drop_kinds' | 'interval_s'>, allowance: Record<string, number>): string | null {
  if (g.unanswered === 0 || g.queries === 0) return null;
  const who = g.pod ? `${g.pod.namespace}/${g.pod.name}` : `${g.client} (netns ${g.netns})`;
  const share = Math.round((100 * g.unanswered) / g.queries);
  const kinds = Object.keys(g.drop_kinds).join(', ');
  const here = g.dropped === 0 ? 'none dropped on this node' : `${g.dropped} more dropped on this node (${kinds})`;
  const head = `DNS from ${who} to ${hostPort(g.resolver, g.resolver_port)}: ${share}% unanswered in the last ${Math.max(1, Math.round(g.interval_s))} s, ${here}`;
  const rising = Object.entries(allowance)
    .filter(([, r]) => r > 0)
    .sort((a, b) => b[1] - a[1]);
  if (!rising.length) return `${head}; lost beyond this node, between it and the resolver ${g.resolver}`;
  const [top] = rising[0]!;
  const counters = rising.map(([k, r]) => `${k} +${Math.round(r)}/s`).join(', ');
  return `${head}; ${counters} — ${ALLOWANCE_LIMIT[top] ?? 'a limit of the cloud provider'}`;
}

/** A drop line of a UDP port-53 flow as the matcher takes it; null for any other drop. */
export function dnsDropOf(ev: DropEvent, nowNs: number): DnsDrop | null {
  const f = ev.flow;
  if (!f || f.proto !== 'udp' || f.sport === undefined || f.dport === undefined) return null;
  if (f.sport !== 53 && f.dport !== 53) return null;
  return {
    monoNs: nowNs,
    netns: ev.netns,
    src: f.src,
    dst: f.dst,
    sport: f.sport,
    dport: f.dport,
    id: ev.dns?.id ?? null,
    response: ev.dns?.response ?? (f.sport === 53 && f.dport !== 53),
    kind: ev.kind,
    count: ev.count,
  };
}

/** One group's line without its verdict (DnsVerdict.judge adds it). */
export function dnsLine(g: DnsGroupCounts, time: string, intervalS: number, pod: Pod | null): DnsLine {
  const p50 = quantile(g.latenciesMs, 0.5);
  const p99 = quantile(g.latenciesMs, 0.99);
  return {
    type: 'dns',
    time,
    interval_s: round3(intervalS),
    netns: g.netns,
    pod,
    client: g.client,
    resolver: g.resolver,
    resolver_port: g.resolverPort,
    queries: g.queries,
    answered: g.answered,
    dropped: g.dropped,
    unanswered: g.unanswered,
    unanswered_share: g.queries ? round3(g.unanswered / g.queries) : 0,
    retransmits: g.retransmits,
    latency_ms: p50 === null || p99 === null ? null : { p50: round3(p50), p99: round3(p99) },
    rcodes: g.rcodes,
    nxdomain: g.rcodes.NXDOMAIN ?? 0,
    servfail: g.rcodes.SERVFAIL ?? 0,
    drop_kinds: g.dropKinds,
  };
}

/**
 * The NIC allowance counters' rates of the counters lines of the last `windowS` seconds (the
 * largest per counter), and the verdict of a line from them.
 */
export class DnsVerdict {
  private seen: Array<{ at: number; rates: Record<string, number> }> = [];
  /** each group's recent lines (netns|resolver|port), within the window */
  private readonly groups = new Map<string, Array<{ at: number; interval_s: number; queries: number; unanswered: number; dropped: number }>>();
  constructor(
    private readonly windowS = 60,
    private readonly clockMs: () => number = () => Date.now(),
  ) {}

  noteCounters(l: CountersLine): void {
    const rates: Record<string, number> = {};
    for (const n of l.nic) {
      for (const k of Object.keys(n.allowance)) {
        const r = n.rates?.[k];
        if (r != null && r > 0 && k in ALLOWANCE_LIMIT) rates[k] = Math.max(rates[k] ?? 0, r);
      }
    }
    const at = this.clockMs();
    this.seen = this.seen.filter((s) => at - s.at <= this.windowS * 1000);
    if (Object.keys(rates).length) this.seen.push({ at, rates });
  }

  judge(line: DnsLine): DnsLine {
    const at = this.clockMs();
    const allowance: Record<string, number> = {};
    for (const s of this.seen) {
      if (at - s.at > this.windowS * 1000) continue;
      for (const [k, r] of Object.entries(s.rates)) allowance[k] = Math.max(allowance[k] ?? 0, round3(r));
    }
    // the share over the window's lines of this group, not this interval's alone
    const key = `${line.netns}|${line.resolver}|${line.resolver_port}`;
    const past = (this.groups.get(key) ?? []).filter((g) => at - g.at < this.windowS * 1000);
    past.push({ at, interval_s: line.interval_s, queries: line.queries, unanswered: line.unanswered, dropped: line.dropped });
    this.groups.set(key, past);
    const first = past[0]!;
    const sum = { ...line, interval_s: Math.min(this.windowS, (at - first.at) / 1000 + first.interval_s), queries: 0, unanswered: 0, dropped: 0 };
    for (const g of past) {
      sum.queries += g.queries;
      sum.unanswered += g.unanswered;
      sum.dropped += g.dropped;
    }
    // a line with nothing unanswered needs no verdict, whatever came before it
    const verdict = line.unanswered ? dnsVerdict(sum, allowance) : null;
    if (verdict !== null) {
      line.verdict = verdict;
      if (Object.keys(allowance).length) line.allowance = allowance;
    }
    return line;
  }
}

/**
 * Decoded drops → the public NDJSON `drop` objects (docs/ndjson.md, schema/ndjson.schema.json).
 * Repeats of one key within a batch are folded into one object with `count` > 1.
 */
import { benignWhy } from './benign.js';
import { classify, classifyReadsFlowAt } from './classify.js';
import type { Certainty, Classification, Family } from './classify.js';
import { classifyByLocation, isLocationKey, locationReadsDrop } from './classify-location.js';
import type { DropTime, LineTime, WallClock } from './clock.js';
import type { CountersLine } from '../host/counters-line.js';
import type { DropRule } from '../host/rules/types.js';
import type { RulesStats } from '../host/rules/stage.js';
import { parseDnsQuestion } from './dns.js';
import { explain, explainReads, explainTunnel } from './explain.js';
import { FLAGS } from './layout.js';
import { l4PayloadOffset } from './packet.js';
import type { Explanation, MartianDetail, NeighDetail, SysctlReader } from './explain.js';
import { PROTO_NAMES } from './decode.js';
import type { RawDrop } from './decode.js';
import type { Symbolizer } from './kallsyms.js';
import type { StackResolver } from './stacks.js';
import { KeyTable } from './keytable.js';
import { NeighPressure, neighTableOf } from './neigh-pressure.js';
import type { NeighOverflow } from './neigh-pressure.js';
import type { ReasonNames } from './reasons.js';
import { serviceClause, serviceRef } from './service.js';
import type { ServiceRef } from './service.js';
import { sameInner } from './overlay.js';
import type { InnerFlow } from './overlay.js';

export const SCHEMA_VERSION = 1;

export interface Flow {
  proto: string;
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  type?: number;
  code?: number;
}

export interface Pod {
  namespace: string;
  name: string;
  uid: string;
}

export interface DropEvent {
  type: 'drop';
  /** numbers until a sink writes the line (src/pipeline/clock.ts) */
  time: LineTime;
  family: Family;
  kind: string;
  /** null: this kernel's kfree_skb gives no reason (before 5.17) */
  reason: string | null;
  location: string;
  netns: number;
  ifname: string;
  ifindex: number;
  flow: Flow | null;
  pod: Pod | null;
  count: number;
  /** one sentence in an engineer's words */
  explain: string;
  /** the knob or the next step, with current values */
  hint: string;
  /** how sure family/kind are (src/pipeline/classify.ts) */
  certainty?: Certainty;
  /** the signals that decided a conntrack kind */
  evidence?: string[];
  neigh?: NeighDetail;
  martian?: MartianDetail;
  conntrack?: { nf_conntrack_max: number | null };
  /** added by enrichment (src/enrich): which rule matched the pod */
  pod_match?: 'netns' | 'src' | 'dst' | 'inner_src' | 'inner_dst';
  /** true: drops the kernel counted but sent no detail for (rate limit, full ring buffer) */
  folded?: boolean;
  /** DNS question of a dropped query (UDP/TCP port 53) */
  dns?: { name: string; type: string; id: number; response: boolean } | null;
  last_time?: DropTime | string;
  /** the destination before DNAT (a Service's ClusterIP and port); `flow` holds the translated one */
  service?: ServiceRef;
  /** true: the packet ended (or its headers were not in the readable part) before the
   * headers the flow needs; `flow` holds only what it had */
  truncated?: true;
  /** netfilter_rule drops: the rule that dropped it, from its netns's rule counters (src/host/rules) */
  rule?: DropRule;
  /** a VXLAN/Geneve datagram: the flow inside it (the pods'; `flow` is the nodes') */
  inner?: InnerFlow;
  /** a drop every healthy node makes (src/pipeline/benign.ts), and why */
  benign?: true;
  benign_why?: string;
  /** --stack: the kernel stack of one of a key's first drops, innermost frame first (src/pipeline/stacks.ts) */
  stack?: readonly string[];
}

export interface StartLine {
  type: 'start';
  schema: number;
  time: string;
  version: string;
  node: string;
  kernel: string;
  /** expr: the --filter text, only when one was given */
  filter: { netns: number | null; expr?: string };
  /** every hook tried: attached, standby, unavailable, or waiting (for its module: see the stats line's probes) */
  probes: Array<{ probe: string; hook: string; state: string; why?: string }>;
  /** pod attribution sources: "file (3 pods), discovery, api (...)", or "none" */
  attribution: string;
}

export interface StatsLine {
  type: 'stats';
  time: string;
  final: boolean;
  events: number;
  /** drops written as folded lines (counted in the kernel, no detail event) */
  folded: number;
  /** drops no line stands for: evicted before folded, no lost-key place, undecodable, shed (always
   * written by this version; absent from older recorded streams) */
  unfolded?: number;
  /** stdout: drops whose lines a stalled stdout reader cost (droptrace stream only) */
  lost: { ring_buffer: number; userspace: number; stdout?: number; total: number };
  decode_errors: number;
  /** --filter: drops (sum of count) in the drop lines the filter left out; only with a filter */
  filtered?: number;
  enrichment_failures: number;
  /** host samples that failed (counters lines not written) */
  counters_failures: number;
  /** throws in the batch path and errors the tracer reported (the first one ends the stream) */
  failures?: number;
  /** --pcap: packets and bytes written, packets not written past --pcap-max */
  pcap?: { packets: number; bytes: number; skipped: number; limit_reached: boolean };
  /** rule attribution of netfilter_rule drops (src/host/rules/stage.ts), when it runs */
  rules?: RulesStats;
  /**
   * --stack, per detail event the kernel sent: its stack taken (the first --stack-per-key of
   * its key), not taken (its key had them), or taking it failed (a stack-map hash collision);
   * unreadable: taken, but the line went without it (the map had no such id). Only with --stack.
   */
  stacks?: { taken: number; not_taken: number; failed: number; unreadable: number };
  /**
   * each probe now: attached (its hook), waiting (for a module: attached when it loads, in a
   * stats line of its own) or unavailable (always written by this version of a live stream)
   */
  probes?: Array<{ probe: string; state: 'attached' | 'waiting' | 'unavailable'; hook?: string; why?: string }>;
  /**
   * --dns: DNS messages the kernel saw, lost on the way (ring full, JS behind, undecodable),
   * queries waiting now, pushed out of the full pending table, answers and drops of answers
   * with no waiting query
   */
  dns?: {
    seen: number;
    lost: { ring_buffer: number; userspace: number };
    decode_errors: number;
    pending: number;
    evicted: number;
    unmatched_answers: number;
    unmatched_drops: number;
  };
  kernel: {
    drops: number;
    suppressed: number;
    by_reason: Record<string, number>;
    neigh_create_failed?: { ipv4: number; ipv6: number };
  };
}

/** Host table levels: neighbour, conntrack, NIC counters (fields: src/host/counters-line.ts). */
export type { CountersLine };

import type { DnsLine } from './dns-line.js';
export type { DnsLine };

export type StreamLine = StartLine | DropEvent | StatsLine | CountersLine | DnsLine;

/** The DNS message of a port-53 drop: the L4 payload, found in an IP-header capture if need be. */
function dnsPayload(d: RawDrop): Uint8Array | null {
  if (!d.payload || (d.sport !== 53 && d.dport !== 53)) return null;
  if (!(d.flags & FLAGS.PAYLOAD_L3)) return d.payload;
  const off = l4PayloadOffset(d.payload);
  return off > 0 && off < d.payload.length ? d.payload.subarray(off) : null;
}

export function flowOf(d: RawDrop): Flow | null {
  if (d.src === null || d.dst === null) return null;
  const proto = PROTO_NAMES[d.l4Proto] ?? `ip-${d.l4Proto}`;
  // whole literals (same fields, same order): no fields added one by one to a made object
  if (d.sport !== null && d.dport !== null) return { proto, src: d.src, dst: d.dst, sport: d.sport, dport: d.dport };
  if (d.icmpType !== null && d.icmpCode !== null) return { proto, src: d.src, dst: d.dst, type: d.icmpType, code: d.icmpCode };
  return { proto, src: d.src, dst: d.dst };
}

/**
 * What every drop of one (reason, location, conntrack flags, martian flags) shares: names,
 * classification, and the explanation when it reads nothing else. Busy nodes drop at a
 * handful of places for a handful of reasons, so this is built once per combination, not per
 * drop.
 */
interface Description {
  reasonNum: number;
  locationAddr: bigint;
  ctFlags: number;
  martianConf: number;
  reason: string | null;
  location: string;
  /** null: classify() reads the flow for this reason at this place */
  c: Classification | null;
  reads: 'none' | 'netns' | 'drop' | 'sysctl';
  /** reads 'none': the one explanation */
  x: Explanation | null;
  /** reads 'netns': one explanation per netns, bounded */
  byNetns: Map<number, Explanation> | null;
  /** why drops of this reason at this place are routine, or null */
  benign: string | null;
}

/** With a drop reason, classify(); without (before 5.17), by the place (src/pipeline/classify-location.ts). */
function classifyDrop(reason: string | null, location: string, d: RawDrop): Classification {
  if (reason !== null) return classify({ reason, location, src: d.src, dst: d.dst, ctFlags: d.ctFlags, martianConf: d.martianConf });
  return classifyByLocation({ location, src: d.src, dst: d.dst, ctFlags: d.ctFlags, martianConf: d.martianConf, rpFilter: d.rpFilter, neighFailed: d.neigh !== null });
}

/** Slots of the description cache, and how many places a description may take (a miss only costs building one again). */
const DESCRIPTION_SLOTS = 1024;
const DESCRIPTION_WAYS = 4;
/** Netns explanations kept per description before starting over. */
const NETNS_EXPLANATIONS = 1024;

export class EventBuilder {
  /** DNS payloads that did not parse (counted as enrichment failures) */
  dnsFailures = 0;
  private readonly descriptions = new Array<Description | null>(DESCRIPTION_SLOTS).fill(null);
  /** fold(): the keys of this batch; per key its first event, and per event the next of the same key */
  private readonly batchKeys = new KeyTable(1024);
  private readonly firstOfKey: number[] = [];
  private readonly sameKey: number[] = [];
  private readonly firstDrop: RawDrop[] = [];
  private readonly lastNs: number[] = [];
  /** --stack: names the stacks records carry; null without --stack */
  stacks: StackResolver | null = null;

  constructor(
    private readonly reasons: ReasonNames,
    private readonly symbols: Symbolizer,
    private readonly clock: WallClock,
    private readonly sysctl: SysctlReader,
    /** neigh_table_full seen lately, for the neigh_resolution_failed that follow */
    readonly neighPressure = new NeighPressure(),
  ) {}

  private description(d: RawDrop): Description {
    const home = (Math.imul(d.reason ^ Math.imul(d.locationLow, 0x9e3779b1) ^ (d.ctFlags << 8) ^ (d.martianConf << 16), 0x85ebca6b) >>> 20) & (DESCRIPTION_SLOTS - 1);
    // a few places per description, so two that share a slot do not evict each other forever
    let slot = home;
    for (let way = 0; way < DESCRIPTION_WAYS; way++) {
      const at = (home + way) & (DESCRIPTION_SLOTS - 1);
      const hit = this.descriptions[at];
      if (!hit) {
        slot = at;
        break;
      }
      if (hit.reasonNum === d.reason && hit.locationAddr === d.location && hit.ctFlags === d.ctFlags && hit.martianConf === d.martianConf) return hit;
    }
    // a kernel without drop reasons puts the place in the key's reason (isLocationKey)
    const reason = this.reasons.present || !isLocationKey(d.reason) ? this.reasons.name(d.reason) : null;
    const location = this.symbols.lookup(d.location);
    const perDrop = reason === null ? locationReadsDrop(location) : classifyReadsFlowAt(reason, location, d.martianConf);
    const c = perDrop ? null : classifyDrop(reason, location, d);
    const reads = c ? explainReads(c.kind) : 'sysctl';
    const desc: Description = {
      reasonNum: d.reason,
      locationAddr: d.location,
      ctFlags: d.ctFlags,
      martianConf: d.martianConf,
      reason,
      location,
      c,
      reads,
      x: null,
      byNetns: reads === 'netns' ? new Map() : null,
      benign: benignWhy(reason, location),
    };
    this.descriptions[slot] = desc;
    return desc;
  }

  private explanation(desc: Description, c: Classification, d: RawDrop, overflow?: NeighOverflow): Explanation {
    if (desc.reads === 'none') return (desc.x ??= explain(c, d, desc.reason, this.sysctl, desc.location));
    if (desc.byNetns) {
      let x = desc.byNetns.get(d.netns);
      if (x === undefined) {
        if (desc.byNetns.size >= NETNS_EXPLANATIONS) desc.byNetns.clear();
        x = explain(c, d, desc.reason, this.sysctl, desc.location);
        desc.byNetns.set(d.netns, x);
      }
      return x;
    }
    return explain(c, d, desc.reason, this.sysctl, desc.location, overflow);
  }

  build(d: RawDrop): DropEvent {
    return this.make(d, true);
  }

  /**
   * build() for a line made again from the same drop (folded lines, src/pipeline/fold.ts; the --pcap
   * comment, src/pipeline/stream.ts): a DNS payload that did not parse is counted when fold() builds it.
   */
  describe(d: RawDrop): DropEvent {
    return this.make(d, false);
  }

  private make(d: RawDrop, countFailures: boolean): DropEvent {
    const desc = this.description(d);
    const { reason, location } = desc;
    const c = desc.c ?? classifyDrop(reason, location, d);
    let overflow: NeighOverflow | undefined;
    if (c.kind === 'neigh_table_full') this.neighPressure.noteFull(d.netns, neighTableOf(d));
    else if (c.kind === 'neigh_resolution_failed') overflow = this.neighPressure.recent(d.netns, neighTableOf(d));
    const x = desc.c ? this.explanation(desc, c, d, overflow) : explain(c, d, reason, this.sysctl, location, overflow);
    const ev: DropEvent = {
      type: 'drop',
      time: this.clock.at(d.monoDeltaNs),
      family: c.family,
      kind: c.kind,
      reason,
      location,
      netns: d.netns,
      ifname: d.ifname,
      ifindex: d.ifindex,
      flow: flowOf(d),
      pod: null,
      count: 1,
      explain: x.explain,
      hint: x.hint,
      certainty: c.certainty ?? 'exact',
      // every field set later is here from the start, in the order lines have always had them:
      // setting one changes no object's shape, and JSON leaves out those still undefined
      evidence: undefined,
      dns: undefined,
      neigh: undefined,
      martian: undefined,
      conntrack: undefined,
      last_time: undefined,
      pod_match: undefined,
      truncated: undefined,
      service: undefined,
      inner: undefined,
      benign: undefined,
      benign_why: undefined,
      stack: undefined,
    };
    if (d.flags & FLAGS.TRUNCATED) ev.truncated = true;
    if (d.inner !== undefined) {
      ev.inner = d.inner;
      ev.explain = explainTunnel(ev.explain, d.inner, d.src, d.dst);
    }
    if (c.evidence) ev.evidence = c.evidence;
    const svc = d.service ? serviceClause(d.service, d) : '';
    if (d.service) ev.service = serviceRef(d.service);
    const dnsBytes = dnsPayload(d);
    const q = dnsBytes ? parseDnsQuestion(dnsBytes, d.l4Proto === 6) : undefined;
    if (dnsBytes) {
      if (!q && countFailures) this.dnsFailures++;
      ev.dns = q;
    }
    if (q) ev.explain = `DNS ${q.response ? 'answer' : 'query'} for ${q.name} (${q.type})${svc && ' ' + svc} dropped: ${ev.explain}`;
    else if (svc) ev.explain = `packet ${svc} dropped: ${ev.explain}`;
    if (x.neigh) ev.neigh = x.neigh;
    if (x.martian) ev.martian = x.martian;
    if (x.conntrack) ev.conntrack = { nf_conntrack_max: x.conntrack.nf_conntrack_max };
    if (desc.benign !== null) {
      ev.benign = true;
      ev.benign_why = desc.benign;
    }
    if (d.stackId >= 0 && this.stacks && countFailures) ev.stack = this.stacks.stack(d.stackId, d.location) ?? undefined;
    return ev;
  }

  /**
   * Builds one batch into `events`, folding repeats of the same key; order of first appearance
   * is kept. `firsts[i]` is the index in `drops` of the first of the drops of `events[i]` (the
   * one it was built from: its record holds their per-key counter key). Both are emptied
   * first: the caller reuses them for every batch. Drops are told apart by the key in their
   * record's bytes; one without a record is never folded.
   */
  fold(drops: RawDrop[], events: DropEvent[] = [], firsts: number[] = []): DropEvent[] {
    events.length = 0;
    firsts.length = 0;
    const { batchKeys, firstOfKey, sameKey, firstDrop, lastNs } = this;
    for (let i = 0; i < drops.length; i++) {
      const d = drops[i]!;
      // DNS drops are never folded: each carries its own question. Nor are drops with a
      // stack (--stack, a key's first few): each is the line of its own stack, so the stats
      // line's stacks.taken counts lines with a `stack`.
      const own = (d.payload !== null && (d.sport === 53 || d.dport === 53)) || d.stackId >= 0;
      // one lookup: a key seen first here is added now, its first event set below
      const known = batchKeys.size;
      const entry = own || d.record === null ? -1 : batchKeys.add(d.record, d.at);
      let at = entry < 0 || entry >= known ? -1 : firstOfKey[entry]!;
      // the kernel's key (reason, netns, device, flow) and what else tells drops apart
      while (at >= 0) {
        const f = firstDrop[at]!;
        if (f.locationLow === d.locationLow && f.ctFlags === d.ctFlags && f.neigh?.key === d.neigh?.key && f.service?.ip === d.service?.ip && f.service?.port === d.service?.port && sameInner(f.inner, d.inner)) break;
        at = sameKey[at]!;
      }
      if (at >= 0) {
        events[at]!.count++;
        lastNs[at] = d.monoDeltaNs;
        continue;
      }
      const n = events.length;
      events.push(this.make(d, true));
      firsts.push(i);
      firstDrop[n] = d;
      lastNs[n] = d.monoDeltaNs;
      sameKey[n] = -1;
      if (entry < 0) continue;
      if (entry >= known) firstOfKey[entry] = n;
      else {
        // chained after the key's first event; the order of output is the order of `events`
        const head = firstOfKey[entry]!;
        sameKey[n] = sameKey[head]!;
        sameKey[head] = n;
      }
    }
    for (let i = 0; i < events.length; i++) {
      const ev = events[i]!;
      if (ev.count > 1) ev.last_time = this.clock.at(lastNs[i]!);
    }
    // nothing of this batch is kept past it
    batchKeys.clear();
    firstDrop.length = 0;
    return events;
  }
}

/**
 * Decoded drops → the public NDJSON `drop` objects (docs/ndjson.md, schema/ndjson.schema.json).
 * Repeats of one key within a batch are folded into one object with `count` > 1.
 */
import { classify } from './classify.js';
import type { Family } from './classify.js';
import type { WallClock } from './clock.js';
import type { CountersLine } from './host/counters-line.js';
import { parseDnsQuestion } from './dns.js';
import { explain } from './explain.js';
import { FLAGS } from './layout.js';
import { l4PayloadOffset } from './pcap.js';
import type { MartianDetail, NeighDetail, SysctlReader } from './explain.js';
import { PROTO_NAMES } from './decode.js';
import type { RawDrop } from './decode.js';
import type { Symbolizer } from './kallsyms.js';
import type { ReasonNames } from './reasons.js';

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
  time: string;
  family: Family;
  kind: string;
  reason: string;
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
  /** the signals that decided a conntrack kind */
  evidence?: string[];
  neigh?: NeighDetail;
  martian?: MartianDetail;
  conntrack?: { nf_conntrack_max: number | null };
  /** added by enrichment (src/enrich): which rule matched the pod */
  pod_match?: 'netns' | 'src' | 'dst';
  /** true: drops the kernel counted but sent no detail for (rate limit, full ring buffer) */
  folded?: boolean;
  /** DNS question of a dropped query (UDP/TCP port 53) */
  dns?: { name: string; type: string; id: number; response: boolean } | null;
  last_time?: string;
}

export interface StartLine {
  type: 'start';
  schema: number;
  time: string;
  version: string;
  node: string;
  kernel: string;
  filter: { netns: number | null };
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
  /** stdout: drops whose lines a stalled stdout reader cost (droptrace stream only) */
  lost: { ring_buffer: number; userspace: number; stdout?: number; total: number };
  decode_errors: number;
  enrichment_failures: number;
  /** host samples that failed (counters lines not written) */
  counters_failures: number;
  kernel: {
    drops: number;
    suppressed: number;
    by_reason: Record<string, number>;
    neigh_create_failed?: { ipv4: number; ipv6: number };
  };
}

/** Host table levels: neighbour, conntrack, NIC counters (fields: src/host/counters-line.ts). */
export type { CountersLine };

export type StreamLine = StartLine | DropEvent | StatsLine | CountersLine;

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
  const f: Flow = { proto, src: d.src, dst: d.dst };
  if (d.sport !== null && d.dport !== null) {
    f.sport = d.sport;
    f.dport = d.dport;
  } else if (d.icmpType !== null && d.icmpCode !== null) {
    f.type = d.icmpType;
    f.code = d.icmpCode;
  }
  return f;
}

export class EventBuilder {
  /** DNS payloads that did not parse (counted as enrichment failures) */
  dnsFailures = 0;

  constructor(
    private readonly reasons: ReasonNames,
    private readonly symbols: Symbolizer,
    private readonly clock: WallClock,
    private readonly sysctl: SysctlReader,
  ) {}

  build(d: RawDrop): DropEvent {
    const reason = this.reasons.name(d.reason);
    const location = this.symbols.lookup(d.location);
    const c = classify({ reason, location, src: d.src, dst: d.dst, ctFlags: d.ctFlags, martianConf: d.martianConf });
    const { family, kind } = c;
    const x = explain(c, d, reason, this.sysctl, location);
    const ev: DropEvent = {
      type: 'drop',
      time: this.clock.iso(d.monoDeltaNs),
      family,
      kind,
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
    };
    if (c.evidence) ev.evidence = c.evidence;
    const dnsBytes = dnsPayload(d);
    if (dnsBytes) {
      const q = parseDnsQuestion(dnsBytes, d.l4Proto === 6);
      if (!q) this.dnsFailures++;
      ev.dns = q;
      if (q) {
        ev.explain = `DNS ${q.response ? 'answer' : 'query'} for ${q.name} (${q.type}) dropped: ${ev.explain}`;
      }
    }
    if (x.neigh) ev.neigh = x.neigh;
    if (x.martian) ev.martian = x.martian;
    if (x.conntrack) ev.conntrack = { nf_conntrack_max: x.conntrack.nf_conntrack_max };
    return ev;
  }

  /**
   * Builds one batch, folding repeats of the same key; order of first appearance is kept.
   * Each event comes with the kernel's per-key counter key of its drops.
   */
  fold(drops: RawDrop[]): Array<[DropEvent, string]> {
    const byKey = new Map<string, { ev: DropEvent; lastNs: number; key: string }>();
    for (const d of drops) {
      // DNS drops are never folded: each carries its own question.
      const key = d.payload && (d.sport === 53 || d.dport === 53)
        ? `dns|${byKey.size}`
        : // the kernel's key (reason, netns, device, flow) plus what else tells drops apart
          `${d.key}|${d.locationLow}|${d.ctFlags}|${d.neigh?.key}`;
      const hit = byKey.get(key);
      if (hit) {
        hit.ev.count++;
        hit.lastNs = d.monoDeltaNs;
      } else {
        byKey.set(key, { ev: this.build(d), lastNs: d.monoDeltaNs, key: d.key });
      }
    }
    const out: Array<[DropEvent, string]> = [];
    for (const { ev, lastNs, key } of byKey.values()) {
      if (ev.count > 1) ev.last_time = this.clock.iso(lastNs);
      out.push([ev, key]);
    }
    return out;
  }
}

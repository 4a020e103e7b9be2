/**
 * Overlay inner headers: the packet a dropped VXLAN or Geneve datagram carried (the pods'
 * flow; the drop's `flow` is the nodes'), read from the record's inner block that
 * parse_encap (probes/parse.bpf.h) fills. The NDJSON `inner` object (docs/ndjson.md).
 */
import { ENCAP, EVENT_FIELDS as FIELDS, FLAG } from '../gen/record.js';
import { hostPort } from './addr.js';
import type { TextCache } from './addr.js';

export interface InnerFlow {
  /** absent when no inner IP header was read (an ARP frame, headers cut short) */
  proto?: string;
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  /** ICMP type and code, instead of ports */
  type?: number;
  code?: number;
  /** the 24-bit VXLAN/Geneve network identifier */
  vni: number;
  encap: 'vxlan' | 'geneve';
  /** the inner headers ended before the flow did (the datagram was cut short) */
  truncated?: true;
}

const INNER_PROTO: Record<number, string> = { 6: 'tcp', 17: 'udp', 1: 'icmp', 58: 'icmpv6' };

/** The record's inner flow, or undefined when the drop is no tunnel datagram. */
export function innerOf(text: TextCache, buf: Uint8Array, v: DataView, off: number): InnerFlow | undefined {
  const encap = v.getUint8(off + FIELDS.encap[0]);
  if (encap !== ENCAP.VXLAN && encap !== ENCAP.GENEVE) return undefined;
  const flags = v.getUint8(off + FIELDS.inner_flags[0]);
  const vni = v.getUint32(off + FIELDS.inner_vni[0], true);
  const kind = encap === ENCAP.VXLAN ? 'vxlan' : 'geneve';
  const v4 = (flags & FLAG.IPV4) !== 0;
  if (!v4 && !(flags & FLAG.IPV6)) return flags & FLAG.TRUNCATED ? { vni, encap: kind, truncated: true } : { vni, encap: kind };
  const l4 = v.getUint8(off + FIELDS.inner_l4_proto[0]);
  const sa = off + FIELDS.inner_saddr[0];
  const da = off + FIELDS.inner_daddr[0];
  const proto = INNER_PROTO[l4] ?? `ip-${l4}`;
  const src = v4 ? text.ipv4(buf, sa) : text.ipv6(buf, sa);
  const dst = v4 ? text.ipv4(buf, da) : text.ipv6(buf, da);
  const cut = (flags & FLAG.TRUNCATED) !== 0;
  let f: InnerFlow;
  if (!(flags & FLAG.L4)) f = { proto, src, dst, vni, encap: kind };
  else if (l4 === 1 || l4 === 58) {
    f = { proto, src, dst, type: v.getUint8(off + FIELDS.inner_icmp_type[0]), code: v.getUint8(off + FIELDS.inner_icmp_code[0]), vni, encap: kind };
  } else {
    f = { proto, src, dst, sport: v.getUint16(off + FIELDS.inner_sport[0], true), dport: v.getUint16(off + FIELDS.inner_dport[0], true), vni, encap: kind };
  }
  if (cut) f.truncated = true;
  return f;
}

/** Do two drops carry the same inner flow (both none included)? Drops of one key are folded only then. */
export function sameInner(a: InnerFlow | undefined, b: InnerFlow | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return a.vni === b.vni && a.encap === b.encap && a.src === b.src && a.dst === b.dst && a.proto === b.proto && a.sport === b.sport && a.dport === b.dport && a.type === b.type && a.code === b.code;
}

/** `tcp 198.19.42.1:5555 → 198.19.42.2:7777`, or `(no inner IP header)`. */
export function innerFlowText(f: InnerFlow): string {
  if (f.src === undefined || f.dst === undefined) return f.truncated ? '(inner headers cut short)' : '(no inner IP header)';
  if (f.type !== undefined) return `${f.proto} ${f.src} → ${f.dst} type ${f.type}/${f.code ?? '?'}`;
  return `${f.proto} ${hostPort(f.src, f.sport)} → ${hostPort(f.dst, f.dport)}`;
}

/** `VXLAN 42` / `Geneve 7` */
export function tunnelName(f: InnerFlow): string {
  return `${f.encap === 'vxlan' ? 'VXLAN' : 'Geneve'} ${f.vni}`;
}

/** A flow's text with the tunnel and the flow inside it, for the TUI's detail pane: `… · VXLAN 42: tcp …`. */
export function withInner(outer: string, f: InnerFlow | undefined): string {
  return f === undefined ? outer : `${outer} · ${tunnelName(f)}: ${innerFlowText(f)}`;
}

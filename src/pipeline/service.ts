/**
 * Services: a drop whose skb carried a DNATed conntrack entry (kube-proxy's ClusterIP rules, any
 * DNAT) keeps the destination it had before translation, read in the kernel
 * (probes/conntrack.bpf.h, dnat_of). Decoded here, and said in the explain line next to the
 * translated destination (the flow's).
 */
import { EVENT_FIELDS as FIELDS } from '../gen/record.js';
import type { DnatOrigin, RawDrop } from './decode.js';
import { hostPort, ipv4, ipv6 } from './addr.js';

/** enum ip_conntrack_info: IP_CT_IS_REPLY and above are packets of the reply direction */
const IP_CT_IS_REPLY = 3;
/** protocols whose conntrack tuple carries a port (TCP, UDP, DCCP, SCTP, UDP-Lite) */
const PORTED = new Set([6, 17, 33, 132, 136]);

/** The NDJSON `service` object. */
export interface ServiceRef {
  ip: string;
  port?: number;
  /** true: a reply from the backend (its source was translated back to the Service) */
  reply?: true;
}

export function dnatOf(buf: Uint8Array, v: DataView, off: number, l4: number): DnatOrigin | null {
  const family = v.getUint8(off + FIELDS.dnat_family[0]);
  const at = off + FIELDS.dnat_daddr[0];
  const ip = family === 2 ? ipv4(buf, at) : family === 10 ? ipv6(buf, at) : null;
  if (ip === null) return null;
  return {
    ip,
    port: PORTED.has(l4) ? v.getUint16(off + FIELDS.dnat_dport[0], true) : null,
    reply: v.getUint8(off + FIELDS.dnat_ctinfo[0]) >= IP_CT_IS_REPLY,
  };
}

export function serviceRef(o: DnatOrigin): ServiceRef {
  return { ip: o.ip, ...(o.port !== null ? { port: o.port } : {}), ...(o.reply ? { reply: true as const } : {}) };
}

/** "10.96.0.10:53 → 10.244.1.5:8053": the Service and the pod it was translated to (a reply: ←, from the pod). */
export function serviceText(o: ServiceRef, f: { src: string; dst: string; sport?: number; dport?: number } | null): string {
  const end = f === null ? '?' : o.reply ? hostPort(f.src, f.sport) : hostPort(f.dst, f.dport);
  return `${hostPort(o.ip, o.port)} ${o.reply ? '←' : '→'} ${end}`;
}

/**
 * The explain line's Service clause: "to service 10.96.0.10:53 (pod 10.244.1.5:8053)", the
 * pod being the translated destination, named when the pod index knows it (src/enrich) and
 * its address until then. A reply comes "from" the service, from the pod's own address.
 */
export function serviceClause(o: DnatOrigin | ServiceRef, d: Pick<RawDrop, 'src' | 'dst' | 'sport' | 'dport'>, pod?: string): string {
  const svc = hostPort(o.ip, o.port);
  const end = o.reply ? hostPort(d.src ?? '?', d.sport) : hostPort(d.dst ?? '?', d.dport);
  return `${o.reply ? 'from' : 'to'} service ${svc} (pod ${pod ?? end})`;
}

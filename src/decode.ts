/**
 * Raw ring-buffer records → plain drop records. Offsets come from src/layout.ts, which is
 * checked against the C header; nothing here knows about names or policy.
 */
import { ipv4, ipv6 } from './addr.js';
import { EVENT_SIZE, EVENT_VERSION, FIELDS, FLAGS, PAYLOAD_MAX } from './layout.js';

export const PROTO_NAMES: Record<number, 'tcp' | 'udp' | 'icmp' | 'icmpv6'> = {
  6: 'tcp',
  17: 'udp',
  1: 'icmp',
  58: 'icmpv6',
};

export interface RawDrop {
  /** CLOCK_MONOTONIC nanoseconds since the clock base given to the decoder (exact below 2^53). */
  monoDeltaNs: number;
  location: bigint;
  reason: number;
  netns: number;
  ifindex: number;
  ifname: string;
  /** ethertype as seen by the kernel (0x0800, 0x86dd), 0 when unknown */
  l3Proto: number;
  /** IPPROTO_* number; 0 when no IP header was read */
  l4Proto: number;
  src: string | null;
  dst: string | null;
  sport: number | null;
  dport: number | null;
  icmpType: number | null;
  icmpCode: number | null;
  pktLen: number;
  flags: number;
  /** 1 tp_btf, 2 classic tracepoint */
  probe: number;
  /** conntrack state of a NETFILTER_DROP (FLAGS.CT_*) */
  ctFlags: number;
  /** log_martians (FLAGS.M_*) and effective rp_filter of the receiving device (IPv4) */
  martianConf: number;
  rpFilter: number;
  /** NEIGH_CREATEFAIL: the failed neighbour entry, when a neigh hook saw it */
  neigh: { family: number; entries: number; key: string } | null;
  /** first L4 payload bytes (DNS drops only), a view into the batch buffer */
  payload: Uint8Array | null;
}

export interface DecodeResult {
  drops: RawDrop[];
  /** records that could not be decoded (short, wrong version): counted, never dropped silently */
  errors: number;
}

export class Decoder {
  private readonly baseHi: number;
  private readonly baseLo: number;

  /** @param monoBaseNs CLOCK_MONOTONIC at the clock base (see src/clock.ts) */
  constructor(monoBaseNs: bigint) {
    this.baseHi = Number(monoBaseNs >> 32n);
    this.baseLo = Number(monoBaseNs & 0xffffffffn);
  }

  decode(buf: Uint8Array, out: RawDrop[] = []): DecodeResult {
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let errors = 0;
    let off = 0;
    // Records are framed by their own size field (the addon checked it against the ring).
    while (off + EVENT_SIZE <= buf.byteLength) {
      const size = view.getUint16(off + FIELDS.size[0], true);
      if (size < EVENT_SIZE || off + size > buf.byteLength) break;
      if (view.getUint16(off + FIELDS.version[0], true) !== EVENT_VERSION) errors++;
      else out.push(this.record(buf, view, off));
      off += size;
    }
    if (off !== buf.byteLength) errors++;
    return { drops: out, errors };
  }

  private record(buf: Uint8Array, v: DataView, off: number): RawDrop {
    const flags = v.getUint8(off + FIELDS.flags[0]);
    const hi = v.getUint32(off + FIELDS.ts_ns[0] + 4, true);
    const lo = v.getUint32(off + FIELDS.ts_ns[0], true);
    const l4 = v.getUint8(off + FIELDS.l4_proto[0]);
    let src: string | null = null;
    let dst: string | null = null;
    if (flags & FLAGS.IPV4) {
      src = ipv4(buf, off + FIELDS.saddr[0]);
      dst = ipv4(buf, off + FIELDS.daddr[0]);
    } else if (flags & FLAGS.IPV6) {
      src = ipv6(buf, off + FIELDS.saddr[0]);
      dst = ipv6(buf, off + FIELDS.daddr[0]);
    }
    const hasL4 = (flags & FLAGS.L4) !== 0;
    const isIcmp = l4 === 1 || l4 === 58;
    return {
      monoDeltaNs: (hi - this.baseHi) * 4294967296 + (lo - this.baseLo),
      location: v.getBigUint64(off + FIELDS.location[0], true),
      reason: v.getUint32(off + FIELDS.reason[0], true),
      netns: v.getUint32(off + FIELDS.netns[0], true),
      ifindex: v.getUint32(off + FIELDS.ifindex[0], true),
      ifname: cString(buf, off + FIELDS.ifname[0], FIELDS.ifname[1]),
      l3Proto: v.getUint16(off + FIELDS.l3_proto[0], true),
      l4Proto: src ? l4 : 0,
      src,
      dst,
      sport: hasL4 && !isIcmp ? v.getUint16(off + FIELDS.sport[0], true) : null,
      dport: hasL4 && !isIcmp ? v.getUint16(off + FIELDS.dport[0], true) : null,
      icmpType: hasL4 && isIcmp ? v.getUint8(off + FIELDS.icmp_type[0]) : null,
      icmpCode: hasL4 && isIcmp ? v.getUint8(off + FIELDS.icmp_code[0]) : null,
      pktLen: v.getUint16(off + FIELDS.pkt_len[0], true),
      flags,
      probe: v.getUint8(off + FIELDS.probe[0]),
      ctFlags: v.getUint8(off + FIELDS.ct_flags[0]),
      martianConf: v.getUint8(off + FIELDS.martian_conf[0]),
      rpFilter: v.getUint8(off + FIELDS.rp_filter[0]),
      neigh: neighOf(buf, v, off),
      payload: payloadOf(buf, v, off),
    };
  }
}

function neighOf(buf: Uint8Array, v: DataView, off: number): RawDrop['neigh'] {
  const family = v.getUint8(off + FIELDS.neigh_family[0]);
  if (family !== 2 && family !== 10) return null;
  const k = off + FIELDS.neigh_key[0];
  return { family, entries: v.getUint32(off + FIELDS.neigh_entries[0], true), key: family === 2 ? ipv4(buf, k) : ipv6(buf, k) };
}

function payloadOf(buf: Uint8Array, v: DataView, off: number): Uint8Array | null {
  const n = v.getUint16(off + FIELDS.payload_len[0], true);
  if (n === 0) return null;
  const start = off + EVENT_SIZE;
  return buf.subarray(start, Math.min(start + n, start + PAYLOAD_MAX, buf.byteLength));
}

function cString(buf: Uint8Array, off: number, max: number): string {
  let end = off;
  while (end < off + max && buf[end] !== 0) end++;
  let s = '';
  for (let i = off; i < end; i++) s += String.fromCharCode(buf[i]!);
  return s;
}

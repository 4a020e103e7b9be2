/**
 * Raw DNS ring records (struct dt_dns, probes/droptrace.h) → DNS messages: a query leaving or
 * an answer arriving in one netns. Offsets from src/gen/record.ts; the question is parsed as
 * for a dropped query (src/pipeline/dns.ts).
 */
import { DNS_CONST, DNS_DIR, DNS_FIELDS as F, DNS_SIZE } from '../gen/record.js';
import { ipv4, ipv6 } from './addr.js';
import { parseDnsQuestion } from './dns.js';
import type { DnsQuestion } from './dns.js';

export interface DnsMessage {
  /** CLOCK_MONOTONIC nanoseconds since the decoder's base (as RawDrop.monoDeltaNs) */
  monoNs: number;
  netns: number;
  ifindex: number;
  dir: 'query' | 'answer';
  src: string;
  dst: string;
  sport: number;
  dport: number;
  id: number;
  /** the DNS header's flags word; rcode is its low 4 bits */
  flags: number;
  rcode: number;
  /** null when the kept bytes hold no parsable question */
  question: DnsQuestion | null;
}

export interface DnsDecodeResult {
  messages: DnsMessage[];
  /** records that could not be decoded (short, wrong version or direction): counted */
  errors: number;
}

export class DnsDecoder {
  private readonly baseHi: number;
  private readonly baseLo: number;

  /** @param monoBaseNs CLOCK_MONOTONIC at the clock base (src/pipeline/clock.ts) */
  constructor(monoBaseNs: bigint) {
    this.baseHi = Number(monoBaseNs >> 32n);
    this.baseLo = Number(monoBaseNs & 0xffffffffn);
  }

  decode(buf: Uint8Array, out: DnsMessage[] = []): DnsDecodeResult {
    const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let errors = 0;
    let off = 0;
    while (off + DNS_SIZE <= buf.byteLength) {
      const size = v.getUint16(off + F.size[0], true);
      if (size < DNS_SIZE || off + size > buf.byteLength) break;
      const m = this.record(buf, v, off);
      if (m) out.push(m);
      else errors++;
      off += size;
    }
    if (off !== buf.byteLength) errors++;
    return { messages: out, errors };
  }

  private record(buf: Uint8Array, v: DataView, off: number): DnsMessage | null {
    if (v.getUint16(off + F.version[0], true) !== DNS_CONST.VERSION) return null;
    const dir = v.getUint8(off + F.dir[0]);
    if (dir !== DNS_DIR.QUERY && dir !== DNS_DIR.ANSWER) return null;
    const ipv = v.getUint8(off + F.ip_version[0]);
    const addr = ipv === 4 ? ipv4 : ipv === 6 ? ipv6 : null;
    if (!addr) return null;
    const hi = v.getUint32(off + F.ts_ns[0] + 4, true);
    const lo = v.getUint32(off + F.ts_ns[0], true);
    const flags = v.getUint16(off + F.dns_flags[0], true);
    const kept = Math.min(v.getUint8(off + F.msg_kept[0]), F.msg[1]);
    const msg = buf.subarray(off + F.msg[0], off + F.msg[0] + kept);
    return {
      monoNs: (hi - this.baseHi) * 4294967296 + (lo - this.baseLo),
      netns: v.getUint32(off + F.netns[0], true),
      ifindex: v.getUint32(off + F.ifindex[0], true),
      dir: dir === DNS_DIR.QUERY ? 'query' : 'answer',
      src: addr(buf, off + F.saddr[0]),
      dst: addr(buf, off + F.daddr[0]),
      sport: v.getUint16(off + F.sport[0], true),
      dport: v.getUint16(off + F.dport[0], true),
      id: v.getUint16(off + F.id[0], true),
      flags,
      rcode: flags & 0xf,
      question: kept >= 12 ? parseDnsQuestion(msg) : null,
    };
  }
}

/** Test fixtures and recorders: one record as the kernel writes it. */
export function encodeDnsRecord(m: Omit<DnsMessage, 'question' | 'rcode' | 'monoNs'> & { monoAbsNs: bigint; msg?: Uint8Array }): Uint8Array {
  const b = new Uint8Array(DNS_SIZE);
  const v = new DataView(b.buffer);
  v.setBigUint64(F.ts_ns[0], m.monoAbsNs, true);
  v.setUint32(F.netns[0], m.netns, true);
  v.setUint32(F.ifindex[0], m.ifindex, true);
  v.setUint16(F.version[0], DNS_CONST.VERSION, true);
  v.setUint16(F.size[0], DNS_SIZE, true);
  v.setUint16(F.sport[0], m.sport, true);
  v.setUint16(F.dport[0], m.dport, true);
  v.setUint16(F.id[0], m.id, true);
  v.setUint16(F.dns_flags[0], m.flags, true);
  v.setUint8(F.dir[0], m.dir === 'query' ? DNS_DIR.QUERY : DNS_DIR.ANSWER);
  const v6 = m.src.includes(':');
  v.setUint8(F.ip_version[0], v6 ? 6 : 4);
  v.setUint8(F.l4_proto[0], 17);
  const put = (ip: string, at: number) => {
    if (!v6) ip.split('.').forEach((o, i) => (b[at + i] = Number(o)));
    else {
      const [head, tail] = ip.split('::') as [string, string | undefined];
      const h = head ? head.split(':') : [];
      const t = tail ? tail.split(':') : [];
      const words = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
      words.forEach((w, i) => v.setUint16(at + 2 * i, parseInt(w || '0', 16), false));
    }
  };
  put(m.src, F.saddr[0]);
  put(m.dst, F.daddr[0]);
  if (m.msg) {
    const n = Math.min(m.msg.length, F.msg[1]);
    b.set(m.msg.subarray(0, n), F.msg[0]);
    v.setUint8(F.msg_kept[0], n);
    v.setUint16(F.msg_len[0], m.msg.length, true);
  }
  return b;
}

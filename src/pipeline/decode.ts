/**
 * Raw ring-buffer records → plain drop records. Offsets come from src/gen/record.ts, generated
 * from the BPF object's BTF; nothing here knows about names or policy.
 */
import { EVENT_FIELDS as FIELDS, EVENT_SIZE, EVENT_VERSION, FLAG, KEY_FIELDS, KEY_SIZE, PAYLOAD_MAX } from '../gen/record.js';
import { ipv4, ipv6, TextCache } from './addr.js';
import { isLocationKey, locationOfKey } from './classify-location.js';
import { keyString } from './keytable.js';
import { KEY_ENTRY_SIZE } from './layout.js';
import { dnatOf } from './service.js';
import { innerOf } from './overlay.js';
import type { InnerFlow } from './overlay.js';

export const PROTO_NAMES: Record<number, 'tcp' | 'udp' | 'icmp' | 'icmpv6'> = {
  6: 'tcp',
  17: 'udp',
  1: 'icmp',
  58: 'icmpv6',
};

/** Slots of the decoder's location cache (a power of two). */
const LOCATION_SLOTS = 512;

export interface RawDrop {
  /** CLOCK_MONOTONIC nanoseconds since the clock base given to the decoder (exact below 2^53). */
  monoDeltaNs: number;
  location: bigint;
  /**
   * the low 32 bits of location, as a signed 32-bit number: a cheap key (kernel text shares
   * its high bits), and a small integer to V8 (unsigned, most would be a heap number each)
   */
  locationLow: number;
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
  /** 1 tp_btf, 2 classic tracepoint, 3 tp_btf without a reason argument (before 5.17) */
  probe: number;
  /** conntrack state of a NETFILTER_DROP (CT_FLAG) */
  ctFlags: number;
  /** log_martians (MARTIAN_FLAG) and effective rp_filter of the receiving device (IPv4) */
  martianConf: number;
  rpFilter: number;
  /** NEIGH_CREATEFAIL: the failed neighbour entry, when a neigh hook saw it */
  neigh: { family: number; entries: number; key: string } | null;
  /** the skb's conntrack entry had its destination NATed: the destination before (a Service) */
  service: DnatOrigin | null;
  /** --stack: the stack map's id of this drop's kernel stack (src/pipeline/stacks.ts); -1 none */
  stackId: number;
  /** first L4 payload bytes (DNS drops only), a view into the batch buffer */
  payload: Uint8Array | null;
  /** a VXLAN/Geneve datagram: the packet inside it (src/pipeline/overlay.ts); always set by the decoder, undefined for others */
  inner?: InnerFlow | undefined;
  /**
   * The record's bytes (at `at`), which start with its per-key counter key (KeyTable,
   * keyString()): the batch's buffer, valid only while the batch is handled. null for a drop
   * made from a key-map entry.
   */
  record: Uint8Array | null;
  at: number;
}

/** The original direction's destination of a DNATed conntrack entry (src/pipeline/service.ts). */
export interface DnatOrigin {
  ip: string;
  /** null for a protocol without ports */
  port: number | null;
  /** the packet went the reply way (from the backend) */
  reply: boolean;
}

export interface DecodeResult {
  drops: RawDrop[];
  /** records that could not be decoded (short, wrong version): counted, never dropped silently */
  errors: number;
}

export class Decoder {
  private readonly baseHi: number;
  private readonly baseLo: number;
  private readonly text = new TextCache();
  /** drop locations by their bytes: a node frees skbs at a few hundred places, and a BigInt is an allocation */
  private readonly locHi = new Uint32Array(LOCATION_SLOTS);
  private readonly locLo = new Uint32Array(LOCATION_SLOTS);
  private readonly locBig = new Array<bigint>(LOCATION_SLOTS).fill(0n);

  /** @param monoBaseNs CLOCK_MONOTONIC at the clock base (see src/pipeline/clock.ts) */
  constructor(monoBaseNs: bigint) {
    this.baseHi = Number(monoBaseNs >> 32n);
    this.baseLo = Number(monoBaseNs & 0xffffffffn);
  }

  /** `offsets`, when given, gets the offset in `buf` of each record decoded into `out`. */
  decode(buf: Uint8Array, out: RawDrop[] = [], offsets?: number[]): DecodeResult {
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let errors = 0;
    let off = 0;
    // Records are framed by their own size field (the addon checked it against the ring).
    while (off + EVENT_SIZE <= buf.byteLength) {
      const size = view.getUint16(off + FIELDS.size[0], true);
      if (size < EVENT_SIZE || off + size > buf.byteLength) break;
      if (view.getUint16(off + FIELDS.version[0], true) !== EVENT_VERSION) errors++;
      else {
        out.push(this.record(buf, view, off));
        offsets?.push(off);
      }
      off += size;
    }
    if (off !== buf.byteLength) errors++;
    return { drops: out, errors };
  }

  private location(v: DataView, at: number): bigint {
    const lo = v.getUint32(at, true);
    const hi = v.getUint32(at + 4, true);
    const i = (Math.imul(lo ^ hi, 0x9e3779b1) >>> 23) & (LOCATION_SLOTS - 1);
    // an unused slot holds (0, 0) and 0n: right as it stands
    if (this.locLo[i] === lo && this.locHi[i] === hi) return this.locBig[i]!;
    const big = v.getBigUint64(at, true);
    this.locLo[i] = lo;
    this.locHi[i] = hi;
    this.locBig[i] = big;
    return big;
  }

  private record(buf: Uint8Array, v: DataView, off: number): RawDrop {
    const flags = v.getUint8(off + FIELDS.flags[0]);
    const hi = v.getUint32(off + FIELDS.ts_ns[0] + 4, true);
    const lo = v.getUint32(off + FIELDS.ts_ns[0], true);
    const l4 = v.getUint8(off + FIELDS.l4_proto[0]);
    let src: string | null = null;
    let dst: string | null = null;
    if (flags & FLAG.IPV4) {
      src = this.text.ipv4(buf, off + FIELDS.saddr[0]);
      dst = this.text.ipv4(buf, off + FIELDS.daddr[0]);
    } else if (flags & FLAG.IPV6) {
      src = this.text.ipv6(buf, off + FIELDS.saddr[0]);
      dst = this.text.ipv6(buf, off + FIELDS.daddr[0]);
    }
    const hasL4 = (flags & FLAG.L4) !== 0;
    const isIcmp = l4 === 1 || l4 === 58;
    return {
      monoDeltaNs: (hi - this.baseHi) * 4294967296 + (lo - this.baseLo),
      location: this.location(v, off + FIELDS.location[0]),
      locationLow: v.getInt32(off + FIELDS.location[0], true),
      reason: v.getUint32(off + FIELDS.reason[0], true),
      netns: v.getUint32(off + FIELDS.netns[0], true),
      ifindex: v.getUint32(off + FIELDS.ifindex[0], true),
      ifname: this.text.name16(buf, off + FIELDS.ifname[0]),
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
      neigh: v.getUint8(off + FIELDS.neigh_family[0]) === 0 ? null : neighOf(buf, v, off),
      service: v.getUint8(off + FIELDS.dnat_family[0]) === 0 ? null : dnatOf(buf, v, off, l4),
      stackId: flags & FLAG.STACK ? v.getUint16(off + FIELDS.stack_id[0], true) : -1,
      payload: v.getUint16(off + FIELDS.payload_len[0], true) === 0 ? null : payloadOf(buf, v, off),
      inner: innerOf(this.text, buf, v, off),
      record: buf,
      at: off,
    };
  }
}

export interface KeyCount {
  /** the key's bytes: a `struct dt_key` at `at` in `bytes` */
  bytes: Uint8Array;
  at: number;
  /** keyString() of those bytes, for a Map */
  readonly key: string;
  reason: number;
  netns: number;
  ifindex: number;
  flowRecord: RawDrop;
  count: number;
  suppressed: number;
}

/**
 * Entries of the addon's readKeys(): [struct dt_key][u64 count][u64 suppressed].
 * `suppressedOnly` skips keys with nothing to fold before any string is built: the reconcile
 * reads the whole map every second and most keys have sent every drop as detail.
 */
export function decodeKeys(buf: Uint8Array, opts: { suppressedOnly?: boolean } = {}): KeyCount[] {
  const out: KeyCount[] = [];
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let off = 0; off + KEY_ENTRY_SIZE <= buf.byteLength; off += KEY_ENTRY_SIZE) {
    if (opts.suppressedOnly && suppressedAt(v, off) === 0) continue;
    const k = new KeyEntry(buf, v);
    k.moveTo(off);
    out.push(k);
  }
  return out;
}

/**
 * decodeKeys() without an object per entry: one entry, moved along the map, valid until the
 * next step (keep only its strings and numbers). A full map is 65,536 entries read every
 * second, and holding an object for each until all were folded made the GC promote them all.
 */
export function* eachKey(buf: Uint8Array, opts: { suppressedOnly?: boolean } = {}): Generator<KeyCount, void, undefined> {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const k = new KeyEntry(buf, v);
  for (let off = 0; off + KEY_ENTRY_SIZE <= buf.byteLength; off += KEY_ENTRY_SIZE) {
    if (opts.suppressedOnly && suppressedAt(v, off) === 0) continue;
    k.moveTo(off);
    yield k;
  }
}

const suppressedAt = (v: DataView, off: number) => Number(v.getBigUint64(off + KEY_SIZE + 8, true));

/** A class, not a literal with a getter: a literal's getter is a closure per entry. */
class KeyEntry implements KeyCount {
  at = 0;
  reason = 0;
  netns = 0;
  ifindex = 0;
  count = 0;
  suppressed = 0;

  constructor(
    readonly bytes: Uint8Array,
    private readonly view: DataView,
  ) {}

  get key(): string {
    return keyString(this.bytes, this.at);
  }

  moveTo(off: number): void {
    const v = this.view;
    const K = KEY_FIELDS;
    this.at = off;
    this.reason = v.getUint32(off + K.reason[0], true);
    this.netns = v.getUint32(off + K.netns[0], true);
    this.ifindex = v.getUint32(off + K.ifindex[0], true);
    this.count = Number(v.getBigUint64(off + KEY_SIZE, true));
    this.suppressed = suppressedAt(v, off);
  }

  /** built only for a key that is folded with no delivered event to describe it */
  get flowRecord(): RawDrop {
    const ipv = this.view.getUint8(this.at + KEY_FIELDS.ip_version[0]);
    return keyRecord(this.bytes, this.view, this.at, ipv, this.reason, this.netns, this.ifindex);
  }
}

/** What a detail record of this key would have said. */
function keyRecord(buf: Uint8Array, v: DataView, off: number, ipv: number, reason: number, netns: number, ifindex: number): RawDrop {
  const K = KEY_FIELDS;
  const l4 = v.getUint8(off + K.l4_proto[0]);
  const isIcmp = l4 === 1 || l4 === 58;
  const hasIp = ipv === 4 || ipv === 6;
  const hasPorts = hasIp && (l4 === 6 || l4 === 17);
  const fmt = ipv === 4 ? ipv4 : ipv6;
  // without drop reasons the key's reason is the place (probes/droptrace.h)
  const placed = isLocationKey(reason);
  return {
    monoDeltaNs: 0,
    location: placed ? locationOfKey(reason) : 0n,
    locationLow: placed ? reason | 0 : 0,
    reason,
    netns,
    ifindex,
    ifname: '',
    l3Proto: ipv === 4 ? 0x0800 : ipv === 6 ? 0x86dd : 0,
    l4Proto: hasIp ? l4 : 0,
    src: hasIp ? fmt(buf, off + K.saddr[0]) : null,
    dst: hasIp ? fmt(buf, off + K.daddr[0]) : null,
    sport: hasPorts ? v.getUint16(off + K.sport[0], true) : null,
    dport: hasPorts ? v.getUint16(off + K.dport[0], true) : null,
    icmpType: hasIp && isIcmp ? v.getUint8(off + K.icmp_type[0]) : null,
    icmpCode: hasIp && isIcmp ? v.getUint8(off + K.icmp_code[0]) : null,
    pktLen: 0,
    flags: 0,
    probe: 0,
    ctFlags: 0,
    martianConf: 0,
    rpFilter: 0,
    neigh: null,
    service: null,
    stackId: -1,
    payload: null,
    inner: undefined,
    record: null,
    at: 0,
  };
}

function neighOf(buf: Uint8Array, v: DataView, off: number): RawDrop['neigh'] {
  const family = v.getUint8(off + FIELDS.neigh_family[0]);
  if (family !== 2 && family !== 10) return null;
  const k = off + FIELDS.neigh_key[0];
  return { family, entries: v.getUint32(off + FIELDS.neigh_entries[0], true), key: family === 2 ? ipv4(buf, k) : ipv6(buf, k) };
}

/** The payload bytes inside this record: never past its own size, whatever payload_len says. */
function payloadOf(buf: Uint8Array, v: DataView, off: number): Uint8Array | null {
  const n = v.getUint16(off + FIELDS.payload_len[0], true);
  if (n === 0) return null;
  const start = off + EVENT_SIZE;
  const size = v.getUint16(off + FIELDS.size[0], true);
  const end = Math.min(start + n, start + PAYLOAD_MAX, off + size, buf.byteLength);
  return end > start ? buf.subarray(start, end) : null;
}

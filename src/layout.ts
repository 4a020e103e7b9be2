/**
 * The TypeScript view of `struct dt_event` (probes/droptrace.h). Written out here so decoding
 * needs no native code, and checked against the compiler's view (native layout()) by
 * test/layout.test.ts and at every start, so the two cannot drift apart silently.
 */
export const EVENT_VERSION = 1;
export const EVENT_SIZE = 96;
export const REASON_SLOTS = 1024;

/** [offset, size] of every field. */
export const FIELDS = {
  ts_ns: [0, 8],
  location: [8, 8],
  version: [16, 4],
  reason: [20, 4],
  netns: [24, 4],
  ifindex: [28, 4],
  l3_proto: [32, 2],
  sport: [34, 2],
  dport: [36, 2],
  pkt_len: [38, 2],
  l4_proto: [40, 1],
  flags: [41, 1],
  icmp_type: [42, 1],
  icmp_code: [43, 1],
  probe: [44, 1],
  saddr: [48, 16],
  daddr: [64, 16],
  ifname: [80, 16],
} as const satisfies Record<string, readonly [number, number]>;

export const FLAGS = {
  IPV4: 0x01,
  IPV6: 0x02,
  L4: 0x04,
  NETNS_FROM_SK: 0x08,
  TRUNCATED: 0x10,
} as const;

export interface NativeLayout {
  fields: Record<string, [number, number]>;
  size: number;
  version: number;
  reasonSlots: number;
  flags: Record<string, number>;
}

/** Differences between this file and the compiled header; empty when they agree. */
export function layoutMismatches(native: NativeLayout): string[] {
  const out: string[] = [];
  if (native.size !== EVENT_SIZE) out.push(`size: header ${native.size}, decoder ${EVENT_SIZE}`);
  if (native.version !== EVENT_VERSION) out.push(`version: header ${native.version}, decoder ${EVENT_VERSION}`);
  if (native.reasonSlots !== REASON_SLOTS) out.push(`reasonSlots: header ${native.reasonSlots}, decoder ${REASON_SLOTS}`);
  const names = new Set([...Object.keys(native.fields), ...Object.keys(FIELDS)]);
  for (const name of names) {
    const n = native.fields[name];
    const t = (FIELDS as Record<string, readonly [number, number]>)[name];
    if (!n || !t || n[0] !== t[0] || n[1] !== t[1]) {
      out.push(`field ${name}: header ${n ? n.join('+') : 'absent'}, decoder ${t ? t.join('+') : 'absent'}`);
    }
  }
  for (const [k, v] of Object.entries(native.flags)) {
    if ((FLAGS as Record<string, number>)[k] !== v) out.push(`flag ${k}: header ${v}, decoder ${(FLAGS as Record<string, number>)[k]}`);
  }
  return out;
}

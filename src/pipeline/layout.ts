/**
 * The TypeScript view of `struct dt_event` (probes/droptrace.h). Written out here so decoding
 * needs no native code, and checked against the compiler's view (native layout()) by
 * test/layout.test.ts and at every start, so the two cannot drift apart silently.
 */
export const EVENT_VERSION = 2;
/** size of the fixed part; a DNS drop's record carries up to PAYLOAD_MAX payload bytes after it */
export const EVENT_SIZE = 120;
export const PAYLOAD_MAX = 192;
export const REASON_SLOTS = 1024;

/** [offset, size] of every field. */
export const FIELDS = {
  ts_ns: [0, 8],
  location: [8, 8],
  version: [16, 2],
  size: [18, 2],
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
  ct_flags: [45, 1],
  martian_conf: [46, 1],
  neigh_family: [47, 1],
  saddr: [48, 16],
  daddr: [64, 16],
  ifname: [80, 16],
  neigh_entries: [96, 4],
  rp_filter: [100, 1],
  payload_len: [102, 2],
  neigh_key: [104, 16],
} as const satisfies Record<string, readonly [number, number]>;

/** `struct dt_key`: the kernel's per-key counter map (exact counts per reason, netns, device, flow) */
export const KEY_SIZE = 52;
export const KEY_FIELDS = {
  reason: [0, 4],
  netns: [4, 4],
  ifindex: [8, 4],
  sport: [12, 2],
  dport: [14, 2],
  l4_proto: [16, 1],
  icmp_type: [17, 1],
  icmp_code: [18, 1],
  ip_version: [19, 1],
  saddr: [20, 16],
  daddr: [36, 16],
} as const satisfies Record<string, readonly [number, number]>;
/** readKeys() entries: a key, then u64 count and u64 suppressed */
export const KEY_ENTRY_SIZE = KEY_SIZE + 16;

export const FLAGS = {
  IPV4: 0x01,
  IPV6: 0x02,
  L4: 0x04,
  NETNS_FROM_SK: 0x08,
  TRUNCATED: 0x10,
  PAYLOAD_L3: 0x20,
  CT_HAS_CT: 0x01,
  CT_CONFIRMED: 0x02,
  CT_ACTIVE: 0x04,
  CT_DROP_ROSE: 0x08,
  CT_INSERT_FAILED_ROSE: 0x10,
  CT_INVALID_ROSE: 0x20,
  CT_NO_BASELINE: 0x40,
  CT_ALLOC_FAILED: 0x80,
  M_LOG_ALL: 0x01,
  M_LOG_DEV: 0x02,
  M_SOURCE_SEEN: 0x04,
  M_KNOWN: 0x80,
} as const;

export interface NativeLayout {
  fields: Record<string, [number, number]>;
  size: number;
  version: number;
  reasonSlots: number;
  payloadMax: number;
  keyFields: Record<string, [number, number]>;
  keySize: number;
  flags: Record<string, number>;
}

/** Differences between this file and the compiled header; empty when they agree. */
export function layoutMismatches(native: NativeLayout): string[] {
  const out: string[] = [];
  if (native.size !== EVENT_SIZE) out.push(`size: header ${native.size}, decoder ${EVENT_SIZE}`);
  if (native.version !== EVENT_VERSION) out.push(`version: header ${native.version}, decoder ${EVENT_VERSION}`);
  if (native.payloadMax !== PAYLOAD_MAX) out.push(`payloadMax: header ${native.payloadMax}, decoder ${PAYLOAD_MAX}`);
  if (native.reasonSlots !== REASON_SLOTS) out.push(`reasonSlots: header ${native.reasonSlots}, decoder ${REASON_SLOTS}`);
  const compare = (what: string, nat: Record<string, [number, number]>, ts: Record<string, readonly [number, number]>) => {
    for (const name of new Set([...Object.keys(nat), ...Object.keys(ts)])) {
      const n = nat[name];
      const t = ts[name];
      if (!n || !t || n[0] !== t[0] || n[1] !== t[1]) {
        out.push(`${what} ${name}: header ${n ? n.join('+') : 'absent'}, decoder ${t ? t.join('+') : 'absent'}`);
      }
    }
  };
  compare('field', native.fields, FIELDS);
  if (native.keySize !== KEY_SIZE) out.push(`keySize: header ${native.keySize}, decoder ${KEY_SIZE}`);
  compare('key field', native.keyFields, KEY_FIELDS);
  for (const [k, v] of Object.entries(native.flags)) {
    if ((FLAGS as Record<string, number>)[k] !== v) out.push(`flag ${k}: header ${v}, decoder ${(FLAGS as Record<string, number>)[k]}`);
  }
  return out;
}

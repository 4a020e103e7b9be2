/**
 * Templates for folded lines of keys that never had a delivered event of their own: in a
 * many-flows flood the per-CPU detail budget lets few keys through, and a key described from
 * its bytes alone has no location (0x0) and no device name. Its siblings (same reason, netns,
 * device, IP version and L4 protocol) dropped in the same place on the same device: their last
 * delivered event gives what the key lacks — the place, the device name, the conntrack and
 * martian flags classification reads — and the key's own flow, count and time stay its own.
 *
 * Only the inputs are kept, not the event: the line is then described from the key as before
 * (src/pipeline/events.ts describe()), so the kind is classified for the key's own addresses
 * and an explanation that reads the drop (a martian's source, a next hop) says the key's, not
 * the sibling's. Bounded: a few hundred groups at most, the first one kept dropped first.
 */
import { EVENT_FIELDS, KEY_FIELDS } from '../gen/record.js';
import type { RawDrop } from './decode.js';
import type { DropEvent, Pod } from './events.js';

/** groups kept: a node drops for a handful of reasons on a handful of devices per netns */
export const SIBLING_GROUPS = 256;

const u32 = (b: Uint8Array, o: number) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;

/** the place of a group in the index (exported for its test) */
export function groupHash(reason: number, netns: number, ifindex: number, proto: number, mask: number): number {
  let h = Math.imul(reason ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ netns, 0xc2b2ae35);
  h = Math.imul(h ^ ifindex, 0x27d4eb2f);
  h = Math.imul(h ^ proto, 0x165667b1);
  return (h ^ (h >>> 15)) & mask;
}

export class SiblingTemplates {
  /**
   * The slot of each place, -1 when none: direct-mapped, with four places per slot, so no
   * probing and no Map on the path of every delivered event. Each slot holds one place.
   */
  private readonly index: Int32Array;
  private readonly mask: number;
  /** per slot: its place in the index */
  private readonly hash: Int32Array;
  private readonly reason: Uint32Array;
  private readonly netns: Uint32Array;
  private readonly ifindex: Uint32Array;
  /** ip_version << 8 | l4_proto */
  private readonly proto: Uint16Array;
  private readonly locLow: Uint32Array;
  private readonly locHigh: Uint32Array;
  private readonly ctFlags: Uint8Array;
  private readonly martianConf: Uint8Array;
  private readonly rpFilter: Uint8Array;
  private readonly ifname: string[];
  /** the sibling's pod when it was the netns's (true of every key of the group), else null */
  private readonly pod: Array<Pod | null>;
  /** slots in use; past capacity the next one taken is the oldest (a ring) */
  private used = 0;
  private oldest = 0;

  constructor(readonly capacity = SIBLING_GROUPS) {
    let places = 4;
    while (places < capacity * 4) places *= 2;
    this.index = new Int32Array(places).fill(-1);
    this.mask = places - 1;
    this.hash = new Int32Array(capacity);
    this.reason = new Uint32Array(capacity);
    this.netns = new Uint32Array(capacity);
    this.ifindex = new Uint32Array(capacity);
    this.proto = new Uint16Array(capacity);
    this.locLow = new Uint32Array(capacity);
    this.locHigh = new Uint32Array(capacity);
    this.ctFlags = new Uint8Array(capacity);
    this.martianConf = new Uint8Array(capacity);
    this.rpFilter = new Uint8Array(capacity);
    this.ifname = new Array<string>(capacity).fill('');
    this.pod = new Array<Pod | null>(capacity).fill(null);
  }

  get size(): number {
    return this.used;
  }

  private find(h: number, reason: number, netns: number, ifindex: number, proto: number): number {
    const s = this.index[h]!;
    if (s < 0 || this.reason[s] !== reason || this.netns[s] !== netns || this.ifindex[s] !== ifindex || this.proto[s] !== proto) return -1;
    return s;
  }

  /** A delivered event and the record it was built from (a `struct dt_event` at `offset`). */
  delivered(ev: DropEvent, record: Uint8Array, offset: number): void {
    const reason = u32(record, offset + KEY_FIELDS.reason[0]);
    const netns = u32(record, offset + KEY_FIELDS.netns[0]);
    const ifindex = u32(record, offset + KEY_FIELDS.ifindex[0]);
    const proto = (record[offset + KEY_FIELDS.ip_version[0]]! << 8) | record[offset + KEY_FIELDS.l4_proto[0]]!;
    const h = groupHash(reason, netns, ifindex, proto, this.mask);
    let s = this.index[h]!;
    if (s < 0 || this.reason[s] !== reason || this.netns[s] !== netns || this.ifindex[s] !== ifindex || this.proto[s] !== proto) {
      if (s < 0) {
        if (this.used < this.capacity) s = this.used++;
        else {
          s = this.oldest;
          this.oldest = (this.oldest + 1) % this.capacity;
          this.index[this.hash[s]!] = -1;
        }
        this.index[h] = s;
        this.hash[s] = h;
      }
      // (a group at the same place gives way: two such groups cost each other their template,
      // never the other groups theirs)
      this.reason[s] = reason;
      this.netns[s] = netns;
      this.ifindex[s] = ifindex;
      this.proto[s] = proto;
    }
    const at = offset + EVENT_FIELDS.location[0];
    this.locLow[s] = u32(record, at);
    this.locHigh[s] = u32(record, at + 4);
    this.ctFlags[s] = record[offset + EVENT_FIELDS.ct_flags[0]]!;
    this.martianConf[s] = record[offset + EVENT_FIELDS.martian_conf[0]]!;
    this.rpFilter[s] = record[offset + EVENT_FIELDS.rp_filter[0]]!;
    this.ifname[s] = ev.ifname;
    this.pod[s] = ev.pod_match === 'netns' ? ev.pod : null;
  }

  /** Whether fill() would find a sibling for this key. */
  has(raw: RawDrop, key: Uint8Array, at: number): boolean {
    const proto = (key[at + KEY_FIELDS.ip_version[0]]! << 8) | key[at + KEY_FIELDS.l4_proto[0]]!;
    return this.find(groupHash(raw.reason, raw.netns, raw.ifindex, proto, this.mask), raw.reason, raw.netns, raw.ifindex, proto) >= 0;
  }

  /**
   * The drop a key with no delivered event of its own is described from: `raw` (its
   * KeyCount.flowRecord; the key's bytes at `at` in `key`) given its sibling's place, device
   * name and flags. Returns the netns's pod when the sibling had one, else null; undefined: no
   * sibling, `raw` untouched.
   */
  fill(raw: RawDrop, key: Uint8Array, at: number): Pod | null | undefined {
    const proto = (key[at + KEY_FIELDS.ip_version[0]]! << 8) | key[at + KEY_FIELDS.l4_proto[0]]!;
    const s = this.find(groupHash(raw.reason, raw.netns, raw.ifindex, proto, this.mask), raw.reason, raw.netns, raw.ifindex, proto);
    if (s < 0) return undefined;
    raw.location = (BigInt(this.locHigh[s]!) << 32n) | BigInt(this.locLow[s]!);
    raw.locationLow = this.locLow[s]! | 0;
    raw.ifname = this.ifname[s]!;
    raw.ctFlags = this.ctFlags[s]!;
    raw.martianConf = this.martianConf[s]!;
    raw.rpFilter = this.rpFilter[s]!;
    return this.pod[s]!;
  }
}

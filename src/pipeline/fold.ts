/**
 * Folding what the kernel only counted back into the stream. The kernel keeps an exact count
 * per key (reason, netns, device, flow) and, per key, how many of those drops sent no detail
 * event (the per-key rate limit, or a full ring buffer). Each reconcile turns the growth of
 * that "suppressed" count into one drop line with `count` = the growth and `folded: true`,
 * described like the key's last delivered event (what that event said, as enrichment left it;
 * only a one-off explanation is described again, see Generation). Delivered + folded = the kernel's count, exactly,
 * for every key still in the kernel's map.
 */
import { EVENT_FIELDS, EVENT_SIZE, PAYLOAD_MAX } from '../gen/record.js';
import type { LineTime } from './clock.js';
import { Decoder } from './decode.js';
import type { KeyCount, RawDrop } from './decode.js';
import { flowOf } from './events.js';
import type { DropEvent, Flow } from './events.js';
import { explainReads } from './explain.js';
import { KeyTable } from './keytable.js';

/** bytes kept per one-off description: a whole record, payload included */
const SLOT_BYTES = EVENT_SIZE + PAYLOAD_MAX;

/** the flow of a delivered event, which folded lines make again from the key */
const NO_FLOW = 0;
const FLOW_BARE = 1;
const FLOW_L4 = 2;

/**
 * One generation of descriptions: per key, what its last delivered event said, in one reused
 * object per slot. Not the event itself: events (and their flows) are new with every drop, and
 * holding one per key made every delivered event live long enough to be copied by the GC. The
 * flow is not kept either: it is the key's own, made again from the key's bytes.
 *
 * An explanation made for one drop alone (a DNS question, a martian's addresses) is text no
 * other drop shares: holding it per key cost as much memory as holding the events. Those keep
 * the record's bytes instead (outside the JS heap), described again if a folded line needs them.
 */
class Generation {
  readonly slots: KeyTable;
  readonly described: DropEvent[] = [];
  readonly flowShape: Uint8Array;
  readonly bytes: Uint8Array;
  /** record length per slot; 0: the slot's description is in `described` */
  readonly lengths: Uint16Array;

  constructor(capacity: number) {
    this.slots = new KeyTable(capacity);
    this.flowShape = new Uint8Array(capacity);
    this.bytes = new Uint8Array(capacity * SLOT_BYTES);
    this.lengths = new Uint16Array(capacity);
  }

  clear(): void {
    // nothing of a forgotten description stays reachable
    for (let i = 0; i < this.slots.size; i++) {
      const d = this.described[i]!;
      d.pod = null;
      d.evidence = d.neigh = d.martian = d.conntrack = undefined;
    }
    this.slots.clear();
  }
}

/** A description slot: the fields of a drop line, in its order (src/pipeline/events.ts). */
function blank(): DropEvent {
  return {
    type: 'drop',
    time: '',
    family: 'other',
    kind: '',
    reason: '',
    location: '',
    netns: 0,
    ifname: '',
    ifindex: 0,
    flow: null,
    pod: null,
    count: 0,
    explain: '',
    hint: '',
    evidence: undefined,
    dns: undefined,
    neigh: undefined,
    martian: undefined,
    conntrack: undefined,
    last_time: undefined,
    pod_match: undefined,
  };
}

export class Folder {
  /**
   * Suppressed drops of each key already written as folded lines; only keys the kernel still
   * has. Two tables, the one of the last reconcile and the one being filled, swapped after each.
   */
  private folded = new KeyTable(1024);
  private foldedCounts: number[] = [];
  private next = new KeyTable(1024);
  private nextCounts: number[] = [];
  /**
   * What the last delivered event per key said, for its folded lines: two generations of at
   * most max/2 keys each, the older dropped whole (O(1), bounded memory; a key without one is
   * described from the key itself).
   */
  private current: Generation;
  private older: Generation;
  private readonly perGeneration: number;
  /** reads the one-off records kept in the generations back */
  private readonly decoder = new Decoder(0n);
  /** drops written as folded lines so far */
  total = 0;

  constructor(maxTemplates = 16384) {
    // a generation is handed over once it holds max/2 keys
    this.perGeneration = Math.max(1, Math.ceil(maxTemplates / 2));
    this.current = new Generation(this.perGeneration);
    this.older = new Generation(this.perGeneration);
  }

  /**
   * A delivered event, as enrichment left it (its pod included): its key's folded lines say
   * the same. The key is read from the head of `record` (the bytes the event was built from,
   * at `offset`) when there is one (`key` is then not used: the stream passes null), else
   * from `key` (the bytes of a `struct dt_key`).
   */
  delivered(key: Uint8Array | null, ev: DropEvent, record?: Uint8Array, offset = 0): void {
    if (record === undefined && key === null) throw new TypeError('Folder.delivered() needs the record or the key');
    const g = this.current;
    const slot = record !== undefined ? g.slots.add(record, offset) : g.slots.add(key!, 0);
    const d = (g.described[slot] ??= blank());
    d.pod = ev.pod;
    d.pod_match = ev.pod_match;
    if (record !== undefined && ((ev.dns !== undefined && ev.dns !== null) || explainReads(ev.kind) === 'drop')) {
      const size = Math.min(record[offset + EVENT_FIELDS.size[0]]! | (record[offset + EVENT_FIELDS.size[0] + 1]! << 8), SLOT_BYTES, record.length - offset);
      g.bytes.set(record.subarray(offset, offset + size), slot * SLOT_BYTES);
      g.lengths[slot] = size;
      d.evidence = d.neigh = d.martian = d.conntrack = undefined;
    } else {
      g.lengths[slot] = 0;
      d.family = ev.family;
      d.kind = ev.kind;
      d.reason = ev.reason;
      d.location = ev.location;
      d.netns = ev.netns;
      d.ifname = ev.ifname;
      d.ifindex = ev.ifindex;
      d.explain = ev.explain;
      d.hint = ev.hint;
      d.evidence = ev.evidence;
      d.neigh = ev.neigh;
      d.martian = ev.martian;
      d.conntrack = ev.conntrack;
      const f = ev.flow;
      g.flowShape[slot] = f === null ? NO_FLOW : f.sport !== undefined || f.type !== undefined ? FLOW_L4 : FLOW_BARE;
    }
    if (g.slots.size >= this.perGeneration) {
      this.current = this.older;
      this.current.clear();
      this.older = g;
    }
  }

  /** The folded line of `k` as its last delivered event described it, when that is kept. */
  private fromDelivered(k: KeyCount, time: LineTime, count: number, describe: (raw: RawDrop) => DropEvent): DropEvent | undefined {
    let g = this.current;
    let slot = g.slots.get(k.bytes, k.at);
    if (slot < 0) {
      g = this.older;
      slot = g.slots.get(k.bytes, k.at);
      if (slot < 0) return undefined;
    }
    const d = g.described[slot]!;
    const size = g.lengths[slot]!;
    if (size > 0) {
      const at = slot * SLOT_BYTES;
      const ev = describe(this.decoder.decode(g.bytes.subarray(at, at + size)).drops[0]!);
      ev.pod = d.pod;
      if (d.pod_match !== undefined) ev.pod_match = d.pod_match;
      return foldedLine(ev, time, count);
    }
    d.flow = flowFromKey(k, g.flowShape[slot]!);
    const ev = foldedLine(d, time, count);
    d.flow = null;
    return ev;
  }

  /**
   * Folded lines for every key whose suppressed count grew since the last call. Each line goes
   * to `emit` as soon as it is made, so a full map's worth of lines is never in memory at once;
   * without `emit` they are returned. `describe` builds the event of a key no kept delivered
   * event describes, from the key (KeyCount.flowRecord), or from a kept one-off record.
   */
  reconcile(keys: Iterable<KeyCount>, describe: (raw: RawDrop) => DropEvent, time: LineTime, emit?: (ev: DropEvent) => void): DropEvent[] {
    const out: DropEvent[] = [];
    const { folded, foldedCounts, next, nextCounts } = this;
    next.clear();
    for (const k of keys) {
      const e = folded.get(k.bytes, k.at);
      let done = e < 0 ? 0 : foldedCounts[e]!;
      // The kernel's LRU map dropped and re-created the key: its counts started over.
      if (k.suppressed < done) done = 0;
      const delta = k.suppressed - done;
      if (k.suppressed > 0) nextCounts[next.add(k.bytes, k.at)] = k.suppressed;
      if (delta <= 0) continue;
      const ev = this.fromDelivered(k, time, delta, describe) ?? foldedLine(describe(k.flowRecord), time, delta);
      this.total += delta;
      if (emit) emit(ev);
      else out.push(ev);
    }
    this.folded = next;
    this.foldedCounts = nextCounts;
    this.next = folded;
    this.nextCounts = foldedCounts;
    return out;
  }
}

/** The key's flow (KeyCount.flowRecord), in the shape the delivered event gave it. */
function flowFromKey(k: KeyCount, shape: number): Flow | null {
  if (shape === NO_FLOW) return null;
  const f = flowOf(k.flowRecord);
  // headers cut short: the key has an L4 protocol, the event had no ports to say
  if (f && shape === FLOW_BARE && (f.sport !== undefined || f.type !== undefined)) return { proto: f.proto, src: f.src, dst: f.dst };
  return f;
}

/**
 * A folded line described like `t`: its fields in its order, without the ones only its own
 * drops had (last_time, dns). Not `{ ...t, time, count, folded: true }`: a property added to a
 * spread copy makes V8 build a new hidden class for every line.
 */
function foldedLine(t: DropEvent, time: LineTime, count: number): DropEvent {
  const ev: Record<string, unknown> = {};
  // DropEvents are plain objects: for-in sees exactly their own fields, as a spread would; the
  // ones still undefined (src/pipeline/events.ts) are left out, so a field set later comes after `folded`
  for (const k in t) if (k !== 'last_time' && k !== 'dns' && t[k as keyof DropEvent] !== undefined) ev[k] = t[k as keyof DropEvent];
  ev.time = time;
  ev.count = count;
  ev.folded = true;
  return ev as unknown as DropEvent;
}

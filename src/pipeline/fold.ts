/**
 * Folding what the kernel only counted back into the stream. The kernel keeps an exact count
 * per key (reason, netns, device, flow) and, per key, how many of those drops sent no detail
 * event (the per-key rate limit, or a full ring buffer). Each reconcile turns the growth of
 * that "suppressed" count into one drop line with `count` = the growth and `folded: true`,
 * described like the key's last delivered event. Delivered + folded = the kernel's count,
 * exactly, for every key still in the kernel's map.
 */
import { Decoder } from './decode.js';
import type { KeyCount, RawDrop } from './decode.js';
import type { DropEvent, Pod } from './events.js';
import { explainReads } from './explain.js';
import { KeyTable } from './keytable.js';
import { EVENT_SIZE, FIELDS, PAYLOAD_MAX } from './layout.js';

/** bytes kept per description: a whole record, payload included */
const SLOT_BYTES = EVENT_SIZE + PAYLOAD_MAX;

/**
 * One generation of descriptions. Most are kept as the bytes of the record the event was built
 * from (in one buffer, outside the JS heap) plus what enrichment added, and rebuilt when a
 * folded line needs them: keeping 16,384 whole events made every delivered event live long
 * enough to be copied by the GC, and tripled peak memory.
 */
class Generation {
  readonly slots: KeyTable;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  /** record length per slot; 0: the event is kept whole in `whole` */
  readonly lengths: Uint16Array;
  readonly whole: Array<DropEvent | null>;
  readonly pods: Array<Pod | null>;
  readonly podMatch: Array<DropEvent['pod_match']>;

  constructor(capacity: number) {
    this.slots = new KeyTable(capacity);
    this.bytes = new Uint8Array(capacity * SLOT_BYTES);
    this.view = new DataView(this.bytes.buffer);
    this.lengths = new Uint16Array(capacity);
    this.whole = new Array<DropEvent | null>(capacity).fill(null);
    this.pods = new Array<Pod | null>(capacity).fill(null);
    this.podMatch = new Array<DropEvent['pod_match']>(capacity).fill(undefined);
  }

  clear(): void {
    this.slots.clear();
    // nothing of a forgotten description stays reachable
    this.whole.fill(null);
    this.pods.fill(null);
  }
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
   * The last delivered event per key, to describe its folded lines: two generations of at most
   * max/2 keys each, the older dropped whole (O(1), bounded memory; a key without one is
   * described from the key itself).
   */
  private current: Generation;
  private older: Generation;
  private readonly perGeneration: number;
  /** reads the records kept in the generations back */
  private readonly decoder = new Decoder(0n);
  /** the batch delivered() last copied from, and a view of it (one per batch, not per event) */
  private recordBuf: Uint8Array | null = null;
  private recordView: DataView = new DataView(new ArrayBuffer(0));
  /** drops written as folded lines so far */
  total = 0;

  constructor(maxTemplates = 16384) {
    // a generation is handed over once it holds max/2 keys
    this.perGeneration = Math.max(1, Math.ceil(maxTemplates / 2));
    this.current = new Generation(this.perGeneration);
    this.older = new Generation(this.perGeneration);
  }

  /**
   * A delivered event of this key: the description its folded lines will reuse. With `record`
   * (the bytes the event was built from, at `offset`), the event is rebuilt from them when
   * needed, with the pod enrichment gave it; an event whose explanation read sysctls is kept
   * whole, as it said the values in force when it was delivered. The key is read from the
   * record when there is one (`key` is then not used: the stream passes null), else `key`.
   */
  delivered(key: string | null, ev: DropEvent, record?: Uint8Array, offset = 0): void {
    if (record === undefined && key === null) throw new TypeError('Folder.delivered() needs the record or the key');
    const g = this.current;
    const slot = record !== undefined ? g.slots.addRecord(record, offset) : g.slots.add(key!);
    // an event whose explanation read sysctls said the values in force when delivered: kept whole
    if (record !== undefined && explainReads(ev.kind) !== 'sysctl') {
      // a loop, not set(subarray()): no view object per delivered event; four bytes a step
      if (record !== this.recordBuf) {
        this.recordBuf = record;
        this.recordView = new DataView(record.buffer, record.byteOffset, record.byteLength);
      }
      const from = this.recordView;
      const size = Math.min(from.getUint16(offset + FIELDS.size[0], true), SLOT_BYTES, record.length - offset);
      const to = g.view;
      const at = slot * SLOT_BYTES;
      let i = 0;
      for (; i + 4 <= size; i += 4) to.setInt32(at + i, from.getInt32(offset + i, true), true);
      for (; i < size; i++) g.bytes[at + i] = record[offset + i]!;
      g.lengths[slot] = size;
      g.whole[slot] = null;
      g.pods[slot] = ev.pod;
      g.podMatch[slot] = ev.pod_match;
    } else {
      g.lengths[slot] = 0;
      g.whole[slot] = ev;
    }
    if (g.slots.size >= this.perGeneration) {
      this.current = this.older;
      this.current.clear();
      this.older = g;
    }
  }

  private template(key: string, describe: (raw: RawDrop) => DropEvent): DropEvent | undefined {
    let g = this.current;
    let slot = g.slots.get(key);
    if (slot < 0) {
      g = this.older;
      slot = g.slots.get(key);
      if (slot < 0) return undefined;
    }
    const size = g.lengths[slot]!;
    if (size === 0) return g.whole[slot]!;
    const at = slot * SLOT_BYTES;
    const raw = this.decoder.decode(g.bytes.subarray(at, at + size)).drops[0]!;
    const ev = describe(raw);
    ev.pod = g.pods[slot] ?? null;
    const match = g.podMatch[slot];
    if (match !== undefined) ev.pod_match = match;
    return ev;
  }

  /**
   * Folded lines for every key whose suppressed count grew since the last call. Each line goes
   * to `emit` as soon as it is made, so a full map's worth of lines is never in memory at once;
   * without `emit` they are returned. `describe` builds an event from a drop: one made from a
   * key, or the record of a delivered one.
   */
  reconcile(keys: Iterable<KeyCount>, describe: (raw: RawDrop) => DropEvent, time: string, emit?: (ev: DropEvent) => void): DropEvent[] {
    const out: DropEvent[] = [];
    const { folded, foldedCounts, next, nextCounts } = this;
    next.clear();
    for (const k of keys) {
      const e = folded.get(k.key);
      let done = e < 0 ? 0 : foldedCounts[e]!;
      // The kernel's LRU map dropped and re-created the key: its counts started over.
      if (k.suppressed < done) done = 0;
      const delta = k.suppressed - done;
      if (k.suppressed > 0) nextCounts[next.add(k.key)] = k.suppressed;
      if (delta <= 0) continue;
      const ev = foldedLine(this.template(k.key, describe) ?? describe(k.flowRecord), time, delta);
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

/**
 * A folded line described like `t`: its fields in its order, without the ones only its own
 * drops had (last_time, dns). Not `{ ...t, time, count, folded: true }`: a property added to a
 * spread copy makes V8 build a new hidden class for every line (~1.4 µs and ~1 KB of garbage
 * that outlives the reconcile, 65,536 times per full map).
 */
function foldedLine(t: DropEvent, time: string, count: number): DropEvent {
  const ev: Record<string, unknown> = {};
  // DropEvents are plain objects: for-in sees exactly their own fields, as a spread would; the
  // ones still undefined (src/pipeline/events.ts) are left out, so a field set later comes after `folded`
  for (const k in t) if (k !== 'last_time' && k !== 'dns' && t[k as keyof DropEvent] !== undefined) ev[k] = t[k as keyof DropEvent];
  ev.time = time;
  ev.count = count;
  ev.folded = true;
  return ev as unknown as DropEvent;
}

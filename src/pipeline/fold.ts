/**
 * Folding what the kernel only counted back into the stream. The kernel keeps an exact count
 * per key (reason, netns, device, flow) and, per key, how many of those drops sent no detail
 * event (the per-key rate limit, or a full ring buffer). Each reconcile turns the growth of
 * that "suppressed" count, plus the detail records the addon lost per key since the last
 * reconcile (deltas: each is handed out once), into one drop line with `count` = their sum
 * and `folded: true`, described like the key's last delivered event (what that event said, as
 * enrichment left it; a one-off explanation from its text kept off the heap, see Generation),
 * or, for a key none was delivered for, from the key at a sibling's place and device
 * (src/pipeline/siblings.ts).
 *
 * What cannot be folded is counted (`unfolded`): the suppressed growth of a key the kernel's
 * LRU map evicted before a reconcile read it. (Records a live view sheds are folded back as
 * userspace loss: src/pipeline/shed.ts.)
 * Delivered + folded + unfolded = the kernel's drops, exactly, once the stream has drained.
 */
import type { LineTime } from './clock.js';
import type { KeyCount, RawDrop } from './decode.js';
import { flowOf } from './events.js';
import type { DropEvent, Flow } from './events.js';
import { explainReads } from './explain.js';
import { KeyTable } from './keytable.js';
import { SiblingTemplates } from './siblings.js';

/**
 * UTF-8 bytes kept per one-off description: its explain and hint (~260 bytes for a martian or a
 * DNS query's line); longer text (a long DNS name) is held as strings, as any other key's is
 */
const SLOT_TEXT = 512;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

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
 * other drop shares: holding its strings per key kept each delivered one alive long enough for
 * the GC to copy it (peak RSS with 1M flows 151 MB against 130). Those keep the described
 * drop's text as UTF-8 bytes outside the JS heap, and its martian detail as numbers; the
 * folded line reads them back. Nothing is decoded or described again.
 */
class Generation {
  readonly slots: KeyTable;
  readonly described: DropEvent[] = [];
  readonly flowShape: Uint8Array;
  readonly text: Uint8Array;
  /** per slot: bytes of explain and of hint in `text`; explainLen 0: the strings are in `described` */
  readonly explainLen: Uint16Array;
  readonly hintLen: Uint16Array;
  /** per slot: martian detail; kernel_logged -1 null, 0, 1, 2 no detail; rp_filter -1 null */
  readonly logged: Int8Array;
  readonly rpFilter: Int16Array;

  constructor(capacity: number) {
    this.slots = new KeyTable(capacity);
    this.flowShape = new Uint8Array(capacity);
    this.text = new Uint8Array(capacity * SLOT_TEXT);
    this.explainLen = new Uint16Array(capacity);
    this.hintLen = new Uint16Array(capacity);
    this.logged = new Int8Array(capacity);
    this.rpFilter = new Int16Array(capacity);
  }

  /** Keeps the one-off text of `ev` in `slot`'s bytes; false when it does not fit there. */
  keepText(slot: number, ev: DropEvent): boolean {
    const at = slot * SLOT_TEXT;
    const e = utf8.encodeInto(ev.explain, this.text.subarray(at, at + SLOT_TEXT));
    if (e.read < ev.explain.length) return false;
    const h = utf8.encodeInto(ev.hint, this.text.subarray(at + e.written, at + SLOT_TEXT));
    if (h.read < ev.hint.length || e.written === 0) return false;
    this.explainLen[slot] = e.written;
    this.hintLen[slot] = h.written;
    const m = ev.martian;
    this.logged[slot] = m === undefined ? 2 : m.kernel_logged === null ? -1 : m.kernel_logged ? 1 : 0;
    this.rpFilter[slot] = m?.rp_filter ?? -1;
    return true;
  }

  clear(): void {
    // nothing of a forgotten description stays reachable
    for (let i = 0; i < this.slots.size; i++) {
      const d = this.described[i]!;
      d.pod = null;
      d.evidence = d.neigh = d.martian = d.conntrack = d.inner = undefined;
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
    certainty: undefined,
    evidence: undefined,
    dns: undefined,
    neigh: undefined,
    martian: undefined,
    conntrack: undefined,
    last_time: undefined,
    pod_match: undefined,
    truncated: undefined,
    inner: undefined,
    benign: undefined,
    benign_why: undefined,
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
  /** drops written as folded lines so far */
  total = 0;
  /** ... of which from the kernel's suppressed counts (the rest: the addon's lost records) */
  private kernelFolded = 0;
  /** kernel-held drops known to be past folding (see settle()) */
  private kernelUnfolded = 0;
  /** lost records of the reconcile under way, per key (reconcile()'s `lost`) */
  private readonly lostKeys = new KeyTable(1024);
  private lostCounts: number[] = [];
  private lostUsed: Uint8Array = new Uint8Array(1024);
  /** keys whose growth the last reconcile held back (waitFor), and the ones this one holds */
  private deferredLast = new KeyTable(64);
  private deferredNext = new KeyTable(64);
  /** drops the last reconcile held back, folded by the next */
  private deferredSum = 0;
  /** for keys with no delivered event of their own: their siblings' (src/pipeline/siblings.ts) */
  readonly siblings: SiblingTemplates;

  constructor(maxTemplates = 16384, siblingGroups?: number) {
    this.siblings = new SiblingTemplates(siblingGroups);
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
    // (a key alone has no place or flags to lend a sibling)
    if (record !== undefined) this.siblings.delivered(ev, record, offset);
    const d = (g.described[slot] ??= blank());
    d.pod = ev.pod;
    d.pod_match = ev.pod_match;
    d.family = ev.family;
    d.kind = ev.kind;
    d.reason = ev.reason;
    d.location = ev.location;
    d.netns = ev.netns;
    d.ifname = ev.ifname;
    d.ifindex = ev.ifindex;
    d.certainty = ev.certainty;
    d.evidence = ev.evidence;
    d.neigh = ev.neigh;
    d.conntrack = ev.conntrack;
    // not in the kernel's key (probes/parse.bpf.h): the key's last delivered inner flow
    d.inner = ev.inner;
    d.benign = ev.benign;
    d.benign_why = ev.benign_why;
    const f = ev.flow;
    g.flowShape[slot] = f === null ? NO_FLOW : f.sport !== undefined || f.type !== undefined ? FLOW_L4 : FLOW_BARE;
    if (((ev.dns !== undefined && ev.dns !== null) || explainReads(ev.kind) === 'drop') && g.keepText(slot, ev)) {
      // the one-off text lives in the slot's bytes, not in strings held per key
      d.explain = d.hint = '';
      d.martian = undefined;
      d.truncated = ev.truncated;
    } else {
      g.explainLen[slot] = 0;
      d.explain = ev.explain;
      d.hint = ev.hint;
      d.martian = ev.martian;
      d.truncated = undefined;
    }
    if (g.slots.size >= this.perGeneration) {
      this.current = this.older;
      this.current.clear();
      this.older = g;
    }
  }

  /** The folded line of `k` as its last delivered event described it, when that is kept. */
  private fromDelivered(k: KeyCount, time: LineTime, count: number): DropEvent | undefined {
    let g = this.current;
    let slot = g.slots.get(k.bytes, k.at);
    if (slot < 0) {
      g = this.older;
      slot = g.slots.get(k.bytes, k.at);
      if (slot < 0) return undefined;
    }
    const d = g.described[slot]!;
    d.flow = flowFromKey(k, g.flowShape[slot]!);
    const n = g.explainLen[slot]!;
    if (n === 0) {
      const ev = foldedLine(d, time, count);
      d.flow = null;
      return ev;
    }
    const at = slot * SLOT_TEXT;
    d.explain = fromUtf8.decode(g.text.subarray(at, at + n));
    d.hint = fromUtf8.decode(g.text.subarray(at + n, at + n + g.hintLen[slot]!));
    const logged = g.logged[slot]!;
    if (logged !== 2) d.martian = { kernel_logged: logged < 0 ? null : logged === 1, rp_filter: g.rpFilter[slot]! < 0 ? null : g.rpFilter[slot]! };
    const ev = foldedLine(d, time, count);
    d.flow = null;
    d.explain = d.hint = '';
    d.martian = undefined;
    return ev;
  }

  /**
   * The folded line of `k` described from the key: given a sibling's place, device and flags
   * when one was delivered (src/pipeline/siblings.ts), so it is classified and explained for
   * its own flow at the sibling's place, not at 0x0 on no device.
   */
  private fromKey(k: KeyCount, describe: (raw: RawDrop) => DropEvent, time: LineTime, count: number): DropEvent {
    const raw = k.flowRecord;
    const pod = this.siblings.fill(raw, k.bytes, k.at);
    const ev = describe(raw);
    if (pod) {
      ev.pod = pod;
      ev.pod_match = 'netns';
    }
    return foldedLine(ev, time, count);
  }

  /**
   * Folded lines for every key whose suppressed count grew since the last call, with the
   * records the addon lost since then (`lost`: deltas, one entry per key; a key the kernel no
   * longer has stands alone). Each line goes to `emit` as soon as it is made, so a full map's
   * worth of lines is never in memory at once; without `emit` they are returned. `describe`
   * builds the event of a key no kept delivered event describes, from the key
   * (KeyCount.flowRecord, given a sibling's place and device when there is one).
   */
  reconcile(keys: Iterable<KeyCount>, describe: (raw: RawDrop) => DropEvent, time: LineTime, emit?: (ev: DropEvent) => void, lost: readonly KeyCount[] = [], defer = false): DropEvent[] {
    const out: DropEvent[] = [];
    const { folded, foldedCounts, next, nextCounts, lostKeys } = this;
    const deferredNow = this.deferredNext;
    deferredNow.clear();
    this.deferredSum = 0;
    next.clear();
    lostKeys.clear();
    if (this.lostUsed.length < lost.length) this.lostUsed = new Uint8Array(lost.length * 2);
    const used = this.lostUsed;
    for (const l of lost) {
      // the addon gives one entry per key; two are summed all the same
      const known = lostKeys.size;
      const e = lostKeys.add(l.bytes, l.at);
      this.lostCounts[e] = e >= known ? l.suppressed : this.lostCounts[e]! + l.suppressed;
      used[e] = 0;
    }
    const line = (k: KeyCount, delta: number) => {
      const ev = this.fromDelivered(k, time, delta) ?? this.fromKey(k, describe, time, delta);
      this.total += delta;
      if (emit) emit(ev);
      else out.push(ev);
    };
    for (const k of keys) {
      const e = folded.get(k.bytes, k.at);
      let done = e < 0 ? 0 : foldedCounts[e]!;
      // The kernel's LRU map dropped and re-created the key: its counts started over. (Growth
      // lost that way, or before an eviction, is what settle() finds unfolded.)
      if (k.suppressed < done) done = 0;
      let delta = k.suppressed - done;
      const l = lostKeys.size > 0 ? lostKeys.get(k.bytes, k.at) : -1;
      if (defer && delta > 0 && l < 0 && this.waitFor(k)) {
        // its folded count stays where it was: the growth is folded at the next reconcile
        nextCounts[next.add(k.bytes, k.at)] = done;
        deferredNow.add(k.bytes, k.at);
        this.deferredSum += delta;
        continue;
      }
      if (k.suppressed > 0) nextCounts[next.add(k.bytes, k.at)] = k.suppressed;
      if (delta > 0) this.kernelFolded += delta;
      if (l >= 0 && used[l] === 0) {
        used[l] = 1;
        delta += this.lostCounts[l]!;
      }
      if (delta > 0) line(k, delta);
    }
    for (let i = 0; i < lost.length; i++) {
      const l = lost[i]!;
      const e = lostKeys.get(l.bytes, l.at);
      if (used[e] === 1) continue;
      used[e] = 1;
      if (this.lostCounts[e]! > 0) line(l, this.lostCounts[e]!);
    }
    this.folded = next;
    this.foldedCounts = nextCounts;
    this.next = folded;
    this.nextCounts = foldedCounts;
    this.deferredNext = this.deferredLast;
    this.deferredLast = deferredNow;
    return out;
  }

  /**
   * A key to fold at the next reconcile rather than now: the kernel sent it a detail event
   * (count > suppressed) that has not reached us yet (nothing describes the key, and no sibling
   * lends it a place), so folding it now would write a line at no place on no device. The
   * event is in the ring buffer or the hand-off queue; a second miss folds it as it is (the
   * event was lost, and the addon's lost count says so), as does the last reconcile.
   */
  private waitFor(k: KeyCount): boolean {
    if (k.count <= k.suppressed) return false;
    if (this.current.slots.get(k.bytes, k.at) >= 0 || this.older.slots.get(k.bytes, k.at) >= 0) return false;
    if (this.siblings.has(k.flowRecord, k.bytes, k.at)) return false;
    return this.deferredLast.size === 0 || this.deferredLast.get(k.bytes, k.at) < 0;
  }

  /**
   * After a reconcile: `held` is the kernel's count of drops it held back from detail (rate
   * limit + ring buffer full: every one of them added to its key's suppressed count, when the
   * key had an entry), read before that reconcile read the key map. What of it the reconciles
   * never folded is gone for good (a key evicted, or re-created, before its growth was read;
   * a drop with no key entry at all): at most `held` minus what was folded, which can only
   * grow. Read before the keys, so growth after that read is never taken for a loss; exact at
   * the last reconcile, when nothing is attached any more.
   */
  settle(held: number): void {
    // growth held for the next reconcile (waitFor) is not gone
    const gone = held - this.kernelFolded - this.deferredSum;
    if (gone > this.kernelUnfolded) this.kernelUnfolded = gone;
  }

  /** Drops no folded line will ever stand for (kernel-held and evicted): see settle(). */
  get unfolded(): number {
    return this.kernelUnfolded;
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

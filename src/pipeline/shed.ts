/**
 * Detail records a consumer had no time to describe (the TUI's bound on work per event-loop
 * turn), counted the way the addon counts the records past its backlog: per key, as userspace
 * loss. The reconcile folds them back like the addon's own losses, so `count`s still add up to
 * the kernel's exact counts; the stats line's `lost.userspace` includes them.
 */
import { EVENT_FIELDS, EVENT_SIZE, KEY_SIZE } from '../gen/record.js';
import type { KernelCounters, TracerHandle } from '../native/binding.js';
import { KeyTable } from './keytable.js';
import { KEY_ENTRY_SIZE } from './layout.js';

/** Keys counted one by one, as the addon's own lost-key table; past it only the total grows. */
export const SHED_KEYS_MAX = 65536;

export class ShedLedger {
  /** records shed, every one (the ones past SHED_KEYS_MAX keys included) */
  total = 0;
  /** records shed past SHED_KEYS_MAX keys: in `total`, but no key to fold them into */
  unkeyed = 0;
  /** batch tails whose size fields do not frame a record (as the decoder counts them) */
  malformed = 0;
  readonly #keys = new KeyTable(1024);
  #counts = new Float64Array(1024);
  /** each key's bytes, by entry: the merged lost keys are written from them */
  #keyBytes = new Uint8Array(1024 * KEY_SIZE);

  /** Counts every record of `buf` from byte `from` on (records start with their key). */
  add(buf: Uint8Array, from = 0): void {
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let off = from;
    while (off + EVENT_SIZE <= buf.byteLength) {
      const size = view.getUint16(off + EVENT_FIELDS.size[0], true);
      if (size < EVENT_SIZE || off + size > buf.byteLength) break;
      this.total++;
      if (this.#keys.size < SHED_KEYS_MAX || this.#keys.get(buf, off) >= 0) {
        const before = this.#keys.size;
        const e = this.#keys.add(buf, off);
        if (this.#keys.size > before) this.#newKey(e, buf, off);
        this.#counts[e]! += 1;
      } else this.unkeyed++;
      off += size;
    }
    if (off < buf.byteLength) this.malformed++;
  }

  #newKey(e: number, buf: Uint8Array, off: number): void {
    if (e >= this.#counts.length) {
      const counts = new Float64Array(this.#counts.length * 2);
      counts.set(this.#counts);
      this.#counts = counts;
      const bytes = new Uint8Array(counts.length * KEY_SIZE);
      bytes.set(this.#keyBytes);
      this.#keyBytes = bytes;
    }
    this.#keyBytes.set(buf.subarray(off, off + KEY_SIZE), e * KEY_SIZE);
  }

  /**
   * The addon's lost-key entries ([dt_key][u64 lost][u64 lost], counts since its last read)
   * with the records shed since the last call added: one entry per key, in the same format.
   * Like the addon's table, the ledger's keys start over after each read, so every shed
   * record is folded exactly once.
   */
  mergeLostKeys(native: Uint8Array): Buffer {
    const n = this.#keys.size;
    const out = Buffer.alloc(native.byteLength + n * KEY_ENTRY_SIZE);
    out.set(native, 0);
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const merged = new Uint8Array(n);
    for (let off = 0; off + KEY_ENTRY_SIZE <= native.byteLength; off += KEY_ENTRY_SIZE) {
      const e = this.#keys.get(out, off);
      if (e < 0) continue;
      merged[e] = 1;
      const lost = view.getBigUint64(off + KEY_SIZE, true) + BigInt(this.#counts[e]!);
      view.setBigUint64(off + KEY_SIZE, lost, true);
      view.setBigUint64(off + KEY_SIZE + 8, lost, true);
    }
    let at = native.byteLength;
    for (let e = 0; e < n; e++) {
      if (merged[e]) continue;
      out.set(this.#keyBytes.subarray(e * KEY_SIZE, (e + 1) * KEY_SIZE), at);
      const lost = BigInt(this.#counts[e]!);
      view.setBigUint64(at + KEY_SIZE, lost, true);
      view.setBigUint64(at + KEY_SIZE + 8, lost, true);
      at += KEY_ENTRY_SIZE;
    }
    this.#keys.clear();
    this.#counts.fill(0);
    return out.subarray(0, at);
  }
}

/**
 * The tracer as the reconcile and the stats line read it: its lost keys and its userspace loss
 * with the shed records in them. Everything else is the tracer's own.
 */
export function withShed(tracer: TracerHandle, ledger: ShedLedger): TracerHandle {
  return {
    attach: () => tracer.attach(),
    retry: (probes) => tracer.retry(probes),
    start: (onBatch, onEnd, onDns) => (onDns ? tracer.start(onBatch, onEnd, onDns) : tracer.start(onBatch, onEnd)),
    stop: () => tracer.stop(),
    readCounters: (): KernelCounters => {
      const c = tracer.readCounters();
      // records shed past SHED_KEYS_MAX keys have no key to fold into: unfolded, like the addon's
      return { ...c, userLost: c.userLost + BigInt(ledger.total), userLostUnkeyed: c.userLostUnkeyed + BigInt(ledger.unkeyed) };
    },
    readKeys: () => tracer.readKeys(),
    readLostKeys: () => ledger.mergeLostKeys(tracer.readLostKeys()),
    readStack: (id) => tracer.readStack(id),
    mapInfo: () => tracer.mapInfo(),
    breakPoll: () => tracer.breakPoll(),
    close: () => tracer.close(),
  };
}

/** A consumer's bound on work (the TUI's per event-loop turn, src/tui/budget.ts). */
export interface WorkBudget {
  /** asked before each slice of a batch: true while there is time for more records now */
  admit(): boolean;
  /** told how many records were shed (after the ledger counted them) */
  shed(records: number): void;
}

/** Records described between two questions to the budget: a few milliseconds of work. */
export const SLICE_RECORDS = 256;

/** Where the `n` records from byte `from` end (the batch's end when fewer, or framing fails). */
export function recordsEnd(buf: Uint8Array, from: number, n: number): number {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = from;
  for (let i = 0; i < n && off + EVENT_SIZE <= buf.byteLength; i++) {
    const size = view.getUint16(off + EVENT_FIELDS.size[0], true);
    // the decoder counts what does not frame: it gets the rest of the batch
    if (size < EVENT_SIZE) return buf.byteLength;
    off += size;
  }
  return Math.min(off, buf.byteLength);
}

/**
 * One batch under a budget: slices of SLICE_RECORDS described while the budget admits them,
 * the rest of the batch shed into the ledger.
 */
export function handleWithin(buf: Buffer, handle: (slice: Buffer) => void, budget: WorkBudget, ledger: ShedLedger): void {
  let off = 0;
  while (off < buf.byteLength) {
    if (!budget.admit()) {
      const before = ledger.total;
      ledger.add(buf, off);
      budget.shed(ledger.total - before);
      return;
    }
    const end = recordsEnd(buf, off, SLICE_RECORDS);
    handle(off === 0 && end === buf.byteLength ? buf : buf.subarray(off, end));
    off = end;
  }
}

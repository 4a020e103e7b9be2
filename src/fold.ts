/**
 * Folding what the kernel only counted back into the stream. The kernel keeps an exact count
 * per key (reason, netns, device, flow) and, per key, how many of those drops sent no detail
 * event (the per-key rate limit, or a full ring buffer). Each reconcile turns the growth of
 * that "suppressed" count into one drop line with `count` = the growth and `folded: true`,
 * described like the key's last delivered event. Delivered + folded = the kernel's count,
 * exactly, for every key still in the kernel's map.
 */
import type { KeyCount, RawDrop } from './decode.js';
import type { DropEvent } from './events.js';

export class Folder {
  /** suppressed drops of each key already written as folded lines; only keys the kernel still has */
  private folded = new Map<string, number>();
  /**
   * The last delivered event per key, to describe its folded lines: two generations of at most
   * max/2 keys each, the older dropped whole (O(1), bounded memory; a key without one is
   * described from the key itself).
   */
  private templates = new Map<string, DropEvent>();
  private older = new Map<string, DropEvent>();
  /** drops written as folded lines so far */
  total = 0;

  constructor(private readonly maxTemplates = 16384) {}

  /** A delivered event of this key: the description its folded lines will reuse. */
  delivered(key: string, ev: DropEvent): void {
    this.templates.set(key, ev);
    if (this.templates.size >= this.maxTemplates / 2) {
      this.older = this.templates;
      this.templates = new Map();
    }
  }

  private template(key: string): DropEvent | undefined {
    return this.templates.get(key) ?? this.older.get(key);
  }

  /** Folded lines for every key whose suppressed count grew since the last call. */
  reconcile(keys: KeyCount[], describe: (raw: RawDrop) => DropEvent, time: string): DropEvent[] {
    const out: DropEvent[] = [];
    const next = new Map<string, number>();
    for (const k of keys) {
      let done = this.folded.get(k.key) ?? 0;
      // The kernel's LRU map dropped and re-created the key: its counts started over.
      if (k.suppressed < done) done = 0;
      const delta = k.suppressed - done;
      if (k.suppressed > 0) next.set(k.key, k.suppressed);
      if (delta <= 0) continue;
      const ev: DropEvent = { ...(this.template(k.key) ?? describe(k.flowRecord)), time, count: delta, folded: true };
      delete ev.last_time;
      delete ev.dns;
      this.total += delta;
      out.push(ev);
    }
    this.folded = next;
    return out;
  }
}

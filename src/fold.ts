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

interface Seen {
  template: DropEvent | null;
  /** suppressed drops of this key already written as folded lines */
  folded: number;
}

export class Folder {
  private readonly seen = new Map<string, Seen>();
  /** drops written as folded lines so far */
  total = 0;

  /** @param max keys remembered (oldest forgotten first; the kernel map holds 65536) */
  constructor(private readonly max = 65536) {}

  /** A delivered event of this key: the description its folded lines will reuse. */
  delivered(key: string, ev: DropEvent): void {
    const s = this.seen.get(key);
    if (s) {
      this.seen.delete(key);
      s.template = ev;
      this.seen.set(key, s);
      return;
    }
    this.seen.set(key, { template: ev, folded: 0 });
    if (this.seen.size > this.max) this.seen.delete(this.seen.keys().next().value!);
  }

  /** Folded lines for every key whose suppressed count grew since the last call. */
  reconcile(keys: KeyCount[], describe: (raw: RawDrop) => DropEvent, time: string): DropEvent[] {
    const out: DropEvent[] = [];
    for (const k of keys) {
      if (k.suppressed === 0) continue;
      let s = this.seen.get(k.key);
      if (!s) {
        s = { template: null, folded: 0 };
        this.seen.set(k.key, s);
        if (this.seen.size > this.max) this.seen.delete(this.seen.keys().next().value!);
      }
      // The kernel's LRU map dropped and re-created the key: its counts started over.
      if (k.suppressed < s.folded) s.folded = 0;
      const delta = k.suppressed - s.folded;
      if (delta <= 0) continue;
      s.folded = k.suppressed;
      const base = s.template ?? describe(k.flowRecord);
      const ev: DropEvent = { ...base, time, count: delta, folded: true };
      delete ev.last_time;
      delete ev.dns;
      this.total += delta;
      out.push(ev);
    }
    return out;
  }
}

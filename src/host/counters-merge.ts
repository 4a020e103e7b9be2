/**
 * The reader's side of counters-split.ts: the `counters` lines of a stream (live, or a recording)
 * back into one whole picture per sample, for the consumers that show the latest levels (the TUI
 * store, the metrics). Version 1 lines, one whole sample each, pass through as they are.
 *
 * What a reader that missed lines sees: a sample closed with parts missing (the next sample
 * began, or `flush` at the end) is applied as far as it got, adding and updating netns but
 * removing none, and is counted in `incomplete`; the picture is whole again at the next full
 * sample (every minute by default).
 */
import type { CountersLine } from './counters-line.js';

type NetnsEntry = NonNullable<CountersLine['conntrack']>['netns'][number];
type Nic = CountersLine['nic'][number];
type Neigh = CountersLine['neigh'][number];

interface Pending {
  sample: number;
  parts: number;
  seen: Set<number>;
  lines: CountersLine[];
}

export class CountersMerger {
  /** The listed netns as of the last sample applied, in the order they were listed. */
  #netns = new Map<number, NetnsEntry>();
  #pending: Pending | null = null;
  /** Samples applied with parts missing. */
  incomplete = 0;
  /** Lines of those samples that never came. */
  missingParts = 0;

  /**
   * Takes one counters line; returns the whole picture when this line completes a sample (or
   * ends an incomplete one by starting the next), else null.
   */
  add(line: CountersLine): CountersLine | null {
    const parts = line.parts;
    const sample = line.sample;
    if (parts === undefined || sample === undefined || parts <= 1) {
      this.flush();
      // one whole sample (every version 1 line): shown as it is, odd fields and all
      if (line.full !== false) {
        const ct = line.conntrack;
        this.#netns = new Map(arr(ct?.netns).filter((n) => isObj(n) && typeof n.netns === 'number').map((n) => [n.netns, n] as const));
        return line;
      }
      return this.#apply([line], true);
    }
    let closed: CountersLine | null = null;
    if (this.#pending !== null && this.#pending.sample !== sample) closed = this.flush();
    const p = (this.#pending ??= { sample, parts, seen: new Set(), lines: [] });
    p.seen.add(line.part ?? 1);
    p.lines.push(line);
    if (p.seen.size < p.parts) return closed;
    this.#pending = null;
    return this.#apply(p.lines, true);
  }

  /** The sample still waiting for parts, applied as far as it got; null when none waits. */
  flush(): CountersLine | null {
    const p = this.#pending;
    if (p === null) return null;
    this.#pending = null;
    this.incomplete++;
    this.missingParts += p.parts - p.seen.size;
    return this.#apply(p.lines, false);
  }

  #apply(lines: CountersLine[], complete: boolean): CountersLine {
    const last = lines.at(-1)!;
    const full = lines.every((l) => l.full !== false);
    const neigh = new Map<string, Neigh>();
    for (const l of lines) for (const t of arr(l.neigh)) mergeInto(neigh, t.table, t);
    const nics = new Map<string, Nic>();
    for (const l of lines) for (const n of arr(l.nic)) mergeInto(nics, `${n.netns ?? '?'}/${n.ifname}`, n);

    let conntrack: CountersLine['conntrack'] = null;
    const ct = lines.map((l) => l.conntrack).find((c) => c !== null && c !== undefined);
    if (ct === undefined) {
      this.#netns.clear();
    } else {
      const listed = new Map<number, NetnsEntry>();
      for (const l of lines) for (const n of arr(l.conntrack?.netns)) mergeInto(listed, n.netns, n);
      // a complete full sample is the whole list; anything else changes the one before
      if (full && complete) this.#netns = listed;
      else {
        if (complete) for (const l of lines) for (const g of arr(l.conntrack?.gone)) this.#netns.delete(g);
        for (const [k, n] of listed) this.#netns.set(k, n);
      }
      const head = last.conntrack ?? ct;
      conntrack = { nf_conntrack_max: head.nf_conntrack_max, netns_total: head.netns_total, netns_idle: head.netns_idle, netns: [...this.#netns.values()], gone: [] };
    }
    return {
      ...last,
      part: 1,
      parts: 1,
      full: true,
      neigh: [...neigh.values()],
      conntrack,
      nic: [...nics.values()],
      warnings: lines.flatMap((l) => arr(l.warnings)),
      unavailable: lines.flatMap((l) => arr(l.unavailable)),
    };
  }
}

/** An entry cut into pieces (too many counters for one line) comes back as one. */
function mergeInto<K, T extends { stats: Record<string, number>; rates: Record<string, number | null> | null }>(m: Map<K, T>, key: K, piece: T): void {
  if (!isObj(piece) || !isObj(piece.stats)) return;
  const had = m.get(key);
  if (had === undefined) {
    m.set(key, { ...piece, stats: { ...piece.stats }, rates: piece.rates && { ...piece.rates }, ...('allowance' in piece ? { allowance: { ...(piece.allowance as object) } } : {}) });
    return;
  }
  Object.assign(had.stats, piece.stats);
  if (piece.rates) had.rates = Object.assign(had.rates ?? {}, piece.rates);
  if ('allowance' in piece && 'allowance' in had) Object.assign(had.allowance as object, piece.allowance);
}

/** Lines read back from a recording are checked against the schema, but the store takes any. */
function arr<T>(v: T[] | null | undefined): T[] {
  return Array.isArray(v) ? v : [];
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

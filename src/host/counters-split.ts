/**
 * One host sample → its `counters` lines, each under a byte limit, so that a log pipeline keeps
 * every line whole: containerd's CRI log format splits stdout lines past 16 KiB, and a node with
 * hundreds of netns that use conntrack (~800 bytes each) made one ~200 KB line per sample.
 *
 * The lines of one sample share `sample` and `time`, and are numbered `part` 1..`parts`. Every
 * array of the line is cut between them (neigh, warnings, unavailable, conntrack.netns,
 * conntrack.gone, nic); an entry too large for a line on its own (a NIC with a thousand ethtool
 * counters) goes out as pieces with the same key, each with some of its counters. `conntrack.netns`
 * lists only the netns whose entry changed since the previous sample, and `conntrack.gone` those
 * that left the list, but for a full sample (`full: true`): the first, every `fullEvery`-th, and
 * one taken at the end of a stream, which list every netns. A reader merges them with CountersMerger.
 */
import { toCountersLine } from './counters-line.js';
import type { CountersLine, CountersLineOptions } from './counters-line.js';
import type { HostSnapshot } from './sampler.js';

/** Where containerd's CRI logger cuts a line (bytes, the newline included). */
export const CRI_LINE_BYTES = 16 * 1024;
/** The default limit of one line's JSON text: 1 KiB under the cut, for the newline and fields a shipper adds. */
export const MAX_LINE_BYTES = 15 * 1024;
/** A full sample every this many samples by default: a minute at the default 5 s interval. */
export const FULL_EVERY = 12;

type Neigh = CountersLine['neigh'][number];
type NetnsEntry = NonNullable<CountersLine['conntrack']>['netns'][number];
type Nic = CountersLine['nic'][number];

type Item =
  | { to: 'neigh'; v: Neigh }
  | { to: 'warnings' | 'unavailable'; v: string }
  | { to: 'netns'; v: NetnsEntry }
  | { to: 'gone'; v: number }
  | { to: 'nic'; v: Nic };

export interface CountersSplitOptions extends CountersLineOptions {
  /** Largest JSON text of one line, in bytes (default MAX_LINE_BYTES; at least 2048). */
  maxLineBytes?: number;
  /** A full sample every this many (default FULL_EVERY; 1: every sample is full). */
  fullEvery?: number;
}

const bytes = (v: unknown): number => Buffer.byteLength(JSON.stringify(v));

export class CountersSplitter {
  readonly #max: number;
  readonly #fullEvery: number;
  readonly #opts: CountersLineOptions;
  #sample = 0;
  #sinceFull = 0;
  /** Each listed netns as last sent (its JSON), to send only what changed; null: conntrack absent. */
  #sent: Map<number, string> | null = null;

  constructor(opts: CountersSplitOptions = {}) {
    this.#max = opts.maxLineBytes ?? MAX_LINE_BYTES;
    this.#fullEvery = opts.fullEvery ?? FULL_EVERY;
    if (!(Number.isInteger(this.#max) && this.#max >= 2048)) throw new RangeError(`maxLineBytes must be an integer >= 2048, got ${this.#max}`);
    if (!(Number.isInteger(this.#fullEvery) && this.#fullEvery >= 1)) throw new RangeError(`fullEvery must be an integer >= 1, got ${this.#fullEvery}`);
    this.#opts = { ...(opts.includeIdleNetns !== undefined ? { includeIdleNetns: opts.includeIdleNetns } : {}) };
  }

  /** The lines of one sample, in order. `full`: list every netns (the last sample of a stream). */
  lines(s: HostSnapshot, opts: { full?: boolean } = {}): CountersLine[] {
    const whole = toCountersLine(s, this.#opts);
    const ct = whole.conntrack;
    this.#sample++;
    // the first sample with conntrack after one without must be full: there is no base to change
    const full = opts.full === true || this.#sample === 1 || this.#sinceFull + 1 >= this.#fullEvery || (ct !== null) !== (this.#sent !== null);
    this.#sinceFull = full ? 0 : this.#sinceFull + 1;

    let netns: NetnsEntry[] = [];
    let gone: number[] = [];
    if (ct !== null) {
      const sent = new Map(ct.netns.map((n) => [n.netns, JSON.stringify(n)] as const));
      netns = full ? ct.netns : ct.netns.filter((n) => this.#sent?.get(n.netns) !== sent.get(n.netns));
      gone = full ? [] : [...(this.#sent?.keys() ?? [])].filter((k) => !sent.has(k));
      this.#sent = sent;
    } else {
      this.#sent = null;
    }

    const base: CountersLine = {
      ...whole,
      sample: this.#sample,
      part: 1,
      parts: 1,
      full,
      neigh: [],
      conntrack: ct === null ? null : { ...ct, netns: [], gone: [] },
      nic: [],
      warnings: [],
      unavailable: [],
    };
    const items: Item[] = [
      ...whole.neigh.map((v): Item => ({ to: 'neigh', v })),
      ...whole.warnings.map((v): Item => ({ to: 'warnings', v })),
      ...whole.unavailable.map((v): Item => ({ to: 'unavailable', v })),
      ...netns.map((v): Item => ({ to: 'netns', v })),
      ...gone.map((v): Item => ({ to: 'gone', v })),
      ...whole.nic.map((v): Item => ({ to: 'nic', v })),
    ];
    const lines = pack(base, items, this.#max);
    for (const [i, l] of lines.entries()) {
      l.part = i + 1;
      l.parts = lines.length;
    }
    return lines;
  }
}

/** Fills lines in order, a new one when the next item would pass `max` bytes. */
function pack(base: CountersLine, items: Item[], max: number): CountersLine[] {
  // part and parts counted at their widest, so that numbering the lines afterwards adds nothing
  const empty = (): CountersLine => ({ ...base, part: 999_999, parts: 999_999, conntrack: base.conntrack && { ...base.conntrack, netns: [], gone: [] }, neigh: [], nic: [], warnings: [], unavailable: [] });
  const emptyBytes = bytes(empty());
  const room = max - emptyBytes;
  if (room < 512) throw new RangeError(`a counters line without entries already takes ${emptyBytes} of ${max} bytes`);
  const lines: CountersLine[] = [];
  let cur = empty();
  let size = emptyBytes;
  const put = (it: Item, b: number): void => {
    const arr = target(cur, it);
    size += b + (arr.length > 0 ? 1 : 0);
    arr.push(it.v as never);
  };
  for (const whole of items) {
    for (const it of fitting(whole, room)) {
      const b = bytes(it.v);
      if (size + b + 1 > max && size > emptyBytes) {
        lines.push(cur);
        cur = empty();
        size = emptyBytes;
      }
      put(it, b);
    }
  }
  lines.push(cur);
  return lines;
}

function target(l: CountersLine, it: Item): unknown[] {
  switch (it.to) {
    case 'netns':
      return l.conntrack!.netns;
    case 'gone':
      return (l.conntrack!.gone ??= []);
    default:
      return l[it.to];
  }
}

/**
 * The item as pieces that each fit `room` bytes: a string is cut (marked with …), an entry is
 * cut between its counters (stats, rates, allowance), each piece with the entry's other fields.
 */
function fitting(it: Item, room: number): Item[] {
  if (bytes(it.v) <= room) return [it];
  if (it.to === 'warnings' || it.to === 'unavailable') return [{ to: it.to, v: cut(it.v, room) }];
  if (it.to === 'gone') return [it];
  const v = it.v as unknown as Record<string, unknown>;
  const maps = (['stats', 'rates', 'allowance'] as const).filter((f) => v[f] !== null && typeof v[f] === 'object');
  const skeleton = (): Record<string, unknown> => {
    const s: Record<string, unknown> = { ...v };
    for (const f of maps) s[f] = {};
    return s;
  };
  const pieces: Record<string, unknown>[] = [];
  let cur = skeleton();
  let size = bytes(cur);
  const emptySize = size;
  for (const f of maps) {
    for (const [k, x] of Object.entries(v[f] as Record<string, unknown>)) {
      const obj = cur[f] as Record<string, unknown>;
      const add = bytes(k) + 1 + bytes(x) + (Object.keys(obj).length > 0 ? 1 : 0);
      if (size + add > room && size > emptySize) {
        pieces.push(cur);
        cur = skeleton();
        size = emptySize;
      }
      const into = cur[f] as Record<string, unknown>;
      size += bytes(k) + 1 + bytes(x) + (Object.keys(into).length > 0 ? 1 : 0);
      into[k] = x;
    }
  }
  pieces.push(cur);
  return pieces.map((p) => ({ to: it.to, v: p }) as Item);
}

function cut(s: string, room: number): string {
  let out = s.slice(0, Math.max(0, room - 16));
  while (bytes(`${out}…`) > room) out = out.slice(0, -64);
  return `${out}…`;
}

/**
 * The TUI's one source of truth, and a Sink: stream lines go in (`write`), immutable snapshots
 * come out (`snapshot`), and key actions change the view. Nothing here reads a clock, touches
 * the addon or starts a timer: time comes from the lines themselves and from `tick`, so replays,
 * tests and the live pipeline all see the same numbers for the same lines. Lines are trusted:
 * live ones come from our own pipeline, recorded ones are checked against the schema on load.
 *
 * The aggregate is leaves.ts, the filter language filter.ts (its line: filter-edit.ts), the
 * views over the leaves selectors.ts; this file holds the view state and the snapshot.
 */
import { applyProbeStates } from '../pipeline/late-probes.js';
import { rateOf, sparkOf } from '../aggregate/window.js';
import type { CountersLine, DropEvent, StartLine, StatsLine, StreamLine } from '../pipeline/events.js';
import { CountersMerger } from '../host/counters-merge.js';
import type { Sink } from '../sinks/sink.js';
import { FilterEdit } from './filter-edit.js';
import { addDrop, cloneData, emptyData, MAX_LEAVES } from './leaves.js';
import type { Data } from './leaves.js';
import { groupDetail, groupRows } from './selectors.js';
import type { View } from './selectors.js';
import { GROUP_BYS, RATE_SECONDS, SORTS, SPARK_SECONDS } from './snapshot.js';
import type { GroupBy, GroupDetail, GroupRow, Snapshot, SortBy, StartInfo, StatsInfo } from './snapshot.js';
import { startInfoOf, statsInfoOf } from './lines.js';
import { tablesFrom } from './tables.js';

export { GROUP_BYS, MAX_LEAVES, RATE_SECONDS, SORTS, SPARK_SECONDS };
export type * from './snapshot.js';
export { flowKeyOf, flowText } from './leaves.js';
export { parseFilter } from '../pipeline/filter/index.js';

export interface StoreOptions {
  source?: 'live' | 'replay';
  groupBy?: GroupBy;
  sortBy?: SortBy;
  filter?: string;
  maxLeaves?: number;
}

type Listener = (urgent: boolean) => void;

export class TuiStore implements Sink {
  readonly source: 'live' | 'replay';
  readonly #maxLeaves: number;
  #data: Data = emptyData(0, null, new Map());
  #frozen: Data | null = null;
  #start: StartInfo | null = null;
  #stats: StatsInfo | null = null;
  #ended: string | null = null;
  #ignored = 0;
  readonly #countersMerge = new CountersMerger();
  #shed = 0;
  #kernelRate: number | null = null;
  #clearedAt: number | null = null;
  #groupBy: GroupBy;
  #sortBy: SortBy;
  readonly #filter: FilterEdit;
  #help = false;
  /** null: not chosen yet, open when the terminal has room */
  #detail: boolean | null = null;
  #showBenign = false;
  /** null until the user moves the selection: until then it follows the top row */
  #selKey: string | null = null;
  #selIndex = 0;
  #cache: Snapshot | null = null;
  readonly #listeners = new Set<Listener>();

  constructor(o: StoreOptions = {}) {
    this.source = o.source ?? 'live';
    this.#maxLeaves = o.maxLeaves ?? MAX_LEAVES;
    this.#groupBy = o.groupBy ?? 'kind';
    this.#sortBy = o.sortBy ?? 'rate';
    this.#filter = new FilterEdit(o.filter ?? '');
  }

  /** `urgent`: a key was pressed, redraw now; otherwise data changed, redraw when convenient. */
  subscribe(fn: Listener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #changed(urgent: boolean): void {
    this.#cache = null;
    for (const fn of this.#listeners) fn(urgent);
  }

  // ---- data in ----

  /** The Sink side: every line of the stream, in order. */
  write(line: StreamLine): void {
    switch (line.type) {
      case 'drop':
        this.#drop(line);
        break;
      case 'stats':
        // a quiet node sends the same stats every few seconds: no redraw for nothing
        if (!this.#statsLine(line)) {
          this.#cache = null;
          return;
        }
        break;
      case 'counters':
        this.#counters(line);
        break;
      case 'start':
        this.#startLine(line);
        break;
      default:
        // newer stream versions may add line types; count them so nothing vanishes unseen
        this.#ignored++;
    }
    this.#changed(false);
  }

  /** The same as `write` (the recording player and the bench feed lines by this name). */
  ingest(line: StreamLine): void {
    this.write(line);
  }

  /**
   * Advances the store clock (wall time live, recorded time in a replay); never goes back.
   * Listeners hear of it only when something on screen moves: sparklines and rates while drops
   * are recent, the uptime's seconds in the first minute, its minutes after that. An idle
   * screen redraws once a minute.
   */
  tick(ms: number): void {
    const d = this.#data;
    const before = d.now;
    if (ms <= before) return;
    d.now = ms;
    this.#cache = null;
    const sec = (t: number) => Math.floor(t / 1000);
    const min = (t: number) => Math.floor(t / 60_000);
    if (sec(ms) === sec(before)) return;
    const recent = d.lastDrop > 0 && ms - d.lastDrop <= (SPARK_SECONDS + RATE_SECONDS + 1) * 1000;
    const start = this.#start?.time ?? null;
    const young = start !== null && ms - start < 61_000;
    if (recent || young || start === null || min(ms - (start ?? 0)) !== min(before - (start ?? 0))) this.#changed(false);
  }

  /** Lines the feeder skipped (unknown types in a recording): counted on screen, never silent. */
  ignore(n: number): void {
    if (n <= 0) return;
    this.#ignored += n;
    this.#changed(false);
  }

  /** Detail records shed by the live view's budget: counted on screen, never silent. */
  shed(n: number): void {
    if (n <= 0) return;
    this.#shed += n;
    this.#changed(false);
  }

  /** No more lines will come; `why` is shown in the header. */
  end(why: string): void {
    this.#ended = why;
    // a recording cut in the middle of a sample: show what of it came
    const partial = this.#countersMerge.flush();
    if (partial !== null) this.#showCounters(partial);
    this.#changed(false);
  }

  #drop(ev: DropEvent): void {
    if (!addDrop(this.#data, ev, this.#maxLeaves)) this.#ignored++;
  }

  /** Returns whether anything shown changed. */
  #statsLine(s: StatsLine): boolean {
    const before = this.#stats;
    this.#stats = statsInfoOf(s);
    const t = this.#stats.time;
    if (t !== null && t > this.#data.now) this.#data.now = t;
    if (before?.time != null && t !== null && t > before.time && before.kernelDrops !== null && this.#stats.kernelDrops !== null) {
      this.#kernelRate = Math.max(0, this.#stats.kernelDrops - before.kernelDrops) / ((t - before.time) / 1000);
    }
    // a probe that came later (its module loaded): the probes line follows the stats line
    const probes = this.#start && s.probes ? applyProbeStates(this.#start.probes, s.probes) : null;
    if (this.#start && probes && probes !== this.#start.probes) {
      this.#start = { ...this.#start, probes: [...probes] };
      return true;
    }
    const a = { ...before, time: null };
    const b = { ...this.#stats, time: null };
    return before === null || JSON.stringify(a) !== JSON.stringify(b);
  }

  #counters(line: CountersLine): void {
    // a sample comes as several lines (under 16 KiB each), netns as changes: shown once whole
    const c = this.#countersMerge.add(line);
    if (c !== null) this.#showCounters(c);
  }

  #showCounters(c: CountersLine): void {
    const tables = tablesFrom(c);
    this.#data.tables = tables;
    const ct = c.conntrack as { netns?: unknown } | null | undefined;
    if (ct && Array.isArray(ct.netns)) {
      for (const n of ct.netns as Array<Record<string, unknown>>) {
        if (typeof n?.netns !== 'number') continue;
        const name = typeof n.name === 'string' ? n.name : typeof n.comm === 'string' ? n.comm : n.init === true ? 'host' : null;
        if (name !== null) this.#data.netnsNames.set(n.netns, name);
      }
    }
    if (tables.time !== null && tables.time > this.#data.now) this.#data.now = tables.time;
  }

  #startLine(s: StartLine): void {
    this.#start = startInfoOf(s);
    const t = this.#start.time;
    if (t !== null && t > this.#data.now) this.#data.now = t;
  }

  // ---- view actions (keys) ----

  get groupBy(): GroupBy {
    return this.#groupBy;
  }

  setGroupBy(g: GroupBy): void {
    this.#groupBy = g;
    this.#selKey = null;
    this.#selIndex = 0;
    this.#changed(true);
  }

  cycleGroupBy(): void {
    this.setGroupBy(GROUP_BYS[(GROUP_BYS.indexOf(this.#groupBy) + 1) % GROUP_BYS.length]!);
  }

  setSort(s: SortBy): void {
    this.#sortBy = s;
    this.#changed(true);
  }

  cycleSort(): void {
    this.setSort(SORTS[(SORTS.indexOf(this.#sortBy) + 1) % SORTS.length]!);
  }

  setFilter(text: string): void {
    this.#filter.set(text);
    this.#changed(true);
  }

  /** why the filter text does not parse (the one before it still applies), or null */
  get filterError(): string | null {
    return this.#filter.error;
  }

  /** `/`: start typing a filter; the filter applies as it is typed. */
  editFilter(): void {
    this.#filter.begin();
    this.#changed(true);
  }

  get editing(): boolean {
    return this.#filter.editing !== null;
  }

  typeFilter(chars: string): void {
    if (this.#filter.type(chars)) this.#changed(true);
  }

  backspaceFilter(): void {
    if (this.#filter.type(null)) this.#changed(true);
  }

  /** Enter: keep the typed filter. */
  commitFilter(): void {
    this.#filter.commit();
    this.#changed(true);
  }

  /** Esc while typing: back to the filter from before. */
  cancelFilter(): void {
    this.#filter.cancel();
    this.#changed(true);
  }

  /**
   * Pause freezes what is shown; lines keep being counted underneath (nothing is dropped while
   * paused) and the header says how many drops arrived since. Unpausing jumps to the present.
   */
  togglePause(): void {
    this.#frozen = this.#frozen === null ? cloneData(this.#data) : null;
    this.#changed(true);
  }

  get paused(): boolean {
    return this.#frozen !== null;
  }

  /** Forgets drop groups, totals and sparklines; keeps probes, table levels and lost counts (those are since the start). */
  clear(): void {
    const d = this.#data;
    this.#data = emptyData(d.now, d.tables, d.netnsNames);
    if (this.#frozen !== null) this.#frozen = cloneData(this.#data);
    this.#clearedAt = d.now;
    this.#selKey = null;
    this.#selIndex = 0;
    this.#changed(true);
  }

  moveSelection(delta: number): void {
    const rows = groupRows(this.#frozen ?? this.#data, this.#view()).rows;
    if (rows.length === 0) return;
    const cur = this.#resolveSelection(rows);
    const next = Math.max(0, Math.min(rows.length - 1, cur + delta));
    this.#selIndex = next;
    this.#selKey = rows[next]!.key;
    this.#changed(true);
  }

  selectEdge(which: 'first' | 'last'): void {
    this.moveSelection(which === 'first' ? -Infinity : Infinity);
  }

  toggleDetail(): void {
    this.setDetail(!(this.#detail ?? false));
  }

  /** Enter: the pane as the user wants it from now on, whatever the terminal's size. */
  setDetail(open: boolean): void {
    this.#detail = open;
    this.#changed(true);
  }

  /** `b`: show or hide benign drops. */
  toggleBenign(): void {
    this.#showBenign = !this.#showBenign;
    this.#changed(true);
  }

  toggleHelp(): void {
    this.#help = !this.#help;
    this.#changed(true);
  }

  /** Esc: close help, else the detail pane (`detailShown`: open on screen now), else clear the filter. */
  back(detailShown = this.#detail ?? false): void {
    if (this.#help) this.#help = false;
    else if (detailShown) this.#detail = false;
    else if (this.#filter.text !== '') {
      this.setFilter('');
      return;
    } else return;
    this.#changed(true);
  }

  // ---- snapshots out ----

  snapshot(): Snapshot {
    if (this.#cache) return this.#cache;
    const live = this.#data;
    const d = this.#frozen ?? live;
    const { rows, byKey, shownTotal, shownRate, hiddenDrops, benignDrops } = groupRows(d, this.#view());
    const selected = rows.length === 0 ? -1 : this.#resolveSelection(rows);
    const sel = selected >= 0 ? rows[selected]! : null;
    const nowSec = Math.floor(d.now / 1000);
    const start = this.#start;
    const snap: Snapshot = {
      source: this.source,
      now: d.now > 0 ? d.now : null,
      start,
      uptimeMs: start?.time != null && d.now > 0 ? Math.max(0, d.now - start.time) : null,
      rate: rateOf(d.global, nowSec, RATE_SECONDS),
      total: d.total,
      spark: sparkOf(d.global, nowSec, SPARK_SECONDS),
      stats: this.#stats,
      tables: d.tables,
      groupBy: this.#groupBy,
      sortBy: this.#sortBy,
      filter: this.#filter.text,
      editing: this.#filter.editing,
      filterError: this.#filter.error,
      paused: this.#frozen !== null,
      newWhilePaused: this.#frozen !== null ? Math.max(0, live.total - this.#frozen.total) : 0,
      help: this.#help,
      detailOpen: this.#detail,
      showBenign: this.#showBenign,
      benignDrops,
      groups: rows,
      shownTotal,
      shownRate,
      hiddenDrops,
      selected,
      detail: null,
      ended: this.#ended,
      ignoredLines: this.#ignored,
      foldedDrops: d.folded,
      shedDetail: this.#shed,
      kernelRate: this.#kernelRate,
      clearedAt: this.#clearedAt,
    };
    // the detail merges every leaf of the selected group: only worked out when a frame asks
    const groupBy = this.#groupBy;
    const stats = this.#stats;
    let detail: GroupDetail | null | undefined;
    Object.defineProperty(snap, 'detail', {
      enumerable: true,
      get: () => (detail === undefined ? (detail = sel ? groupDetail(sel, byKey.get(sel.key) ?? [], d, groupBy, stats) : null) : detail),
    });
    this.#cache = snap;
    return snap;
  }

  #view(): View {
    return { groupBy: this.#groupBy, sortBy: this.#sortBy, match: this.#filter.match, showBenign: this.#showBenign };
  }

  #resolveSelection(rows: GroupRow[]): number {
    if (this.#selKey === null) return 0;
    const i = rows.findIndex((r) => r.key === this.#selKey);
    if (i >= 0) {
      this.#selIndex = i;
      return i;
    }
    // The selected group is not shown (a filter being typed): stay at the same height, but
    // keep wanting that group, so it is selected again when it comes back.
    return Math.max(0, Math.min(rows.length - 1, this.#selIndex));
  }
}

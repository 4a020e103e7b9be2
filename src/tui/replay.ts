/**
 * `--replay FILE.ndjson`: a recorded stream (from `droptrace stream`, or `top --record`)
 * played into the store. The whole file is read and every line checked against the published
 * JSON Schema before the screen opens, so a bad file ends in one line naming the line number,
 * never a half-drawn screen.
 *
 * Speed: 1 (default) plays at the recorded pace, 10 ten times faster, 0 loads everything at
 * once and shows the recording as it stood at its last line. The store's clock follows the
 * recording's time, so rates and sparklines read as they did when it was recorded; at the end
 * the clock stops and the screen stays until `q`.
 */
import { readFile } from 'node:fs/promises';
import { DroptraceError } from '../errors.js';
import { timeMs } from '../pipeline/clock.js';
import type { StreamLine } from '../pipeline/events.js';
import { LINE_TYPES, lineProblem } from '../pipeline/line-schema.js';
import type { TuiStore } from './store.js';

export interface ReplayLine {
  line: StreamLine;
  /** recorded time, ms since the epoch; never earlier than the line before */
  at: number;
}

export interface Recording {
  lines: ReplayLine[];
  /** lines of a type this version does not know (skipped, and counted on screen) */
  unknown: number;
}

const KNOWN = new Set<string>(LINE_TYPES);

function bad(file: string, lineNo: number, why: string): DroptraceError {
  return new DroptraceError('E_REPLAY', 'input', `replay file ${file} line ${lineNo}: ${why}`, {
    hint: 'expected NDJSON from droptrace stream',
  });
}

/** Parses and checks a recording; throws a DroptraceError (exit 2) naming the first bad line. */
export function parseRecording(text: string, file: string): Recording {
  const lines: ReplayLine[] = [];
  let unknown = 0;
  let prevAt = -Infinity;
  const rows = text.split('\n');
  for (let i = 0; i < rows.length; i++) {
    const raw = rows[i]!.trim();
    if (raw === '') continue;
    const n = i + 1;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      throw bad(file, n, `not JSON (${(e instanceof Error ? e.message : String(e)).split('\n')[0]})`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v) || typeof (v as { type?: unknown }).type !== 'string') {
      throw bad(file, n, 'not a stream line (no "type" field)');
    }
    const o = v as { type: string; time?: unknown };
    // a newer droptrace may write line types this one does not know: skipped and counted
    if (!KNOWN.has(o.type)) {
      unknown++;
      continue;
    }
    const line = o as StreamLine;
    const problem = lineProblem(line);
    if (problem !== null) throw bad(file, n, `${line.type} line: ${problem}`);
    const t = timeMs(line.time);
    // Lines come from several clocks (kernel-derived drop times, wall-clock stats): play them
    // in file order and never let the clock run backwards.
    const at = Number.isFinite(t) ? Math.max(t, prevAt) : prevAt;
    lines.push({ line, at });
    if (Number.isFinite(at)) prevAt = at;
  }
  if (lines.length === 0) {
    throw new DroptraceError('E_REPLAY', 'input', `replay file ${file} has no stream lines`, { hint: 'expected NDJSON from droptrace stream' });
  }
  // lines before the first timed one play at its time
  const firstAt = lines.find((l) => Number.isFinite(l.at))?.at ?? 0;
  for (const l of lines) if (!Number.isFinite(l.at)) l.at = firstAt;
  return { lines, unknown };
}

export async function loadRecording(file: string): Promise<Recording> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (code ?? 'unreadable');
    throw new DroptraceError('E_REPLAY', 'input', `cannot read replay file ${file}: ${why}`);
  }
  return parseRecording(text, file);
}

export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(t: unknown): void;
}

export const realTimers: Timers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
};

/** Shortest wait between wake-ups: at high speeds lines due together are fed in one batch. */
const MIN_WAIT_MS = 50;

/**
 * Feeds a recording into the store at `speed` × the recorded pace. One timer at a time, set for
 * the next line or the next recorded second (so the sparklines move through quiet stretches);
 * none once the recording has ended.
 */
export class ReplayPlayer {
  #i = 0;
  #timer: unknown = null;
  #wallStart = 0;
  #t0 = 0;
  #stopped = false;

  constructor(
    private readonly rec: Recording,
    private readonly store: TuiStore,
    private readonly speed: number,
    private readonly timers: Timers = realTimers,
  ) {
    if (!(speed >= 0 && Number.isFinite(speed))) throw new RangeError(`speed must be a finite number >= 0, got ${speed}`);
  }

  start(): void {
    this.store.ignore(this.rec.unknown);
    const lines = this.rec.lines;
    if (this.speed === 0) {
      for (const l of lines) this.store.ingest(l.line);
      this.store.tick(lines[lines.length - 1]!.at);
      this.store.end('end of recording');
      return;
    }
    this.#t0 = lines[0]!.at;
    this.#wallStart = this.timers.now();
    this.#step();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) this.timers.clearTimeout(this.#timer);
    this.#timer = null;
  }

  #step(): void {
    this.#timer = null;
    if (this.#stopped) return;
    const lines = this.rec.lines;
    const virtual = this.#t0 + (this.timers.now() - this.#wallStart) * this.speed;
    while (this.#i < lines.length && lines[this.#i]!.at <= virtual) this.store.ingest(lines[this.#i++]!.line);
    const last = lines[lines.length - 1]!.at;
    this.store.tick(Math.min(virtual, last));
    if (this.#i >= lines.length) {
      this.store.end('end of recording');
      return;
    }
    const nextSecond = (Math.floor(virtual / 1000) + 1) * 1000;
    const due = Math.min(lines[this.#i]!.at, nextSecond);
    this.#timer = this.timers.setTimeout(() => this.#step(), Math.max(MIN_WAIT_MS, (due - virtual) / this.speed));
  }
}

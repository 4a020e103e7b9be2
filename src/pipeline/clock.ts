/**
 * Drop times. The kernel stamps each drop with CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns);
 * one pair of clock readings taken at start turns them into wall-clock time, exactly. The
 * pipeline carries a time as numbers (DropTime: epoch seconds and the nanoseconds of that
 * second, both small integers V8 keeps unboxed); the ISO-8601 text is made only when a sink
 * writes the line (JSON.stringify calls toJSON), and nothing parses it back.
 */
export interface ClockPair {
  monotonicNs: bigint;
  realtimeNs: bigint;
}

/** A kernel drop's wall-clock time, to the nanosecond. */
export class DropTime {
  constructor(
    /** whole seconds since the epoch */
    readonly sec: number,
    /** nanoseconds of that second, 0 to 999999999 */
    readonly nsec: number,
  ) {}

  /** Milliseconds since the epoch, as Date.getTime() (the sub-millisecond part cut off). */
  getTime(): number {
    return this.sec * 1000 + Math.floor(this.nsec / 1e6);
  }

  /** Nanoseconds since the epoch (a pcapng timestamp); a number cannot hold them exactly. */
  epochNs(): bigint {
    return BigInt(this.sec) * 1_000_000_000n + BigInt(this.nsec);
  }

  /** ISO-8601 UTC with nine fractional digits: what the NDJSON stream writes. */
  toJSON(): string {
    return isoNs(this.sec, this.nsec);
  }
}

/**
 * The time of a line: a DropTime for a drop the kernel sent detail for, the Date of the
 * reconcile for a folded line (written as Date writes itself, to the millisecond), ISO text in
 * a line read back from a recording (`top --replay`) or written by hand.
 */
export type LineTime = DropTime | Date | string;

/** Milliseconds since the epoch of a line's time; NaN when it is text that is not a time. */
export function timeMs(t: LineTime): number {
  return typeof t === 'string' ? Date.parse(t) : t.getTime();
}

export class WallClock {
  readonly monoBaseNs: bigint;
  private readonly baseSec: number;
  private readonly baseNsec: number;

  constructor(pair: ClockPair) {
    this.monoBaseNs = pair.monotonicNs;
    this.baseSec = Number(pair.realtimeNs / 1_000_000_000n);
    this.baseNsec = Number(pair.realtimeNs % 1_000_000_000n);
  }

  /** The time of an event `deltaNs` after the monotonic base. */
  at(deltaNs: number): DropTime {
    const total = this.baseNsec + deltaNs;
    const carry = Math.floor(total / 1e9);
    return new DropTime(this.baseSec + carry, total - carry * 1e9);
  }
}

// Events come in bursts: each second, and each millisecond of it, is formatted once.
let lastSec = -1;
let lastPrefix = '';
let lastMs = -1;
let lastMsPrefix = '';

/** "2026-11-24T09:04:30.123456789Z" of epoch second `sec` and nanosecond `nsec`. */
export function isoNs(sec: number, nsec: number): string {
  const ms = Math.floor(nsec / 1e6);
  if (sec !== lastSec) {
    lastSec = sec;
    lastPrefix = new Date(sec * 1000).toISOString().slice(0, 19) + '.'; // "2026-11-24T09:04:30."
    lastMs = -1;
  }
  if (ms !== lastMs) {
    lastMs = ms;
    lastMsPrefix = lastPrefix + DIGITS3[ms]!;
  }
  // the other six digits from two tables, without number-to-text
  const rest = nsec - ms * 1e6;
  const us = Math.floor(rest / 1e3);
  return lastMsPrefix + DIGITS3[us]! + DIGITS3_Z[rest - us * 1e3]!;
}

/** "000" to "999" */
const DIGITS3: string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
/** "000Z" to "999Z" */
const DIGITS3_Z: string[] = DIGITS3.map((d) => `${d}Z`);

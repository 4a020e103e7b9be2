/**
 * Turns CLOCK_MONOTONIC event times (bpf_ktime_get_ns) into ISO-8601 UTC with nanoseconds,
 * exactly, from one pair of clock readings taken at start.
 */
export interface ClockPair {
  monotonicNs: bigint;
  realtimeNs: bigint;
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

  /** Wall-clock nanoseconds since the epoch of an event `deltaNs` after the monotonic base. */
  epochNs(deltaNs: number): bigint {
    return BigInt(this.baseSec) * 1_000_000_000n + BigInt(this.baseNsec) + BigInt(deltaNs);
  }

  private lastSec = -1;
  private lastPrefix = '';
  private lastMs = -1;
  private lastMsPrefix = '';

  /** ISO time of an event `deltaNs` after the monotonic base. */
  iso(deltaNs: number): string {
    const total = this.baseNsec + deltaNs;
    const carry = Math.floor(total / 1e9);
    const nsec = total - carry * 1e9;
    const sec = this.baseSec + carry;
    const ms = Math.floor(nsec / 1e6);
    // events come in bursts: format each second, and each millisecond of it, once
    if (sec !== this.lastSec) {
      this.lastSec = sec;
      this.lastPrefix = new Date(sec * 1000).toISOString().slice(0, 19) + '.'; // "2026-11-24T09:04:30."
      this.lastMs = -1;
    }
    if (ms !== this.lastMs) {
      this.lastMs = ms;
      this.lastMsPrefix = this.lastPrefix + DIGITS3[ms]!;
    }
    // the other six digits from two tables, without number-to-text
    const rest = nsec - ms * 1e6;
    const us = Math.floor(rest / 1e3);
    return this.lastMsPrefix + DIGITS3[us]! + DIGITS3_Z[rest - us * 1e3]!;
  }
}

/** "000" to "999" */
const DIGITS3: string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
/** "000Z" to "999Z" */
const DIGITS3_Z: string[] = DIGITS3.map((d) => `${d}Z`);

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

  /** ISO time of an event `deltaNs` after the monotonic base. */
  iso(deltaNs: number): string {
    const total = this.baseNsec + deltaNs;
    const carry = Math.floor(total / 1e9);
    const nsec = total - carry * 1e9;
    const sec = this.baseSec + carry;
    // events come in bursts within one second: format that second once
    if (sec !== this.lastSec) {
      this.lastSec = sec;
      this.lastPrefix = new Date(sec * 1000).toISOString().slice(0, 19); // "2026-11-24T09:04:30"
    }
    return `${this.lastPrefix}.${String(nsec).padStart(9, '0')}Z`;
  }
}

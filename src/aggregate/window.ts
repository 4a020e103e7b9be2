/**
 * Windows over time, shared by the live views: per-second counts of the last WINDOW_SECONDS
 * seconds, keyed by absolute second, from which rates (whole seconds summed, then divided once,
 * so rates add up exactly) and sparklines are read. Pure: time is whatever the caller says.
 */

/** Seconds a window keeps: a power of two, at least a 60 s sparkline and a rate's seconds. */
export const WINDOW_SECONDS = 64;

export class SecondWindow {
  readonly secs = new Float64Array(WINDOW_SECONDS).fill(-1);
  readonly counts = new Float64Array(WINDOW_SECONDS);

  add(sec: number, n: number): void {
    const i = sec & (WINDOW_SECONDS - 1);
    if (this.secs[i] !== sec) {
      // an event older than the ring's reach must not wipe a newer second
      if (this.secs[i]! > sec) return;
      this.secs[i] = sec;
      this.counts[i] = 0;
    }
    this.counts[i]! += n;
  }

  get(sec: number): number {
    const i = sec & (WINDOW_SECONDS - 1);
    return this.secs[i] === sec ? this.counts[i]! : 0;
  }

  /** Sum over the seconds [from, to]. */
  sum(from: number, to: number): number {
    let s = 0;
    for (let t = from; t <= to; t++) s += this.get(t);
    return s;
  }

  addInto(out: number[], firstSec: number): void {
    for (let k = 0; k < out.length; k++) out[k]! += this.get(firstSec + k);
  }

  clone(): SecondWindow {
    const r = new SecondWindow();
    r.secs.set(this.secs);
    r.counts.set(this.counts);
    return r;
  }
}

/** Events per second over the `seconds` whole seconds before `nowSec` (the current one is still filling). */
export function rateOf(w: SecondWindow, nowSec: number, seconds: number): number {
  return w.sum(nowSec - seconds, nowSec - 1) / seconds;
}

/** `seconds` per-second counts ending with `nowSec`, oldest first: a sparkline's input. */
export function sparkOf(w: SecondWindow, nowSec: number, seconds: number): number[] {
  const out = new Array<number>(seconds).fill(0);
  w.addInto(out, nowSec - seconds + 1);
  return out;
}

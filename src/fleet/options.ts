/**
 * Flags of the fleet view and `stream --prometheus`: durations such as `1h`, `30m`, `90s`, `2d`
 * (or plain seconds), checked while parsing so a bad one is exit 2 before anything is asked.
 */
import { InvalidArgumentError } from 'commander';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

export function parseDuration(flag: string) {
  return (v: string): number => {
    const m = /^(\d+)(s|m|h|d|w)?$/.exec(v.trim());
    const s = m ? Number(m[1]) * UNITS[m[2] ?? 's']! : NaN;
    if (!(s >= 1 && s <= 366 * 86400)) throw new InvalidArgumentError(`${flag} wants a duration such as 90s, 30m, 1h or 2d (at most a year), got "${v}"`);
    return s;
  };
}

/** Window of the per-second rates: 5 minutes (a few scrapes even at 1/min), or --since if shorter. */
export function rateWindow(sinceS: number): number {
  return Math.min(300, sinceS);
}

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DropTime, timeMs, WallClock } from '../../src/pipeline/clock.js';

/** The text the NDJSON sink writes for an event `d` ns after the monotonic base. */
const iso = (c: WallClock, d: number): string => JSON.stringify(c.at(d)).slice(1, -1);

describe('WallClock', () => {
  it('adds monotonic deltas to the realtime base exactly, with nanoseconds', () => {
    const c = new WallClock({ monotonicNs: 5_000_000_000n, realtimeNs: 1_795_510_937_999_999_999n });
    expect(iso(c, 0)).toBe('2026-11-24T09:02:17.999999999Z');
    expect(iso(c, 1)).toBe('2026-11-24T09:02:18.000000000Z');
    expect(iso(c, 86_400_000_000_001)).toBe('2026-11-25T09:02:18.000000000Z');
  });

  it('formats every time like Date, with the nanoseconds appended, in any order of events', () => {
    const base = { monotonicNs: 5_000_000_000n, realtimeNs: 1_795_510_937_123_456_789n };
    const c = new WallClock(base);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -1_000_000_000_000, max: 100_000_000_000_000 }), { minLength: 1, maxLength: 50 }), (deltas) => {
        for (const d of deltas) {
          const ns = base.realtimeNs + BigInt(d);
          const sec = ns / 1_000_000_000n;
          const want = `${new Date(Number(sec) * 1000).toISOString().slice(0, 19)}.${String(ns % 1_000_000_000n).padStart(9, '0')}Z`;
          expect(iso(c, d)).toBe(want);
        }
      }),
      { numRuns: 300 },
    );
    // the same millisecond and second again, after others
    expect(iso(c, 0)).toBe('2026-11-24T09:02:17.123456789Z');
    expect(iso(c, 1)).toBe('2026-11-24T09:02:17.123456790Z');
  });

  it('keeps the time as numbers: epoch ms as Date has them, epoch ns exactly', () => {
    const c = new WallClock({ monotonicNs: 5_000_000_000n, realtimeNs: 1_795_510_937_123_456_789n });
    const t = c.at(1_000_000);
    expect([t.sec, t.nsec, t.getTime(), t.epochNs()]).toEqual([1_795_510_937, 124_456_789, 1_795_510_937_124, 1_795_510_937_124_456_789n]);
    expect(t.toJSON()).toBe('2026-11-24T09:02:17.124456789Z');
    // what readers of any line's time get: kernel times, a folded line's Date, a recording's text
    expect([timeMs(t), timeMs(new Date(1_795_510_937_124)), timeMs('2026-11-24T09:02:17.124999999Z'), timeMs('not a time')]).toEqual([1_795_510_937_124, 1_795_510_937_124, 1_795_510_937_124, NaN]);
    expect(new DropTime(1_795_510_937, 999_999_999).getTime()).toBe(1_795_510_937_999);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WallClock } from '../../src/pipeline/clock.js';

describe('WallClock', () => {
  it('adds monotonic deltas to the realtime base exactly, with nanoseconds', () => {
    const c = new WallClock({ monotonicNs: 5_000_000_000n, realtimeNs: 1_795_510_937_999_999_999n });
    expect(c.iso(0)).toBe('2026-11-24T09:02:17.999999999Z');
    expect(c.iso(1)).toBe('2026-11-24T09:02:18.000000000Z');
    expect(c.iso(86_400_000_000_001)).toBe('2026-11-25T09:02:18.000000000Z');
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
          expect(c.iso(d)).toBe(want);
        }
      }),
      { numRuns: 300 },
    );
    // the same millisecond and second again, after others
    expect(c.iso(0)).toBe('2026-11-24T09:02:17.123456789Z');
    expect(c.iso(1)).toBe('2026-11-24T09:02:17.123456790Z');
  });
});

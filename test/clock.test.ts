import { describe, expect, it } from 'vitest';
import { WallClock } from '../src/clock.js';

describe('WallClock', () => {
  it('adds monotonic deltas to the realtime base exactly, with nanoseconds', () => {
    const c = new WallClock({ monotonicNs: 5_000_000_000n, realtimeNs: 1_795_510_937_999_999_999n });
    expect(c.iso(0)).toBe('2026-11-24T09:02:17.999999999Z');
    expect(c.iso(1)).toBe('2026-11-24T09:02:18.000000000Z');
    expect(c.iso(86_400_000_000_001)).toBe('2026-11-25T09:02:18.000000000Z');
  });
});

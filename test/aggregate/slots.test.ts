import { describe, expect, it } from 'vitest';
import { Slots } from '../../src/aggregate/slots.js';

describe('Slots', () => {
  it('gives at most `limit` keys a slot; a key past it gets none until one leaves', () => {
    const s = new Slots<string>(2);
    expect(['a', 'b', 'c', 'a'].map((k) => s.take(k, 0, () => k.toUpperCase()))).toEqual(['A', 'B', null, 'A']);
    s.retain((k) => k !== 'a');
    expect([s.take('c', 0, () => 'C'), s.size, s.has('a')]).toEqual(['C', 2, false]);
  });

  it('takes the slot of a key idle for idleMs, once a second at most, and says which it evicted', () => {
    const evicted: string[] = [];
    const s = new Slots<number>(2, 60_000, (v, k) => evicted.push(`${k}=${v}`));
    s.take('old', 0, () => 1);
    s.take('busy', 0, () => 2);
    expect(s.take('busy', 30_000, () => -1)).toBe(2);
    expect(s.take('new', 59_900, () => 3)).toBeNull();
    // old is idle now, but the last scan (at 59.9 s) was less than a second ago
    expect(s.take('new', 60_500, () => 3)).toBeNull();
    expect(s.take('new', 60_900, () => 3)).toBe(3);
    expect([evicted, s.has('busy')]).toEqual([['old=1'], true]);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KEY_UNITS, KeyTable } from '../../src/pipeline/keytable.js';

describe('KeyTable', () => {
  it('numbers keys in the order they were added, like a Map, through growth and clears', () => {
    // any UTF-16 units, few enough (a surrogate pair is two)
    const key = fc
      .oneof(fc.string({ maxLength: KEY_UNITS }), fc.constantFrom('a', 'b', 'ab', ''), fc.string({ minLength: KEY_UNITS / 2, maxLength: KEY_UNITS, unit: 'binary' }))
      .filter((k) => k.length <= KEY_UNITS);
    fc.assert(
      fc.property(fc.array(fc.oneof(key, fc.constant(null)), { maxLength: 300 }), (steps) => {
        const t = new KeyTable(16);
        const model = new Map<string, number>();
        for (const k of steps) {
          if (k === null) {
            t.clear();
            model.clear();
            continue;
          }
          expect(t.get(k)).toBe(model.get(k) ?? -1);
          if (!model.has(k)) model.set(k, model.size);
          expect(t.add(k)).toBe(model.get(k));
          expect(t.size).toBe(model.size);
        }
        for (const [k, e] of model) expect(t.get(k)).toBe(e);
      }),
      { numRuns: 300 },
    );
  });

  it('holds 100,000 keys of 26 units', () => {
    const t = new KeyTable(1024);
    const key = (i: number) => String.fromCharCode(i & 0xffff, i >>> 16, ...new Array<number>(KEY_UNITS - 2).fill(7));
    for (let i = 0; i < 100_000; i++) expect(t.add(key(i))).toBe(i);
    for (let i = 0; i < 100_000; i += 997) expect(t.get(key(i))).toBe(i);
    expect(t.get(key(100_000))).toBe(-1);
  });

  it('refuses a key longer than a per-key counter key', () => {
    expect(() => new KeyTable().add('x'.repeat(KEY_UNITS + 1))).toThrow(RangeError);
  });
});

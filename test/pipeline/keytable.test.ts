import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KEY_SIZE } from '../../src/gen/record.js';
import { KeyTable, keyString } from '../../src/pipeline/keytable.js';

describe('KeyTable', () => {
  it('numbers keys in the order they were added, like a Map, through growth and clears', () => {
    // keys that differ in few bytes (collisions in the words) and anywhere in the span
    const key = fc.oneof(
      fc.uint8Array({ minLength: KEY_SIZE, maxLength: KEY_SIZE }),
      fc.tuple(fc.nat(KEY_SIZE - 1), fc.constantFrom(0, 1, 255)).map(([i, b]) => {
        const k = new Uint8Array(KEY_SIZE);
        k[i] = b;
        return k;
      }),
    );
    // a key somewhere in a larger buffer, as in a batch of records or a key-map dump
    const placed = fc.tuple(key, fc.nat(40)).map(([k, at]) => {
      const buf = new Uint8Array(at + KEY_SIZE + 7).fill(0xa5);
      buf.set(k, at);
      return { buf, at, name: keyString(k, 0) };
    });
    fc.assert(
      fc.property(fc.array(fc.oneof(placed, fc.constant(null)), { maxLength: 300 }), (steps) => {
        const t = new KeyTable(16);
        const model = new Map<string, number>();
        for (const k of steps) {
          if (k === null) {
            t.clear();
            model.clear();
            continue;
          }
          expect(t.get(k.buf, k.at)).toBe(model.get(k.name) ?? -1);
          if (!model.has(k.name)) model.set(k.name, model.size);
          expect(t.add(k.buf, k.at)).toBe(model.get(k.name));
          expect(t.size).toBe(model.size);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('holds 100,000 keys', () => {
    const t = new KeyTable(1024);
    const buf = new Uint8Array(KEY_SIZE).fill(7);
    const key = (i: number) => {
      new DataView(buf.buffer).setUint32(KEY_SIZE - 4, i, true);
      return buf;
    };
    const wrong: number[] = [];
    for (let i = 0; i < 100_000; i++) if (t.add(key(i), 0) !== i) wrong.push(i);
    for (let i = 0; i < 100_000; i += 997) if (t.get(key(i), 0) !== i) wrong.push(i);
    expect(wrong).toEqual([]);
    expect(t.get(key(100_000), 0)).toBe(-1);
  });
});

describe('keyString', () => {
  it("is the key's bytes, two to a UTF-16 unit, wherever the key is", () => {
    const buf = new Uint8Array(3 + KEY_SIZE);
    for (let i = 0; i < KEY_SIZE; i++) buf[3 + i] = i + 1;
    const s = keyString(buf, 3);
    expect(s).toHaveLength(KEY_SIZE / 2);
    expect([...s].slice(0, 3).map((c) => c.charCodeAt(0))).toEqual([0x0201, 0x0403, 0x0605]);
  });
});

import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EVENT_SIZE, FIELDS, KEY_FIELDS, layoutMismatches } from '../../src/pipeline/layout.js';
import type { NativeLayout } from '../../src/pipeline/layout.js';
import { loadNative, packageRoot } from '../../src/native/binding.js';

const built = existsSync(`${packageRoot()}/build/Release/droptrace.node`);
if (!built) console.warn('skipping layout check against the C header: the addon is not built (npm run build)');

describe('event layout', () => {
  it.skipIf(!built)('the decoder agrees with the C header, field by field', () => {
    const native = loadNative().layout();
    expect(layoutMismatches(native)).toEqual([]);
    expect(native.size).toBe(EVENT_SIZE);
    expect(EVENT_SIZE).toBe(120);
  });

  it('reports a moved field, a missing field and a new field', () => {
    const fields: Record<string, [number, number]> = {};
    for (const [k, v] of Object.entries(FIELDS)) fields[k] = [v[0], v[1]];
    fields.netns = [28, 4];
    delete fields.probe;
    fields.extra = [120, 4];
    const keyFields: Record<string, [number, number]> = {};
    for (const [k, v] of Object.entries(KEY_FIELDS)) keyFields[k] = [v[0], v[1]];
    const l: NativeLayout = { fields, size: 124, version: 2, reasonSlots: 1024, payloadMax: 192, flags: { IPV4: 1 }, keyFields, keySize: 52 };
    expect(layoutMismatches(l)).toEqual([
      'size: header 124, decoder 120',
      'field netns: header 28+4, decoder 24+4',
      'field extra: header 120+4, decoder absent',
      'field probe: header absent, decoder 44+1',
    ]);
  });
});

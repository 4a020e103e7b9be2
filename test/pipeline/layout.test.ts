import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EVENT_FIELDS, EVENT_SIZE, EVENT_VERSION, KEY_SIZE } from '../../src/gen/record.js';
import { layoutMismatches } from '../../src/pipeline/layout.js';
import { loadNative, packageRoot } from '../../src/native/binding.js';

const built = existsSync(`${packageRoot()}/build/Release/droptrace.node`);
if (!built) console.warn('skipping layout check against the addon: the addon is not built (bash scripts/setup.sh)');

describe('record layout', () => {
  it.skipIf(!built)('the addon was compiled from the header src/gen/record.ts was generated from', () => {
    const native = loadNative().layout();
    expect(native).toEqual({ size: EVENT_SIZE, keySize: KEY_SIZE, version: EVENT_VERSION });
    expect(layoutMismatches(native)).toEqual([]);
  });

  it('starts every record with its counter key', () => {
    expect(EVENT_FIELDS.key).toEqual([0, KEY_SIZE]);
  });

  it('names each difference with the addon', () => {
    expect(layoutMismatches({ size: EVENT_SIZE + 8, keySize: KEY_SIZE, version: EVENT_VERSION - 1 })).toEqual([
      `sizeof(struct dt_event): addon ${EVENT_SIZE + 8}, src/gen/record.ts ${EVENT_SIZE}`,
      `DT_EVENT_VERSION: addon ${EVENT_VERSION - 1}, src/gen/record.ts ${EVENT_VERSION}`,
    ]);
  });
});

/**
 * Folding what the kernel only counted: the kernel's per-key suppressed counts plus the detail
 * events the addon had to drop (per key, from its own count), turned into folded drop lines.
 */
import { decodeKeys, eachKey } from './decode.js';
import type { KeyCount } from './decode.js';
import type { LineTime } from './clock.js';
import type { DropEvent } from './events.js';
import type { EventBuilder } from './events.js';
import type { Folder } from './fold.js';
import type { TracerHandle } from '../native/binding.js';

export function reconcile(tracer: TracerHandle, folder: Folder, builder: EventBuilder, time: LineTime, emit: (ev: DropEvent) => void): void {
  const keysBuf = tracer.readKeys();
  const lostBuf = tracer.readLostKeys();
  // keys with nothing suppressed add nothing (a lost-only key stands alone, same sum)
  const lost = new Map(decodeKeys(lostBuf, { suppressedOnly: true }).map((k) => [k.key, k] as const));
  function* keys(): Generator<KeyCount> {
    for (const k of eachKey(keysBuf, { suppressedOnly: true })) {
      const l = lost.get(k.key);
      if (l) {
        k.suppressed += l.suppressed;
        lost.delete(k.key);
      }
      yield k;
    }
    yield* lost.values();
  }
  folder.reconcile(keys(), (raw) => builder.describe(raw), time, emit);
}

/**
 * Folding what the kernel only counted: the kernel's per-key suppressed counts plus the detail
 * events the addon had to drop since the last reconcile (per key, from its own count, read and
 * reset), turned into folded drop lines; what could no longer be folded is counted.
 */
import { decodeKeys, eachKey } from './decode.js';
import type { LineTime } from './clock.js';
import type { DropEvent } from './events.js';
import type { EventBuilder } from './events.js';
import type { Folder } from './fold.js';
import type { TracerHandle } from '../native/binding.js';

export function reconcile(tracer: TracerHandle, folder: Folder, builder: EventBuilder, time: LineTime, emit: (ev: DropEvent) => void, defer = false): void {
  // before the keys: growth after this read is never taken for an unfolded loss (Folder.settle)
  const c = tracer.readCounters();
  const held = Number(c.suppressed + c.ringLost);
  const keysBuf = tracer.readKeys();
  const lost = decodeKeys(tracer.readLostKeys(), { suppressedOnly: true });
  folder.reconcile(eachKey(keysBuf, { suppressedOnly: true }), (raw) => builder.describe(raw), time, emit, lost, defer);
  folder.settle(held);
}

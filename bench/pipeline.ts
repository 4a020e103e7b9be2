/**
 * Everything the bench takes from droptrace's pipeline, in one place: when a module moves
 * (e.g. the record layout into src/gen/), only these lines change. The TUI store and the live
 * pipeline are imported where used (bench/userspace.ts loads the store only when asked: its
 * modules would weigh on every RSS figure).
 */
export { WallClock } from '../src/pipeline/clock.js';
export { Decoder, eachKey } from '../src/pipeline/decode.js';
export { EventBuilder } from '../src/pipeline/events.js';
export { cachedSysctl } from '../src/pipeline/explain.js';
export { Folder } from '../src/pipeline/fold.js';
export { Symbolizer } from '../src/pipeline/kallsyms.js';
export { FIELDS, KEY_ENTRY_SIZE, KEY_FIELDS, KEY_SIZE } from '../src/pipeline/layout.js';
export { ReasonNames } from '../src/pipeline/reasons.js';
export type { DropEvent } from '../src/pipeline/events.js';
export type { RawDrop } from '../src/pipeline/decode.js';

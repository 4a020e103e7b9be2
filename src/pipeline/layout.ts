/**
 * The record layout as the pipeline uses it: src/gen/record.ts (generated from the BPF object's
 * BTF, see scripts/gen-record.mjs) under the names the stages use, and the start-up check of
 * that file against the addon the process loaded.
 */
import { CT_FLAG, EVENT_FIELDS, EVENT_SIZE, EVENT_VERSION, FLAG, KEY_FIELDS, KEY_SIZE, MARTIAN_FLAG, PAYLOAD_MAX, REASON_SLOTS } from '../gen/record.js';

export { EVENT_SIZE, EVENT_VERSION, KEY_FIELDS, KEY_SIZE, PAYLOAD_MAX, REASON_SLOTS };
/** `struct dt_event`; the members of its `key` are listed at their offsets in the event */
export const FIELDS = EVENT_FIELDS;
/** readKeys() entries: a key, then u64 count and u64 suppressed */
export const KEY_ENTRY_SIZE = KEY_SIZE + 16;

/** The three flag enums in one table, as the stages name them (flags, CT_*, M_*). */
export const FLAGS = {
  ...FLAG,
  CT_HAS_CT: CT_FLAG.HAS_CT,
  CT_CONFIRMED: CT_FLAG.CONFIRMED,
  CT_ACTIVE: CT_FLAG.ACTIVE,
  CT_DROP_ROSE: CT_FLAG.DROP_ROSE,
  CT_INSERT_FAILED_ROSE: CT_FLAG.INSERT_FAILED_ROSE,
  CT_INVALID_ROSE: CT_FLAG.INVALID_ROSE,
  CT_NO_BASELINE: CT_FLAG.NO_BASELINE,
  CT_ALLOC_FAILED: CT_FLAG.ALLOC_FAILED,
  M_LOG_ALL: MARTIAN_FLAG.LOG_ALL,
  M_LOG_DEV: MARTIAN_FLAG.LOG_DEV,
  M_SOURCE_SEEN: MARTIAN_FLAG.SOURCE_SEEN,
  M_KNOWN: MARTIAN_FLAG.KNOWN,
} as const;

/** What the addon's compiler says of the record (native layout()). */
export interface NativeLayout {
  size: number;
  keySize: number;
  version: number;
}

/** Differences between src/gen/record.ts and the addon loaded; empty when they agree. */
export function layoutMismatches(native: NativeLayout): string[] {
  const out: string[] = [];
  const check = (what: string, addon: number, gen: number) => {
    if (addon !== gen) out.push(`${what}: addon ${addon}, src/gen/record.ts ${gen}`);
  };
  check('sizeof(struct dt_event)', native.size, EVENT_SIZE);
  check('sizeof(struct dt_key)', native.keySize, KEY_SIZE);
  check('DT_EVENT_VERSION', native.version, EVENT_VERSION);
  return out;
}

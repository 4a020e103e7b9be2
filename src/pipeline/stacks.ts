/**
 * --stack: kernel stacks of the first drops of each key, as frames (`nf_hook_slow+0x44`). The
 * kernel keeps each distinct stack once, in its stack map, and records carry its id
 * (probes/droptrace.bpf.c take_stack); a stack is read from the map and symbolized once per id,
 * then shared by every line that names it. The cache cannot grow past the map's entries
 * (STACK_ENTRIES), since ids are its buckets.
 */
import { STACK_DEPTH } from '../gen/record.js';
import type { Symbolizer } from './kallsyms.js';

/** Frames a drop line carries at most: the drop and the callers that tell why. */
export const STACK_FRAMES = 16;

/**
 * The tracing path above the drop (the program, bpf_trace_run, the tracepoint's glue) is the
 * same in every stack and says nothing about the drop, so the frames start below it, at the
 * function that freed the skb (sk_skb_reason_drop, kfree_skb_reason). That function's caller
 * is the drop's location: the tracepoint's `location` is its return address, the very address
 * the stack holds for that frame, so the stack starts one frame above it. By name, below, only
 * when the location is not in the stack: the program's own frame has no name to go by (kallsyms
 * was read before it was loaded, and lists BPF programs only with bpf_jit_kallsyms).
 */
const TRACING = /^(bpf_prog_|bpf_trace_run\d|__bpf_trace_|__traceiter_|trace_event_raw_event_|perf_trace_|trace_call_bpf|bpf_get_stackid)/;

export class StackResolver {
  /** lines whose record named a stack the map did not have (counted, the line has no `stack`) */
  unreadable = 0;
  private readonly cache = new Map<number, readonly string[]>();

  constructor(
    private readonly read: (id: number) => Uint8Array | null,
    private readonly symbols: Symbolizer,
  ) {}

  /**
   * The frames of stack `id`, innermost first; null when the map has no such stack. `location`
   * is the drop's (every drop with this stack has it: it is one of its frames).
   */
  stack(id: number, location: bigint): readonly string[] | null {
    const hit = this.cache.get(id);
    if (hit) return hit;
    const raw = this.read(id);
    if (!raw) {
      this.unreadable++;
      return null;
    }
    const frames = framesOf(raw, this.symbols, location);
    this.cache.set(id, frames);
    return frames;
  }
}

/** A stack map entry (u64 addresses, 0 past the last) → at most STACK_FRAMES frames. */
export function framesOf(raw: Uint8Array, symbols: Symbolizer, location = 0n): string[] {
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const addrs: bigint[] = [];
  for (let i = 0; i < Math.min(STACK_DEPTH, Math.floor(raw.byteLength / 8)); i++) {
    const addr = v.getBigUint64(i * 8, true);
    if (addr === 0n) break;
    addrs.push(addr);
  }
  const at = location === 0n ? -1 : addrs.indexOf(location);
  let from = Math.max(0, at - 1);
  if (at < 0) while (from < addrs.length && TRACING.test(symbols.lookup(addrs[from]!))) from++;
  return addrs.slice(from, from + STACK_FRAMES).map((a) => symbols.frame(a));
}

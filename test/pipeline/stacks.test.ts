/**
 * --stack in userspace: kernel addresses to frames (`function+0xoffset [module]`) from a small
 * kallsyms fixture, the tracing path above the drop left out, each stack read and symbolized
 * once per id; and through runStream: lines with a stack are never folded, the stats line
 * counts stacks, and without --stack there is no `stack` anywhere.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { STACK_DEPTH } from '../../src/gen/record.js';
import type { DropEvent, StatsLine, StreamLine } from '../../src/pipeline/events.js';
import { Symbolizer } from '../../src/pipeline/kallsyms.js';
import { FIELDS, FLAGS } from '../../src/pipeline/layout.js';
import { ReasonNames } from '../../src/pipeline/reasons.js';
import { framesOf, STACK_FRAMES, StackResolver } from '../../src/pipeline/stacks.js';
import { runStream } from '../../src/pipeline/stream.js';
import type { StreamOptions } from '../../src/pipeline/stream.js';
import { FakeBinding, GOLDEN, GOLDEN_RECORDS } from '../helpers/fake-tracer.js';
import type { FakeScript } from '../helpers/fake-tracer.js';

const symbols = new Symbolizer(readFileSync(new URL('../fixtures/kallsyms-stack.txt', import.meta.url)));

/** A stack map entry as the addon reads it: STACK_DEPTH u64s, 0 past the last frame. */
function entry(addrs: bigint[]): Buffer {
  const b = Buffer.alloc(STACK_DEPTH * 8);
  addrs.slice(0, STACK_DEPTH).forEach((a, i) => b.writeBigUInt64LE(a, i * 8));
  return b;
}

/** A netfilter drop's stack as the tp_btf program takes it: the program and the tracepoint's glue first. */
const NF_STACK = [
  0xffffffffc0b00123n, // bpf_prog_..._dt_kfree_skb_btf [bpf]
  0xffffffff811a2044n, // bpf_trace_run3
  0xffffffff811a2110n, // __bpf_trace_kfree_skb
  0xffffffff81c10090n, // sk_skb_reason_drop
  0xffffffffc0a0146fn, // nft_do_chain [nf_tables]
  0xffffffffc0a01870n, // nft_do_chain_ipv4 [nf_tables]
  0xffffffff81f66043n, // nf_hook_slow
  0xffffffff81fa0119n, // ip_local_deliver
  0xffffffff81fa0310n, // ip_rcv_finish_core.constprop.0
];

describe('Symbolizer.frame', () => {
  it('names a frame by its function, offset and module, as kernel traces do', () => {
    expect(symbols.frame(0xffffffff81f66043n)).toBe('nf_hook_slow+0x43');
    expect(symbols.frame(0xffffffff81f66000n)).toBe('nf_hook_slow+0x0');
    expect(symbols.frame(0xffffffffc0a0146fn)).toBe('nft_do_chain+0x46f [nf_tables]');
    expect(symbols.frame(0xffffffff81fa0310n)).toBe('ip_rcv_finish_core+0x10');
    // below the first symbol, and kptr_restrict's zeros: the bare address, never a guess
    expect(symbols.frame(0xffffffff80000000n)).toBe('0xffffffff80000000');
    expect(new Symbolizer('0000000000000000 T foo\n').frame(0xffffffff81f66043n)).toBe('0xffffffff81f66043');
  });
});

describe('framesOf', () => {
  it('starts at the function that freed the packet, innermost first', () => {
    expect(framesOf(entry(NF_STACK), symbols)).toEqual([
      'sk_skb_reason_drop+0x90',
      'nft_do_chain+0x46f [nf_tables]',
      'nft_do_chain_ipv4+0x70 [nf_tables]',
      'nf_hook_slow+0x43',
      'ip_local_deliver+0x119',
      'ip_rcv_finish_core+0x10',
    ]);
  });

  it('starts one frame above the drop location when the stack holds it, whatever is above', () => {
    // the program's own frame, loaded after kallsyms was read: the symbol below it is another's
    const unnamed = [0xffffffff8fff0000n, ...NF_STACK.slice(1)];
    expect(framesOf(entry(unnamed), symbols, 0xffffffffc0a0146fn).slice(0, 2)).toEqual(['sk_skb_reason_drop+0x90', 'nft_do_chain+0x46f [nf_tables]']);
    // without the location, names alone cannot tell it from a real frame
    expect(framesOf(entry(unnamed), symbols)[0]).toBe('ip_rcv_finish_core+0xe04fd00');
  });

  it('keeps at most STACK_FRAMES frames, and tracing frames below the drop', () => {
    const deep = [0xffffffff81c10090n, ...Array.from({ length: 30 }, () => 0xffffffff811a2044n)];
    const frames = framesOf(entry(deep), symbols);
    expect(frames).toHaveLength(STACK_FRAMES);
    expect(frames[0]).toBe('sk_skb_reason_drop+0x90');
    expect(frames[1]).toBe('bpf_trace_run3+0x44');
  });
});

describe('StackResolver', () => {
  it('reads and symbolizes each stack id once, and counts ids the map did not have', () => {
    const reads: number[] = [];
    const r = new StackResolver((id) => {
      reads.push(id);
      return id === 7 ? entry(NF_STACK) : null;
    }, symbols);
    const a = r.stack(7, 0xffffffffc0a0146fn);
    expect(a?.[3]).toBe('nf_hook_slow+0x43');
    expect(r.stack(7, 0xffffffffc0a0146fn)).toBe(a);
    expect(r.stack(9, 0n)).toBeNull();
    expect(r.stack(9, 0n)).toBeNull();
    expect(reads).toEqual([7, 9, 9]);
    expect(r.unreadable).toBe(2);
  });
});

/** Golden record 0 (a UDP drop to port 5400), with a stack id when `id` is given. */
function record(id?: number): Buffer {
  const r = Buffer.from(GOLDEN_RECORDS[0]!);
  if (id !== undefined) {
    r[FIELDS.flags[0]] = r[FIELDS.flags[0]]! | FLAGS.STACK;
    r.writeUInt16LE(id, FIELDS.stack_id[0]);
  }
  return r;
}

async function stream(script: FakeScript, extra: Partial<StreamOptions>): Promise<StreamLine[]> {
  const fake = new FakeBinding(script);
  const lines: StreamLine[] = [];
  const ac = new AbortController();
  const result = runStream({
    native: fake,
    tracer: {},
    reasons: new ReasonNames(GOLDEN.reasons),
    symbols,
    sysctl: () => null,
    meta: { version: 'test', node: 'n', kernel: 'k' },
    emit: (l) => lines.push(l),
    statsIntervalMs: 3_600_000,
    foldIntervalMs: 3_600_000,
    signal: ac.signal,
    ...extra,
  });
  await fake.tracer.done;
  ac.abort();
  await result;
  return lines;
}

describe('runStream with --stack', () => {
  // one key, one batch: two drops with the kernel's stack, three past the key's stacks
  const batch = Buffer.concat([record(7), record(7), record(), record(), record()]);
  const counters = { stackTaken: 2n, stackNotTaken: 3n, stackFailed: 0n };

  it('gives each drop with a stack a line of its own, folds the rest, and counts stacks in stats', async () => {
    const lines = await stream({ batches: [batch], stacks: new Map([[7, entry(NF_STACK)]]), counters }, { tracer: { stackPerKey: 2 } });
    const drops = lines.filter((l): l is DropEvent => l.type === 'drop');
    expect(drops.map((d) => [d.count, d.stack?.length ?? 0])).toEqual([
      [1, 6],
      [1, 6],
      [3, 0],
    ]);
    expect(drops[0]!.stack).toEqual(framesOf(entry(NF_STACK), symbols));
    expect(JSON.parse(JSON.stringify(drops[2]))).not.toHaveProperty('stack');
    const last = lines.at(-1) as StatsLine;
    expect(last.stacks).toEqual({ taken: 2, not_taken: 3, failed: 0, unreadable: 0 });
  });

  it('counts a stack the map did not have, and writes its line without one', async () => {
    const lines = await stream({ batches: [Buffer.concat([record(7), record(8)])], stacks: new Map([[7, entry(NF_STACK)]]), counters }, { tracer: { stackPerKey: 2 } });
    const drops = lines.filter((l): l is DropEvent => l.type === 'drop');
    expect(drops.map((d) => d.stack === undefined)).toEqual([false, true]);
    expect((lines.at(-1) as StatsLine).stacks?.unreadable).toBe(1);
  });

  it('without --stack: no stack read, no `stack` field, no `stacks` in stats', async () => {
    const lines = await stream({ batches: [Buffer.concat([record(), record(), record()])] }, {});
    const text = lines.map((l) => JSON.stringify(l));
    expect(text.filter((t) => t.includes('"stack'))).toEqual([]);
    const drops = lines.filter((l): l is DropEvent => l.type === 'drop');
    expect(drops.map((d) => d.count)).toEqual([3]);
  });
});

/**
 * What the TUI's budget sheds is counted per key as userspace loss and folded back: the ledger
 * on its own, a batch described in slices under a budget, and runStream with a budget that has
 * no time at all (every count still adds up to the kernel's).
 */
import { keyEntry } from '../helpers/records.js';
import { describe, expect, it } from 'vitest';
import type { DropEvent, StatsLine, StreamLine } from '../../src/pipeline/events.js';
import { decodeKeys } from '../../src/pipeline/decode.js';
import { Symbolizer } from '../../src/pipeline/kallsyms.js';
import { KEY_ENTRY_SIZE } from '../../src/pipeline/layout.js';
import { ReasonNames } from '../../src/pipeline/reasons.js';
import { handleWithin, recordsEnd, ShedLedger, SLICE_RECORDS } from '../../src/pipeline/shed.js';
import type { WorkBudget } from '../../src/pipeline/shed.js';
import { runStream } from '../../src/pipeline/stream.js';
import { FIELDS, KEY_FIELDS, KEY_SIZE } from '../../src/pipeline/layout.js';
import { FakeBinding, GOLDEN, GOLDEN_RECORDS } from '../helpers/fake-tracer.js';

const [r0, r1, r2] = GOLDEN_RECORDS as [Buffer, Buffer, Buffer];


/** lost-key entries as [dport, lost, lost] */
const entries = (buf: Buffer) => decodeKeys(buf).map((k) => [k.flowRecord.dport, k.count, k.suppressed]);
/** the destination port of a record's key (the golden records differ in it) */
const dport = (r: Buffer) => decodeKeys(keyEntry(r, 1, 1))[0]!.flowRecord.dport;

describe('ShedLedger', () => {
  it('counts shed records per key and adds them to the addon\'s lost keys, one entry per key', () => {
    const l = new ShedLedger();
    l.add(Buffer.concat([r0, r0, r1]));
    // from an offset: only what follows it
    l.add(Buffer.concat([r2, r0, r2]), r2.length);
    expect([l.total, l.unkeyed, l.malformed]).toEqual([5, 0, 0]);
    const native = Buffer.concat([keyEntry(r1, 4, 4), keyEntry(r0, 1, 1)]);
    // the addon's entries first (with the shed added), then keys only the ledger has
    expect(new Set([dport(r0), dport(r1), dport(r2)]).size).toBe(3);
    expect(entries(l.mergeLostKeys(native))).toEqual([
      [dport(r1), 5, 5],
      [dport(r0), 4, 4],
      [dport(r2), 1, 1],
    ]);
    // deltas, as the addon's table: a second read hands out only what was shed since
    expect(l.mergeLostKeys(Buffer.alloc(0)).length).toBe(0);
    l.add(r2);
    expect(entries(l.mergeLostKeys(Buffer.alloc(0)))).toEqual([[dport(r2), 1, 1]]);
  });

  it('counts a tail that does not frame a record as malformed, never as a drop', () => {
    const l = new ShedLedger();
    // a second record whose size field is 0
    l.add(Buffer.concat([r0, Buffer.alloc(r0.length)]));
    expect([l.total, l.malformed]).toEqual([1, 1]);
  });
});

describe('handleWithin', () => {
  const batch = Buffer.concat(Array.from({ length: 2 * SLICE_RECORDS + 10 }, () => r0));
  const total = 2 * SLICE_RECORDS + 10;

  it('describes slices while the budget admits them and sheds the rest of the batch into the ledger', () => {
    let asked = 0;
    const shed: number[] = [];
    const budget: WorkBudget = { admit: () => asked++ < 1, shed: (n) => shed.push(n) };
    const slices: number[] = [];
    const ledger = new ShedLedger();
    handleWithin(batch, (b) => slices.push(b.length / r0.length), budget, ledger);
    expect(slices).toEqual([SLICE_RECORDS]);
    expect(shed).toEqual([total - SLICE_RECORDS]);
    expect(ledger.total).toBe(total - SLICE_RECORDS);
  });

  it('hands the whole batch over, as it is, when it fits one slice', () => {
    const seen: Buffer[] = [];
    handleWithin(r0, (b) => seen.push(b), { admit: () => true, shed: () => undefined }, new ShedLedger());
    expect(seen).toEqual([r0]);
    expect(seen[0]).toBe(r0);
    expect(recordsEnd(batch, 0, SLICE_RECORDS)).toBe(SLICE_RECORDS * r0.length);
    expect(recordsEnd(batch, 0, 10 * total)).toBe(batch.length);
  });
});

describe('runStream with a budget', () => {
  it('folds every shed record back: delivered + folded == kernel drops, the shed in lost.userspace', async () => {
    const fake = new FakeBinding({ batches: [Buffer.concat([r0, r1, r0]), Buffer.concat([r2, r2])] });
    const lines: StreamLine[] = [];
    const ac = new AbortController();
    let admitted = 0;
    const shed: number[] = [];
    // time for the first batch only
    const budget: WorkBudget = { admit: () => admitted++ < 1, shed: (n) => shed.push(n) };
    const done = runStream({
      native: fake,
      tracer: {},
      reasons: new ReasonNames(GOLDEN.reasons),
      symbols: new Symbolizer(''),
      sysctl: () => null,
      meta: { version: 'test', node: 'n', kernel: 'k' },
      emit: (l) => lines.push(l),
      statsIntervalMs: 3_600_000,
      foldIntervalMs: 3_600_000,
      signal: ac.signal,
      budget,
    });
    await fake.tracer.done;
    ac.abort();
    await done;
    const drops = lines.filter((l): l is DropEvent => l.type === 'drop');
    const stats = lines.filter((l): l is StatsLine => l.type === 'stats').at(-1)!;
    expect(shed).toEqual([2]);
    expect(stats).toMatchObject({ final: true, events: 3, folded: 2, lost: { userspace: 2, ring_buffer: 0, total: 2 }, kernel: { drops: 5 } });
    expect(stats.events + stats.folded).toBe(stats.kernel.drops);
    expect(drops.reduce((n, d) => n + d.count, 0)).toBe(5);
    // the shed key's folded line is the key's own flow, with both drops
    expect(drops.filter((d) => d.folded).map((d) => [d.flow?.dport, d.count])).toEqual([[dport(r2), 2]]);
  });

  it('finalLines false: after a stop, no last fold and no final stats line', async () => {
    const fake = new FakeBinding({ batches: [r0] });
    const lines: StreamLine[] = [];
    const ac = new AbortController();
    const done = runStream({
      native: fake,
      tracer: {},
      reasons: new ReasonNames(GOLDEN.reasons),
      symbols: new Symbolizer(''),
      sysctl: () => null,
      meta: { version: 'test', node: 'n', kernel: 'k' },
      emit: (l) => lines.push(l),
      statsIntervalMs: 3_600_000,
      foldIntervalMs: 3_600_000,
      signal: ac.signal,
      finalLines: false,
    });
    await fake.tracer.done;
    ac.abort();
    await done;
    expect(lines.map((l) => l.type)).toEqual(['start', 'drop']);
    expect([fake.tracer.stopped, fake.tracer.closed]).toEqual([true, true]);
  });
});

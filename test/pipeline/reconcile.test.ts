/**
 * reconcile() and the stats line over the FakeTracer, with a scripted kernel whose LRU key map
 * evicts and re-creates keys and an addon whose lost-key table fills: every loss is folded once,
 * what cannot be folded is counted, and events + folded + unfolded == kernel.drops holds after
 * every reconcile of a settled kernel.
 */
import { keyEntry } from '../helpers/records.js';
import { describe, expect, it } from 'vitest';
import { WallClock } from '../../src/pipeline/clock.js';
import { Decoder } from '../../src/pipeline/decode.js';
import { EventBuilder } from '../../src/pipeline/events.js';
import type { DropEvent, StatsLine, StreamLine } from '../../src/pipeline/events.js';
import { Folder } from '../../src/pipeline/fold.js';
import { Symbolizer } from '../../src/pipeline/kallsyms.js';
import { ReasonNames } from '../../src/pipeline/reasons.js';
import { reconcile } from '../../src/pipeline/reconcile.js';
import { statsLine } from '../../src/pipeline/stats.js';
import { runStream } from '../../src/pipeline/stream.js';
import type { KernelCounters } from '../../src/native/binding.js';
import { FakeBinding, GOLDEN, GOLDEN_CLOCKS, GOLDEN_RECORDS } from '../helpers/fake-tracer.js';
import { FIELDS, KEY_ENTRY_SIZE, KEY_FIELDS, KEY_SIZE } from '../../src/pipeline/layout.js';

const reasons = new ReasonNames(GOLDEN.reasons);
const [A, B, C] = [GOLDEN_RECORDS[0]!, GOLDEN_RECORDS[2]!, GOLDEN_RECORDS[3]!];


/**
 * A kernel and addon the test drives by hand: the key map (what readKeys() shows), the losses
 * since the last readLostKeys(), and the global counters, which keep counting what an evicted
 * key took with it.
 */
class Kernel {
  keys = new Map<Buffer, { count: number; suppressed: number }>();
  lost = new Map<Buffer, number>();
  seen = 0;
  held = 0;
  userLost = 0;
  unkeyed = 0;
  /** detail events that reached JS */
  delivered = 0;

  /** `n` drops of key `r` held back from detail (rate limit or ring buffer full) */
  suppress(r: Buffer, n: number): void {
    const k = this.entry(r);
    k.count += n;
    k.suppressed += n;
    this.seen += n;
    this.held += n;
  }
  /** `n` drops of key `r` sent as detail and taken by JS */
  deliver(r: Buffer, n: number): void {
    this.entry(r).count += n;
    this.seen += n;
    this.delivered += n;
  }
  /** `n` drops of key `r` sent as detail and lost in the addon; `keyed`: the lost-key table had room */
  loseInAddon(r: Buffer, n: number, keyed = true): void {
    this.entry(r).count += n;
    this.seen += n;
    this.userLost += n;
    if (keyed) this.lost.set(r, (this.lost.get(r) ?? 0) + n);
    else this.unkeyed += n;
  }
  evict(r: Buffer): void {
    this.keys.delete(r);
  }
  private entry(r: Buffer) {
    let k = this.keys.get(r);
    if (!k) this.keys.set(r, (k = { count: 0, suppressed: 0 }));
    return k;
  }

  binding(): FakeBinding {
    return new FakeBinding({
      batches: [],
      keys: () => Buffer.concat([...this.keys].map(([r, k]) => keyEntry(r, k.count, k.suppressed))),
      lostKeys: () => {
        const b = Buffer.concat([...this.lost].map(([r, n]) => keyEntry(r, n, n)));
        this.lost.clear();
        return b;
      },
      counters: (): Partial<KernelCounters> => ({
        reasons: {},
        seen: BigInt(this.seen),
        suppressed: BigInt(this.held),
        userLost: BigInt(this.userLost),
        userLostUnkeyed: BigInt(this.unkeyed),
      }),
    });
  }
}

function setup() {
  const kernel = new Kernel();
  const tracer = kernel.binding().createTracer({});
  const builder = new EventBuilder(reasons, new Symbolizer(''), new WallClock(GOLDEN_CLOCKS), () => null);
  const folder = new Folder();
  const lines: DropEvent[] = [];
  const fold = () => {
    lines.length = 0;
    reconcile(tracer, folder, builder, 'now', (ev) => lines.push(ev));
    return lines.map((l) => [l.flow?.dport, l.count]);
  };
  const stats = (): StatsLine =>
    statsLine(
      tracer,
      reasons,
      {
        events: () => kernel.delivered,
        folded: () => folder.total,
        unfolded: () => folder.unfolded,
        decodeErrors: () => 0,
        enrichmentFailures: () => 0,
        countersFailures: () => 0,
        failures: () => 0,
      },
      'now',
      true,
    );
  return { kernel, fold, stats, folder, builder, lines };
}

const sum = (s: StatsLine) => s.events + s.folded + s.unfolded!;
const portOf = (r: Buffer) => r.readUInt16LE(FIELDS.dport[0]);

describe('reconcile: lost counts as deltas, unfolded counted', () => {
  it('folds each loss once when the kernel evicts and re-creates keys, and counts what eviction took', () => {
    const { kernel, fold, stats } = setup();
    const [a, b, c] = [portOf(A), portOf(B), portOf(C)];
    kernel.suppress(A, 6);
    kernel.deliver(A, 2);
    kernel.loseInAddon(A, 2);
    kernel.suppress(B, 5);
    expect(fold()).toEqual([
      [a, 8],
      [b, 5],
    ]);
    let s = stats();
    expect([s.events, s.folded, s.unfolded, s.kernel.drops]).toEqual([2, 13, 0, 15]);

    // A grows by 3 held-back drops and one lost in the addon, then the LRU evicts it before the
    // next reconcile: the 3 are gone with the key, the lost one is still folded (once: the 2
    // lost before were folded already); B grows, C is new
    kernel.suppress(A, 3);
    kernel.loseInAddon(A, 1);
    kernel.evict(A);
    kernel.suppress(B, 2);
    kernel.suppress(C, 3);
    expect(fold()).toEqual([
      [b, 2],
      [c, 3],
      [a, 1],
    ]);
    s = stats();
    expect([s.events, s.folded, s.unfolded, s.kernel.drops]).toEqual([2, 19, 3, 24]);
    expect(sum(s)).toBe(s.kernel.drops);

    // A is made again: its counts start over, all of them folded
    kernel.suppress(A, 4);
    expect(fold()).toEqual([[a, 4]]);
    s = stats();
    expect([s.folded, s.unfolded]).toEqual([23, 3]);
    expect(sum(s)).toBe(s.kernel.drops);

    // B is evicted and re-made with the very count it had: no reconcile can tell, the global
    // count can
    kernel.evict(B);
    kernel.suppress(B, 7);
    expect(fold()).toEqual([]);
    s = stats();
    expect([s.folded, s.unfolded]).toEqual([23, 10]);
    expect(sum(s)).toBe(s.kernel.drops);

    // nothing new: nothing folded again, nothing more unfolded
    expect(fold()).toEqual([]);
    expect(stats()).toMatchObject({ folded: 23, unfolded: 10, kernel: { drops: 35 } });
  });

  it('counts losses that found the lost-key table full as unfolded', () => {
    const { kernel, fold, stats } = setup();
    kernel.deliver(A, 1);
    kernel.loseInAddon(A, 3);
    kernel.loseInAddon(B, 5, false);
    expect(fold()).toEqual([[portOf(A), 3]]);
    const s = stats();
    expect(s.lost.userspace).toBe(8);
    expect([s.events, s.folded, s.unfolded, s.kernel.drops]).toEqual([1, 3, 5, 9]);
  });

  it("describes a key that had no delivered event at its delivered sibling's place and device", () => {
    const { kernel, fold, folder, builder, lines } = setup();
    // A delivered as the stream delivers it; A2 (another port) only suppressed
    const delivered = builder.build(new Decoder(GOLDEN_CLOCKS.monotonicNs).decode(A).drops[0]!);
    folder.delivered(null, delivered, A, 0);
    kernel.deliver(A, 1);
    const A2 = Buffer.from(A);
    A2.writeUInt16LE(portOf(A) + 1, FIELDS.dport[0]);
    kernel.suppress(A2, 4);
    expect(fold()).toEqual([[portOf(A) + 1, 4]]);
    expect(delivered.location).not.toBe('0x0');
    expect(delivered.ifname).not.toBe('');
    expect(lines[0]).toMatchObject({ kind: delivered.kind, location: delivered.location, ifname: delivered.ifname, ifindex: delivered.ifindex, explain: delivered.explain, count: 4, folded: true });
  });

  it('a reconcile that reads counters before keys never counts growth after that read as unfolded', () => {
    const { kernel, fold, stats } = setup();
    kernel.suppress(A, 2);
    fold();
    // grown after the reconcile: in flight, not unfolded; the sum is short by exactly that
    kernel.suppress(A, 5);
    const s = stats();
    expect([s.folded, s.unfolded, s.kernel.drops]).toEqual([2, 0, 7]);
    expect(fold()).toEqual([[portOf(A), 5]]);
    expect(sum(stats())).toBe(7);
  });
});

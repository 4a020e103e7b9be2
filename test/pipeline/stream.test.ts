/**
 * runStream with the FakeTracer: the lifecycle (start line, stats, final stats, nothing left
 * attached or ticking), reconcile with the kernel's and the addon's lost keys, and how a
 * failure in the batch path or in the tracer ends a stream.
 */
import { EVENT_SIZE } from '../../src/gen/record.js';
import { keyEntry } from '../helpers/records.js';
import { describe, expect, it, vi } from 'vitest';
import { DroptraceError } from '../../src/errors.js';
import type { Enricher } from '../../src/enrich/types.js';
import type { DropEvent, StatsLine, StreamLine } from '../../src/pipeline/events.js';
import { Symbolizer } from '../../src/pipeline/kallsyms.js';
import { FIELDS, KEY_ENTRY_SIZE, KEY_FIELDS, KEY_SIZE } from '../../src/pipeline/layout.js';
import { ReasonNames } from '../../src/pipeline/reasons.js';
import { runStream } from '../../src/pipeline/stream.js';
import type { StreamOptions } from '../../src/pipeline/stream.js';
import { FakeBinding, GOLDEN, GOLDEN_RECORDS } from '../helpers/fake-tracer.js';
import type { FakeScript } from '../helpers/fake-tracer.js';

const reasons = new ReasonNames(GOLDEN.reasons);


/** Intervals made while `f` runs that are still running when it is done. */
async function leftTicking(f: () => Promise<unknown>): Promise<{ made: number; running: number }> {
  const made = new Set<unknown>();
  const realSet = globalThis.setInterval;
  const realClear = globalThis.clearInterval;
  const set = vi.spyOn(globalThis, 'setInterval').mockImplementation(((fn: () => void, ms: number) => {
    const t = realSet(fn, ms);
    made.add(t);
    return t;
  }) as typeof setInterval);
  const clear = vi.spyOn(globalThis, 'clearInterval').mockImplementation(((t: ReturnType<typeof setInterval>) => {
    made.delete(t);
    realClear(t);
  }) as typeof clearInterval);
  let count = 0;
  try {
    await f();
  } finally {
    count = set.mock.calls.length;
    set.mockRestore();
    clear.mockRestore();
  }
  for (const t of made) realClear(t as ReturnType<typeof setInterval>);
  return { made: count, running: made.size };
}

interface Run {
  lines: StreamLine[];
  fake: FakeBinding;
  result: Promise<unknown>;
  ac: AbortController;
}

function run(script: FakeScript, extra: Partial<StreamOptions> = {}): Run {
  const fake = new FakeBinding(script);
  const lines: StreamLine[] = [];
  const ac = new AbortController();
  const result = runStream({
    native: fake,
    tracer: {},
    reasons,
    symbols: new Symbolizer(''),
    sysctl: () => null,
    meta: { version: 'test', node: 'n', kernel: 'k' },
    emit: (l) => lines.push(l),
    statsIntervalMs: 3_600_000,
    foldIntervalMs: 3_600_000,
    signal: ac.signal,
    ...extra,
  });
  return { lines, fake, result, ac };
}

/** Runs until every batch was handed over, then ends the stream as a signal would. */
async function toEnd(r: Run): Promise<unknown> {
  await r.fake.tracer.done;
  r.ac.abort();
  return r.result;
}

const drops = (lines: StreamLine[]) => lines.filter((l): l is DropEvent => l.type === 'drop');
const finalStats = (lines: StreamLine[]) => {
  const s = lines.filter((l): l is StatsLine => l.type === 'stats');
  expect(s.at(-1)?.final).toBe(true);
  return s.at(-1)!;
};

describe('runStream with a replayed tracer', () => {
  it('start line first, every record delivered, the final stats line last with exact sums, nothing left attached or ticking', async () => {
    let r!: Run;
    const timers = await leftTicking(async () => {
      r = run({ batches: GOLDEN_RECORDS });
      await toEnd(r);
    });
    expect(timers).toEqual({ made: 2, running: 0 });
    expect(r.lines[0]!.type).toBe('start');
    expect(r.lines.at(-1)!.type).toBe('stats');
    const s = finalStats(r.lines);
    expect(drops(r.lines).reduce((n, d) => n + d.count, 0)).toBe(GOLDEN_RECORDS.length);
    expect(s).toMatchObject({ events: 10, folded: 0, failures: 0, decode_errors: 0, kernel: { drops: 10, suppressed: 0 } });
    const t = r.fake.tracer;
    expect([t.attached, t.stopped, t.closed, t.endCalls]).toEqual([false, true, true, 1]);
  });

  it('folds the kernel\'s suppressed drops and the addon\'s lost ones per key: delivered + folded == kernel drops', async () => {
    const keys = Buffer.concat([keyEntry(GOLDEN_RECORDS[0]!, 5, 4), keyEntry(GOLDEN_RECORDS[2]!, 1, 0)]);
    // 3 detail events of record 0's key and 2 of a key the kernel map no longer has, lost in the addon
    const lost = Buffer.concat([keyEntry(GOLDEN_RECORDS[0]!, 3, 3), keyEntry(GOLDEN_RECORDS[3]!, 2, 2)]);
    const r = run({ batches: [GOLDEN_RECORDS[0]!, GOLDEN_RECORDS[2]!], keys, lostKeys: lost, counters: { userLost: 5n } });
    await toEnd(r);
    const folded = drops(r.lines).filter((d) => d.folded);
    expect(folded.map((d) => [d.flow?.dport, d.count])).toEqual([
      [5400, 7],
      [5403, 2],
    ]);
    const s = finalStats(r.lines);
    expect(s.folded).toBe(9);
    expect(s.lost).toEqual({ ring_buffer: 0, userspace: 5, total: 5 });
    // the kernel saw the 2 delivered and 4 suppressed; the addon lost 5 of the delivered kind
    expect(s.events + s.folded - s.lost.userspace).toBe(s.kernel.drops);
  });

  it('counts an enricher that throws and goes on', async () => {
    const bad: Enricher = {
      name: 'bad',
      enrich: () => {
        throw new Error('no');
      },
    };
    const r = run({ batches: GOLDEN_RECORDS.slice(0, 3) }, { enrichers: [bad] });
    await toEnd(r);
    expect(finalStats(r.lines)).toMatchObject({ events: 3, enrichment_failures: 3, failures: 0 });
  });

  it('a throw in the batch path ends the stream: counted, final stats line, tracer closed, timers stopped, the error thrown', async () => {
    let r!: Run;
    let err: unknown;
    const timers = await leftTicking(async () => {
      r = run(
        { batches: GOLDEN_RECORDS },
        {
          statsIntervalMs: 60_000,
          tap: {
            capture: (ds) => {
              if (ds[0]?.dport === 5403) throw new Error('disk on fire');
            },
          },
        },
      );
      // ends by itself: no abort
      err = await r.result.then(
        () => null,
        (e: unknown) => e,
      );
    });
    expect(timers).toEqual({ made: 2, running: 0 });
    expect(err).toBeInstanceOf(DroptraceError);
    expect([(err as DroptraceError).code, (err as DroptraceError).message, (err as DroptraceError).exitCode]).toEqual([
      'E_BATCH',
      'handling a batch of drops failed: disk on fire',
      1,
    ]);
    const s = finalStats(r.lines);
    // record 3's batch failed before its line; the batches the tracer still held when
    // stopped are handled (the tap throws only for record 3)
    expect(s.failures).toBe(1);
    expect(drops(r.lines).map((d) => d.flow?.dport)).not.toContain(5403);
    expect(s.events).toBe(r.fake.tracer.delivered);
    const t = r.fake.tracer;
    expect([t.attached, t.stopped, t.closed, t.endCalls]).toEqual([false, true, true, 1]);
  });

  it('an error the tracer reports ends the stream the same way, with its code', async () => {
    let r!: Run;
    let err: unknown;
    const timers = await leftTicking(async () => {
      r = run({ batches: GOLDEN_RECORDS, pollError: { afterBatches: 2, error: { code: 'E_POLL', message: 'ring_buffer__poll failed: Bad file descriptor', errno: 9 } } }, { statsIntervalMs: 60_000 });
      err = await r.result.then(
        () => null,
        (e: unknown) => e,
      );
    });
    expect(timers).toEqual({ made: 2, running: 0 });
    expect(err).toBeInstanceOf(DroptraceError);
    expect([(err as DroptraceError).code, (err as DroptraceError).line()]).toEqual(['E_POLL', 'the tracer stopped: ring_buffer__poll failed: Bad file descriptor (errno 9)']);
    const s = finalStats(r.lines);
    expect(s).toMatchObject({ events: 2, failures: 1, kernel: { drops: 2 } });
    expect([r.fake.tracer.attached, r.fake.tracer.closed, r.fake.tracer.endCalls]).toEqual([false, true, 1]);
  });

  it('refuses an addon whose layout differs, before attaching anything', async () => {
    const fake = new FakeBinding({ batches: [] });
    fake.layout = () => ({ ...new FakeBinding({ batches: [] }).layout(), size: 999 });
    await expect(
      runStream({
        native: fake,
        tracer: {},
        reasons,
        symbols: new Symbolizer(''),
        meta: { version: 't', node: 'n', kernel: 'k' },
        emit: () => {},
        statsIntervalMs: 1000,
        signal: new AbortController().signal,
      }),
    ).rejects.toThrow(`event layout of the addon and the decoder differ: sizeof(struct dt_event): addon 999, src/gen/record.ts ${EVENT_SIZE}`);
    expect(fake.tracers).toEqual([]);
  });

  it('no probe attached: one clear error, the tracer closed', async () => {
    const r = run({ batches: [], probes: [{ probe: 'drop', hook: 'tp_btf/kfree_skb', state: 'unavailable', why: 'no BTF' }] });
    await expect(r.result).rejects.toThrow('no drop probe could attach (tp_btf/kfree_skb: no BTF)');
    expect(r.fake.tracer.closed).toBe(true);
    expect(r.lines).toEqual([]);
  });
});

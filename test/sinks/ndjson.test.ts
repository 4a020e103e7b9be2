/**
 * The NDJSON sink writes each line's times itself (the pipeline carries numbers): its lines
 * must be what JSON.stringify makes of the same objects (the golden lines,
 * test/pipeline/events.test.ts), and the objects must come back unchanged for the other sinks.
 */
import { describe, expect, it } from 'vitest';
import { DropTime } from '../../src/pipeline/clock.js';
import type { DropEvent, StreamLine } from '../../src/pipeline/events.js';
import { FIELDS, KEY_ENTRY_SIZE, KEY_FIELDS, KEY_SIZE } from '../../src/pipeline/layout.js';
import { Symbolizer } from '../../src/pipeline/kallsyms.js';
import { ReasonNames } from '../../src/pipeline/reasons.js';
import { runStream } from '../../src/pipeline/stream.js';
import { format, NdjsonSink } from '../../src/sinks/ndjson.js';
import { FakeBinding, GOLDEN, GOLDEN_RECORDS } from '../helpers/fake-tracer.js';

const reasons = new ReasonNames(GOLDEN.reasons);

/** The key-map entry of a record's key, with `suppressed` drops folded. */
function keyEntry(r: Buffer, suppressed: number): Buffer {
  const e = Buffer.alloc(KEY_ENTRY_SIZE);
  for (const f of ['reason', 'netns', 'ifindex', 'sport', 'dport', 'l4_proto', 'icmp_type', 'icmp_code', 'saddr', 'daddr'] as const) {
    r.copy(e, KEY_FIELDS[f][0], FIELDS[f][0], FIELDS[f][0] + KEY_FIELDS[f][1]);
  }
  const flags = r[FIELDS.flags[0]]!;
  e[KEY_FIELDS.ip_version[0]] = flags & 1 ? 4 : flags & 2 ? 6 : 0;
  e.writeBigUInt64LE(BigInt(suppressed + 1), KEY_SIZE);
  e.writeBigUInt64LE(BigInt(suppressed), KEY_SIZE + 8);
  return e;
}

/** Every golden record twice in one wake-up (repeats fold: last_time), then a reconcile folding 3 per key. */
async function goldenLines(): Promise<StreamLine[]> {
  const fake = new FakeBinding({ batches: [Buffer.concat([...GOLDEN_RECORDS, ...GOLDEN_RECORDS])], keys: Buffer.concat(GOLDEN_RECORDS.map((r) => keyEntry(r, 3))) });
  const lines: StreamLine[] = [];
  const ac = new AbortController();
  const done = runStream({
    native: fake,
    tracer: {},
    reasons,
    symbols: new Symbolizer('ffffffff81f65778 t nft_do_chain'),
    sysctl: () => null,
    meta: { version: 'test', node: 'n', kernel: '6.18' },
    emit: (l) => lines.push(l),
    statsIntervalMs: 3_600_000,
    foldIntervalMs: 3_600_000,
    signal: ac.signal,
    now: () => new Date(Date.parse('2026-11-24T09:02:18.250Z')),
  });
  await fake.tracer.done;
  ac.abort();
  await done;
  return lines;
}

describe('NDJSON sink', () => {
  it('writes every line as JSON.stringify does, times to the ns (folded: the reconcile time to the ms), and gives the lines back unchanged', async () => {
    const lines = await goldenLines();
    const drops = lines.filter((l): l is DropEvent => l.type === 'drop');
    const folded = drops.filter((d) => d.folded);
    const repeated = drops.filter((d) => d.last_time !== undefined);
    expect([folded.length > 0, repeated.length > 0, drops.every((d) => d.folded || d.time instanceof DropTime)]).toEqual([true, true, true]);
    const before = drops.map((d) => [d.time, d.last_time]);
    let text = '';
    const sink = new NdjsonSink({ write: (b) => ((text += b.toString()), b.length) });
    for (const l of lines) sink.write(l);
    expect(await sink.flush(1000)).toBe(true);
    const written = text.split('\n').slice(0, -1);
    expect(written.filter((w) => w.startsWith('{"type":"drop"'))).toEqual(drops.map((d) => JSON.stringify(d)));
    expect(drops.map((d) => [d.time, d.last_time])).toEqual(before);
    expect(drops.map((d) => d.time).every((t, i) => t === before[i]![0])).toBe(true);
    // the text of each kind of time
    expect(JSON.parse(format(repeated[0]!)).last_time).toMatch(/^2026-11-24T09:02:1\d\.\d{9}Z$/);
    expect(JSON.parse(format(folded[0]!)).time).toBe('2026-11-24T09:02:18.250Z');
    expect(JSON.parse(format({ ...drops[0]!, time: '2026-11-24T09:02:18.1Z' })).time).toBe('2026-11-24T09:02:18.1Z');
  });
});

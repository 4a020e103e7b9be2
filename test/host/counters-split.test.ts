import { describe, expect, it } from 'vitest';
import { toCountersLine } from '../../src/host/counters-line.js';
import type { CountersLine } from '../../src/host/counters-line.js';
import { CountersMerger } from '../../src/host/counters-merge.js';
import { CRI_LINE_BYTES, CountersSplitter, MAX_LINE_BYTES } from '../../src/host/counters-split.js';
import { lineProblem } from '../../src/pipeline/line-schema.js';
import { FIRST_INODE, netns, nic, range, snapshot } from './busy-host.js';

const byInode = (l: CountersLine) => [...(l.conntrack?.netns ?? [])].sort((a, b) => a.netns - b.netns);

/** Every line as the NDJSON sink writes it: under the CRI cut with its newline, and schema-valid. */
function checkLines(lines: CountersLine[], max = MAX_LINE_BYTES): void {
  const sample = lines[0]!.sample;
  lines.forEach((l, i) => {
    const text = `${JSON.stringify(l)}\n`;
    expect(Buffer.byteLength(text) - 1, `line ${i + 1} of ${lines.length}`).toBeLessThanOrEqual(max);
    expect(Buffer.byteLength(text)).toBeLessThan(CRI_LINE_BYTES);
    expect([l.sample, l.part, l.parts]).toEqual([sample, i + 1, lines.length]);
    expect(lineProblem(l)).toBeNull();
  });
}

describe('CountersSplitter', () => {
  it('cuts a sample of 250 busy netns into lines under 15 KiB that together list every netns once', () => {
    const s = snapshot({ netns: range(250).map((i) => netns(i)) });
    const whole = toCountersLine(s);
    // the line this replaces: one ~180 KB line per sample (~720 bytes a netns)
    expect(Buffer.byteLength(JSON.stringify(whole))).toBeGreaterThan(170_000);
    const lines = new CountersSplitter().lines(s);
    checkLines(lines);
    expect(lines.length).toBe(Math.ceil(Buffer.byteLength(JSON.stringify(whole)) / MAX_LINE_BYTES) + 1);
    expect(lines.every((l) => l.full === true && l.time === whole.time)).toBe(true);
    const listed = lines.flatMap((l) => l.conntrack!.netns.map((n) => n.netns));
    expect(listed).toEqual(range(250).map((i) => FIRST_INODE + i));
    // what is not cut is on the first line
    expect(lines[0]!.neigh.map((t) => t.table)).toEqual(['arp_cache', 'ndisc_cache']);
    expect(lines.slice(1).every((l) => l.neigh.length === 0)).toBe(true);
    expect(lines.flatMap((l) => l.nic.map((n) => n.ifname))).toEqual(['eth0']);
    expect(new Set(lines.map((l) => JSON.stringify(l.conntrack && { ...l.conntrack, netns: [], gone: [] })))).toEqual(
      new Set([JSON.stringify({ nf_conntrack_max: 262144, netns_total: 250, netns_idle: 0, netns: [], gone: [] })]),
    );
  });

  it('a quiet node: one line per sample, as before', () => {
    const lines = new CountersSplitter().lines(snapshot({ netns: range(3).map((i) => netns(i)) }));
    expect(lines.length).toBe(1);
    expect(lines[0]).toEqual({ ...toCountersLine(snapshot({ netns: range(3).map((i) => netns(i)) })), sample: 1, part: 1, parts: 1, full: true });
  });

  it('then sends only the netns that changed, those that left, and a full sample every fullEvery', () => {
    const split = new CountersSplitter({ fullEvery: 3 });
    const first = split.lines(snapshot({ netns: range(250).map((i) => netns(i)) }));
    expect(first.every((l) => l.full)).toBe(true);
    // netns 7 and 8 changed, 9 and 10 left, 250 came
    const next = [...range(250).filter((i) => i !== 9 && i !== 10).map((i) => netns(i, i === 7 || i === 8 ? 1 : 0)), netns(250)];
    const second = split.lines(snapshot({ netns: next, second: 5 }));
    checkLines(second);
    expect(second.length).toBe(1);
    expect([second[0]!.sample, second[0]!.full]).toEqual([2, false]);
    expect(second[0]!.conntrack!.netns.map((n) => n.netns - FIRST_INODE)).toEqual([7, 8, 250]);
    expect(second[0]!.conntrack!.gone!.map((n) => n - FIRST_INODE)).toEqual([9, 10]);
    const third = split.lines(snapshot({ netns: next, second: 10 }));
    expect(third.map((l) => [l.full, l.conntrack!.netns.length, l.conntrack!.gone!.length])).toEqual([[false, 0, 0]]);
    // the third after the full one is full again
    const fourth = split.lines(snapshot({ netns: next, second: 15 }));
    expect(fourth.every((l) => l.full)).toBe(true);
    expect(fourth.reduce((n, l) => n + l.conntrack!.netns.length, 0)).toBe(249);
  });

  it('lists every netns when asked (the last sample of a stream) and after conntrack came back', () => {
    const split = new CountersSplitter();
    split.lines(snapshot({ netns: range(5).map((i) => netns(i)) }));
    expect(split.lines(snapshot({ netns: range(5).map((i) => netns(i)), second: 5 }))[0]!.full).toBe(false);
    expect(split.lines(snapshot({ netns: range(5).map((i) => netns(i)), second: 10 }), { full: true })[0]!.full).toBe(true);
    const unloaded = split.lines(snapshot({ netns: [], conntrack: false, second: 15 }));
    expect(unloaded.map((l) => l.conntrack)).toEqual([null]);
    const back = split.lines(snapshot({ netns: range(5).map((i) => netns(i)), second: 20 }));
    expect(back.map((l) => [l.full, l.conntrack!.netns.length])).toEqual([[true, 5]]);
  });

  it('cuts one NIC with 2,000 ethtool counters into pieces, and an overlong warning', () => {
    const big = nic('ens1f0', 2000);
    const long = `conntrack of ${'x'.repeat(40_000)} dropped`;
    const s = snapshot({ netns: range(2).map((i) => netns(i)), nics: [nic('eth0', 16), big], warnings: [long, 'short one'] });
    const lines = new CountersSplitter().lines(s);
    checkLines(lines);
    const pieces = lines.flatMap((l) => l.nic).filter((n) => n.ifname === 'ens1f0');
    expect(pieces.length).toBeGreaterThan(5);
    expect(pieces.every((p) => p.driver === 'mlx5_core' && p.netns === null)).toBe(true);
    const warnings = lines.flatMap((l) => l.warnings);
    expect(warnings[0]!.endsWith('…')).toBe(true);
    expect(warnings[0]!.startsWith('conntrack of xxx')).toBe(true);
    expect(warnings[1]).toBe('short one');
    const merged = new CountersMerger();
    const whole = lines.map((l) => merged.add(l)).at(-1)!;
    expect(whole.nic.find((n) => n.ifname === 'ens1f0')).toEqual(toCountersLine(s).nic[1]);
  });

  it('holds any limit from 2 KiB up, and refuses less', () => {
    const s = snapshot({ netns: range(40).map((i) => netns(i)), nics: [nic('eth0', 300)] });
    for (const max of [2048, 4096, 9000]) checkLines(new CountersSplitter({ maxLineBytes: max }).lines(s), max);
    expect(() => new CountersSplitter({ maxLineBytes: 1000 })).toThrow('maxLineBytes must be an integer >= 2048, got 1000');
    expect(() => new CountersSplitter({ fullEvery: 0 })).toThrow('fullEvery must be an integer >= 1, got 0');
  });
});

describe('CountersMerger', () => {
  it('gives back the whole sample once its last line is in, and nothing before', () => {
    const s = snapshot({ netns: range(250).map((i) => netns(i)) });
    const lines = new CountersSplitter().lines(s);
    const m = new CountersMerger();
    const out = lines.map((l) => m.add(l));
    expect(out.slice(0, -1).every((x) => x === null)).toBe(true);
    const whole = toCountersLine(s);
    expect(out.at(-1)).toEqual({ ...whole, sample: 1, part: 1, parts: 1, full: true });
  });

  it('applies changes onto the last full sample: what a reader sees equals the unsplit line', () => {
    const split = new CountersSplitter({ fullEvery: 100 });
    const m = new CountersMerger();
    let live = range(250).map((i) => netns(i));
    for (let step = 0; step < 6; step++) {
      // each step: some netns change, one leaves, one comes
      if (step > 0) live = [...live.filter((_, k) => k !== step).map((n, k) => (k % 7 === step ? { ...n, count: n.count + 1 } : n)), netns(300 + step)];
      const s = snapshot({ netns: live, second: step * 5 });
      const lines = split.lines(s);
      checkLines(lines);
      const got = lines.map((l) => m.add(l)).at(-1)!;
      expect(got).not.toBeNull();
      expect(byInode(got)).toEqual(byInode(toCountersLine(s)));
      expect(got.conntrack!.netns.length).toBe(got.conntrack!.netns_total - got.conntrack!.netns_idle);
    }
    expect(m.incomplete).toBe(0);
  });

  it('a reader that missed a line: applied as far as it got, counted, whole again at the next full sample', () => {
    const split = new CountersSplitter({ fullEvery: 2 });
    const m = new CountersMerger();
    const s1 = snapshot({ netns: range(250).map((i) => netns(i)) });
    const first = split.lines(s1);
    // the third line of the first sample is lost; the next sample closes it
    for (const l of first.filter((l) => l.part !== 3)) expect(m.add(l)).toBeNull();
    const s2 = snapshot({ netns: range(250).map((i) => netns(i, i === 0 ? 1 : 0)), second: 5 });
    const second = split.lines(s2);
    const closed = m.add(second[0]!);
    expect(second.length).toBe(1);
    expect(m.incomplete).toBe(1);
    expect(m.missingParts).toBe(1);
    expect(closed!.conntrack!.netns.length).toBe(250 - first[2]!.conntrack!.netns.length);
    expect(closed!.conntrack!.netns[0]).toEqual(toCountersLine(s2).conntrack!.netns[0]);
    const s3 = snapshot({ netns: range(250).map((i) => netns(i)), second: 10 });
    const third = split.lines(s3);
    expect(third[0]!.full).toBe(true);
    const whole = third.map((l) => m.add(l)).at(-1)!;
    expect(byInode(whole)).toEqual(byInode(toCountersLine(s3)));
    // a replay that ends mid-sample: flush shows what came
    const fourth = split.lines(snapshot({ netns: range(250).map((i) => netns(i, 2)), second: 15 }));
    expect(m.add(fourth[0]!)).toBeNull();
    expect(m.flush()!.conntrack!.netns.length).toBe(250);
    expect(m.flush()).toBeNull();
  });

  it('takes version 1 lines (one whole sample each) as they are, and a repeated sample twice the same', () => {
    const v1 = toCountersLine(snapshot({ netns: range(3).map((i) => netns(i)) })) as Partial<CountersLine>;
    delete v1.sample;
    delete v1.part;
    delete v1.parts;
    delete v1.full;
    delete v1.conntrack!.gone;
    const old = { ...v1, version: 1 } as CountersLine;
    expect(lineProblem(old)).toBeNull();
    const m = new CountersMerger();
    expect(byInode(m.add(old)!)).toEqual(byInode(old));
    const lines = new CountersSplitter().lines(snapshot({ netns: range(250).map((i) => netns(i)) }));
    const a = lines.map((l) => m.add(l)).at(-1);
    const b = lines.map((l) => m.add(l)).at(-1);
    expect(b).toEqual(a);
  });
});

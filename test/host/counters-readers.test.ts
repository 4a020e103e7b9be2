/**
 * The readers of counters lines (the metrics, the TUI store, a replay of a recording) see the
 * same as they did when a sample was one line: fed the cut lines of a changing node, their state
 * equals that of the same samples fed whole.
 */
import { describe, expect, it } from 'vitest';
import { toCountersLine } from '../../src/host/counters-line.js';
import type { CountersLine } from '../../src/host/counters-line.js';
import { CountersSplitter } from '../../src/host/counters-split.js';
import type { ConntrackNetnsSample, HostSnapshot } from '../../src/host/sampler.js';
import { parseRecording } from '../../src/tui/replay.js';
import { DropMetrics } from '../../src/sinks/metrics.js';
import { TuiStore } from '../../src/tui/store.js';
import { netns, range, snapshot } from './busy-host.js';

/** Five samples of 250 busy netns: some change, some leave, some come, one fills its table. */
function samples(): HostSnapshot[] {
  const out: HostSnapshot[] = [];
  let live: ConntrackNetnsSample[] = range(250).map((i) => netns(i));
  for (let step = 0; step < 5; step++) {
    if (step > 0) {
      live = live.filter((_, k) => k !== step * 3).map((n, k) => (k % 5 === step ? { ...n, count: n.count + step, stats: { ...n.stats, drop: n.stats.drop! + step } } : n));
      live.push(netns(400 + step));
    }
    if (step === 3) live[0] = { ...live[0]!, count: 262000, fill: 262000 / 262144 };
    out.push(snapshot({ netns: live, second: step * 5 }));
  }
  return out;
}

/** The whole lines as version 1 wrote them: one per sample, none of the splitting fields. */
function v1(s: HostSnapshot): CountersLine {
  const l = toCountersLine(s);
  const { sample: _s, part: _p, parts: _ps, full: _f, ...rest } = l;
  const { gone: _g, ...ct } = l.conntrack!;
  return { ...rest, version: 1, conntrack: ct };
}

function cut(all: HostSnapshot[]): CountersLine[] {
  const split = new CountersSplitter({ fullEvery: 4 });
  const lines = all.flatMap((s) => split.lines(s));
  // the test is about cut samples and changes: make sure it has both
  expect(lines.length).toBeGreaterThan(all.length * 5);
  expect(lines.some((l) => l.full === false)).toBe(true);
  return lines;
}

describe('readers of cut counters lines', () => {
  it('metrics: the same exposition after every sample as from the whole lines', async () => {
    const all = samples();
    const whole = new DropMetrics({ processMetrics: false, node: 'n1' });
    const parts = new DropMetrics({ processMetrics: false, node: 'n1' });
    const split = new CountersSplitter({ fullEvery: 4 });
    for (const s of all) {
      whole.observe(v1(s));
      for (const l of split.lines(s)) parts.observe(l);
      const a = await whole.registry.metrics();
      expect(await parts.registry.metrics()).toBe(a);
      expect(a).toContain('droptrace_conntrack_entries{netns="4026532000",node="n1"}');
    }
    expect(await parts.registry.metrics()).toContain('droptrace_conntrack_fill_ratio{netns="4026532000",node="n1"} 0.999451');
  });

  it('TUI store: the same tables after every sample, and between the lines of one the last whole one', () => {
    const all = samples();
    const whole = new TuiStore();
    const parts = new TuiStore();
    const split = new CountersSplitter({ fullEvery: 4 });
    for (const s of all) {
      const before = parts.snapshot().tables;
      const lines = split.lines(s);
      for (const l of lines.slice(0, -1)) parts.write(l);
      expect(parts.snapshot().tables).toEqual(before);
      parts.write(lines.at(-1)!);
      whole.write(v1(s));
      expect(parts.snapshot().tables).toEqual(whole.snapshot().tables);
    }
    const t = parts.snapshot().tables!;
    expect(t.conntrack!.length).toBe(250);
    expect(t.conntrack![0]!.warn).toBe(true);
  });

  it('replay: a recording of cut lines passes the schema check and plays to the same screen', () => {
    const all = samples();
    const text = cut(all)
      .map((l) => JSON.stringify(l))
      .join('\n');
    const rec = parseRecording(`${text}\n`, 'cut.ndjson');
    expect(rec.unknown).toBe(0);
    const played = new TuiStore();
    for (const r of rec.lines) played.ingest(r.line);
    const whole = new TuiStore();
    for (const s of all) whole.ingest(v1(s));
    expect(played.snapshot().tables).toEqual(whole.snapshot().tables);
  });

  it('TUI store: a recording cut in the middle of a sample shows what of it came at the end', () => {
    const lines = new CountersSplitter().lines(snapshot({ netns: range(250).map((i) => netns(i)) }));
    const store = new TuiStore();
    const came = lines.slice(0, lines.length >> 1);
    for (const l of came) store.write(l);
    expect(store.snapshot().tables).toBeNull();
    store.end('end of recording');
    const shown = came.reduce((n, l) => n + l.conntrack!.netns.length, 0);
    expect(shown).toBeLessThan(250);
    expect(store.snapshot().tables!.conntrack!.length).toBe(shown);
  });
});

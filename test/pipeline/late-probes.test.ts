/**
 * Probes that come later (src/pipeline/late-probes.ts): a probe waiting for its module is tried
 * again once the module is live, and only then; the stream's start and stats lines show the
 * change. A fake retry and a fake module list stand in for the addon and /proc/modules.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ProbeReport } from '../../src/native/binding.js';
import type { StatsLine, StreamLine } from '../../src/pipeline/events.js';
import { Symbolizer } from '../../src/pipeline/kallsyms.js';
import { LateProbes, asWaiting, liveModules, probeStates } from '../../src/pipeline/late-probes.js';
import { ReasonNames } from '../../src/pipeline/reasons.js';
import { runStream } from '../../src/pipeline/stream.js';
import { FakeBinding, GOLDEN, GOLDEN_RECORDS } from '../helpers/fake-tracer.js';
import { schemaErrors } from '../helpers/schema.js';

const DROP: ProbeReport = { probe: 'kfree_skb', hook: 'tp_btf/kfree_skb', state: 'attached' };
const NEIGH: ProbeReport = { probe: 'neigh_create', hook: 'tp_btf/neigh_create', state: 'attached' };
const notLoaded = (hook: string): ProbeReport => ({
  probe: 'ct_alloc',
  hook,
  state: 'unavailable',
  why: 'kernel function __nf_conntrack_alloc is in module nf_conntrack, which is not loaded',
  code: 'E_MODULE_NOT_LOADED',
  module: 'nf_conntrack',
});
/** what the addon reports before nf_conntrack is loaded */
const BEFORE: ProbeReport[] = [DROP, NEIGH, notLoaded('fexit/__nf_conntrack_alloc'), notLoaded('kretprobe/__nf_conntrack_alloc')];
/** ... and after, on a kernel with kprobes but no fexit on module functions (5.10) */
const AFTER: ProbeReport[] = [
  DROP,
  NEIGH,
  { probe: 'ct_alloc', hook: 'fexit/__nf_conntrack_alloc', state: 'unavailable', why: 'load failed', code: 'E_BPF_LOAD' },
  { probe: 'ct_alloc', hook: 'kretprobe/__nf_conntrack_alloc', state: 'attached' },
];

const PROC_MODULES = [
  'nf_conntrack 176128 1 nf_nat, Live 0x0000000000000000',
  'nf_defrag_ipv6 24576 1 nf_conntrack, Loading 0x0000000000000000',
  'veth 40960 0 - Live 0x0000000000000000',
  '',
].join('\n');

afterEach(() => vi.useRealTimers());

describe('what /proc/modules says', () => {
  it('lists only live modules: one still loading has not run its init', () => {
    expect([...liveModules(PROC_MODULES)]).toEqual(['nf_conntrack', 'veth']);
    expect([...liveModules('')]).toEqual([]);
  });
});

describe('probe states', () => {
  it('a function in a module not loaded waits for it; other reasons stay unavailable', () => {
    expect(asWaiting(notLoaded('fexit/__nf_conntrack_alloc'))).toEqual({ ...notLoaded('fexit/__nf_conntrack_alloc'), state: 'waiting', why: 'waiting for module nf_conntrack' });
    const missing: ProbeReport = { probe: 'neigh_alloc', hook: 'fexit/x', state: 'unavailable', why: 'not found', code: 'E_KSYM_MISSING' };
    expect(asWaiting(missing)).toBe(missing);
  });

  it('one state per probe: the hook in use, else waiting, else the first reason', () => {
    expect(probeStates(BEFORE.map(asWaiting))).toEqual([
      { probe: 'kfree_skb', state: 'attached', hook: 'tp_btf/kfree_skb' },
      { probe: 'neigh_create', state: 'attached', hook: 'tp_btf/neigh_create' },
      { probe: 'ct_alloc', state: 'waiting', why: 'waiting for module nf_conntrack' },
    ]);
    expect(probeStates([{ probe: 'martian', hook: 'fentry/f', state: 'unavailable', why: 'EPERM' }, { probe: 'martian', hook: 'kprobe/f', state: 'unavailable', why: 'no kprobes' }])).toEqual([
      { probe: 'martian', state: 'unavailable', why: 'EPERM' },
    ]);
  });
});

function late(modules: () => Set<string>, retry: (p: string[]) => ProbeReport[] = () => AFTER) {
  const retries: string[][] = [];
  const changes: Array<readonly ProbeReport[]> = [];
  const l = new LateProbes(BEFORE, {
    retry: (p) => {
      retries.push(p);
      return retry(p);
    },
    modules,
    onChange: (r) => changes.push(r),
  });
  return { l, retries, changes };
}

describe('LateProbes', () => {
  it('retries a waiting probe once its module is live, then stops looking', () => {
    let mods = new Set(['veth']);
    const { l, retries, changes } = late(() => mods);
    expect(l.waiting()).toEqual(new Map([['nf_conntrack', ['ct_alloc']]]));
    expect(l.poll()).toBe(false);
    expect(retries).toEqual([]);
    mods = liveModules(PROC_MODULES);
    expect(l.poll()).toBe(true);
    expect(retries).toEqual([['ct_alloc']]);
    expect(changes).toHaveLength(1);
    expect(probeStates(l.reports)).toEqual([
      { probe: 'kfree_skb', state: 'attached', hook: 'tp_btf/kfree_skb' },
      { probe: 'neigh_create', state: 'attached', hook: 'tp_btf/neigh_create' },
      { probe: 'ct_alloc', state: 'attached', hook: 'kretprobe/__nf_conntrack_alloc' },
    ]);
    // nothing waits any more: the module list is not read again
    expect(l.waiting().size).toBe(0);
    expect(l.reads).toBe(2);
    expect(l.poll()).toBe(false);
    expect(l.reads).toBe(2);
    expect(retries).toHaveLength(1);
  });

  it('a retry that cannot attach ends the wait with its reason', () => {
    const failed = AFTER.map((r) => (r.hook === 'kretprobe/__nf_conntrack_alloc' ? { ...r, state: 'unavailable' as const, why: 'this kernel has no kprobes', code: 'E_NO_KPROBES' } : r));
    const { l, changes } = late(() => new Set(['nf_conntrack']), () => failed);
    expect(l.poll()).toBe(true);
    expect(probeStates(l.reports).at(-1)).toEqual({ probe: 'ct_alloc', state: 'unavailable', why: 'load failed' });
    expect(l.waiting().size).toBe(0);
    expect(changes).toHaveLength(1);
  });

  it('still waits when the module went away again before the retry', () => {
    const { l, retries, changes } = late(() => new Set(['nf_conntrack']), () => BEFORE);
    expect(l.poll()).toBe(false);
    expect(retries).toEqual([['ct_alloc']]);
    expect(changes).toEqual([]);
    expect(l.waiting().size).toBe(1);
  });

  it('a retry that throws, or a module list that cannot be read, is said in the probe state', () => {
    const { l } = late(
      () => new Set(['nf_conntrack']),
      () => {
        throw new Error('attach after close');
      },
    );
    expect(l.poll()).toBe(true);
    expect(probeStates(l.reports).at(-1)).toEqual({ probe: 'ct_alloc', state: 'unavailable', why: 'retry failed: attach after close' });
    const unreadable = late(() => {
      throw new Error('EACCES: permission denied');
    });
    expect(unreadable.l.poll()).toBe(true);
    expect(probeStates(unreadable.l.reports).at(-1)).toEqual({ probe: 'ct_alloc', state: 'waiting', why: 'waiting for module nf_conntrack (cannot read /proc/modules: EACCES: permission denied)' });
    expect(unreadable.retries).toEqual([]);
  });

  it('polls on a timer only while a probe waits, and never after stop', () => {
    vi.useFakeTimers();
    let mods = new Set<string>();
    const { l, retries } = late(() => mods);
    l.start();
    vi.advanceTimersByTime(2000 * 3);
    expect(l.reads).toBe(3);
    mods = new Set(['nf_conntrack']);
    vi.advanceTimersByTime(2000);
    expect(retries).toHaveLength(1);
    vi.advanceTimersByTime(2000 * 5);
    expect(l.reads).toBe(4);
    expect(vi.getTimerCount()).toBe(0);

    const idle = new LateProbes([DROP, NEIGH], { retry: () => [], modules: () => new Set() });
    idle.start();
    expect(vi.getTimerCount()).toBe(0);

    const stopped = late(() => new Set(['nf_conntrack']));
    stopped.l.start();
    stopped.l.stop();
    vi.advanceTimersByTime(2000 * 3);
    expect(stopped.retries).toEqual([]);
    expect(stopped.l.poll()).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a tracer already stopped ([] from retry) ends the polling', () => {
    vi.useFakeTimers();
    const { l } = late(() => new Set(['nf_conntrack']), () => []);
    expect(l.poll()).toBe(false);
    expect(probeStates(l.reports).at(-1)?.state).toBe('waiting');
    l.start();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('runStream with a probe that comes later', () => {
  it('start line says waiting, a stats line of its own says attached, the final one too; no retry after stop', async () => {
    let loaded = false;
    const fake = new FakeBinding({ batches: GOLDEN_RECORDS.slice(0, 2), probes: BEFORE, retry: () => AFTER });
    const lines: StreamLine[] = [];
    const ac = new AbortController();
    const stats = () => lines.filter((l): l is StatsLine => l.type === 'stats');
    const done = runStream({
      native: fake,
      tracer: {},
      reasons: new ReasonNames(GOLDEN.reasons),
      symbols: new Symbolizer(''),
      sysctl: () => null,
      meta: { version: 'test', node: 'n', kernel: 'k' },
      emit: (l) => {
        lines.push(l);
        // modprobe nf_conntrack once the stream is running; stop once a stats line shows it
        if (l.type === 'start') setImmediate(() => (loaded = true));
        if (l.type === 'stats' && l.probes?.some((p) => p.probe === 'ct_alloc' && p.state === 'attached') && !l.final) ac.abort();
      },
      statsIntervalMs: 3_600_000,
      foldIntervalMs: 3_600_000,
      modules: () => new Set(loaded ? ['nf_conntrack'] : []),
      modulePollMs: 5,
      signal: ac.signal,
    });
    await done;
    const start = lines[0]!;
    expect(start.type).toBe('start');
    expect(start.type === 'start' && start.probes.filter((p) => p.probe === 'ct_alloc').map((p) => [p.hook, p.state, p.why])).toEqual([
      ['fexit/__nf_conntrack_alloc', 'waiting', 'waiting for module nf_conntrack'],
      ['kretprobe/__nf_conntrack_alloc', 'waiting', 'waiting for module nf_conntrack'],
    ]);
    expect(fake.tracer.retries).toEqual([['ct_alloc']]);
    const s = stats();
    expect(s.map((l) => [l.final, l.probes?.find((p) => p.probe === 'ct_alloc')])).toEqual([
      [false, { probe: 'ct_alloc', state: 'attached', hook: 'kretprobe/__nf_conntrack_alloc' }],
      [true, { probe: 'ct_alloc', state: 'attached', hook: 'kretprobe/__nf_conntrack_alloc' }],
    ]);
    expect(fake.tracer.closed).toBe(true);
    expect(schemaErrors(lines.filter((l) => l.type !== 'drop'))).toEqual([]);
  });

  it('every stats line lists the probes, and nothing is polled when nothing waits', async () => {
    const modules = vi.fn(() => new Set<string>());
    const fake = new FakeBinding({ batches: [], probes: [DROP, NEIGH] });
    const lines: StreamLine[] = [];
    const ac = new AbortController();
    const done = runStream({
      native: fake,
      tracer: {},
      reasons: new ReasonNames(GOLDEN.reasons),
      symbols: new Symbolizer(''),
      meta: { version: 'test', node: 'n', kernel: 'k' },
      emit: (l) => {
        lines.push(l);
        if (l.type === 'start') setImmediate(() => ac.abort());
      },
      statsIntervalMs: 3_600_000,
      modules,
      modulePollMs: 1,
      signal: ac.signal,
    });
    await done;
    const final = lines.at(-1) as StatsLine;
    expect(final.probes).toEqual([
      { probe: 'kfree_skb', state: 'attached', hook: 'tp_btf/kfree_skb' },
      { probe: 'neigh_create', state: 'attached', hook: 'tp_btf/neigh_create' },
    ]);
    expect(modules).not.toHaveBeenCalled();
    expect(fake.tracer.retries).toEqual([]);
  });
});

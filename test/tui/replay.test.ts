/**
 * `--replay`: the recording is checked line by line before the screen opens, and played at the
 * recorded pace (or faster, or all at once) with the store's clock following recorded time.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DroptraceError } from '../../src/errors.js';
import { loadRecording, parseRecording, ReplayPlayer } from '../../src/tui/replay.js';
import type { Timers } from '../../src/tui/replay.js';
import { TuiStore } from '../../src/tui/store.js';
import { DROPS } from './helpers.js';

const ROOT = join(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'dist', 'src', 'cli.js');

const drop = (time: string, count = 1) =>
  JSON.stringify({ type: 'drop', time, family: 'netfilter', kind: 'netfilter_rule', reason: 'NETFILTER_DROP', location: 'nft_do_chain', netns: 1, ifname: '', flow: null, pod: null, count, hint: '' });
const START = '{"type":"start","schema":1,"time":"2026-11-24T10:00:00.000Z","version":"0.1.0","node":"n1","kernel":"6.18","probes":[]}';
const STATS =
  '{"type":"stats","time":"2026-11-24T10:00:01.500Z","final":false,"events":1,"folded":0,"lost":{"ring_buffer":0,"userspace":0,"total":0},"decode_errors":0,"enrichment_failures":0,"counters_failures":0,"kernel":{"drops":1,"suppressed":0,"by_reason":{}}}';

function failure(fn: () => unknown): { message: string; exitCode: number } {
  try {
    fn();
  } catch (e) {
    if (e instanceof DroptraceError) return { message: e.line(), exitCode: e.exitCode };
    throw e;
  }
  throw new Error('did not fail');
}

describe('checking a recording', () => {
  it('names the first bad line', () => {
    const text = [drop('2026-11-24T10:00:00.000Z'), '', '{"type":"drop", "time": ', drop('2026-11-24T10:00:01.000Z')].join('\n');
    const f = failure(() => parseRecording(text, 'x.ndjson'));
    expect(f.exitCode).toBe(2);
    expect(f.message).toMatch(/^replay file x\.ndjson line 3: not JSON \(.+\) \(expected NDJSON from droptrace stream\)$/);
  });

  it.each([
    ['[1,2]', 'not a stream line (no "type" field)'],
    ['{"kind":"x"}', 'not a stream line (no "type" field)'],
    [drop('yesterday'), 'drop line: "time" must be an ISO-8601 UTC time such as "2026-11-24T10:00:00.000Z"'],
    ['{"type":"drop","time":"2026-11-24T10:00:00.000Z"}', 'drop line: missing "family"'],
    [drop('2026-11-24T10:00:00.000Z', 0), 'drop line: "count" must be >= 1'],
    [drop('2026-11-24T10:00:00.000Z').replace('"flow":null', '"flow":"udp"'), 'drop line: "flow" must be object'],
    [drop('2026-11-24T10:00:00.000Z').replace('"family":"netfilter"', '"family":"x"'), 'drop line: "family" must be one of "neigh", "conntrack", "netfilter", "martian", "other"'],
    [STATS.replace('"lost":{"ring_buffer":0,"userspace":0,"total":0}', '"lost":3'), 'stats line: "lost" must be object'],
  ])('rejects %s', (line, why) => {
    expect(failure(() => parseRecording(`${drop('2026-11-24T10:00:00.000Z')}\n${line}\n`, 'r.ndjson')).message).toBe(
      `replay file r.ndjson line 2: ${why} (expected NDJSON from droptrace stream)`,
    );
  });

  it('rejects a file without stream lines', () => {
    expect(failure(() => parseRecording('\n\n', 'empty.ndjson')).message).toBe(
      'replay file empty.ndjson has no stream lines (expected NDJSON from droptrace stream)',
    );
  });

  it('says why a file cannot be read', async () => {
    await expect(loadRecording('/nonexistent/drops.ndjson')).rejects.toThrow('cannot read replay file /nonexistent/drops.ndjson: no such file');
    await expect(loadRecording('/')).rejects.toThrow('cannot read replay file /: is a directory');
  });

  it('skips and counts lines of unknown types; never lets time run backwards', () => {
    const rec = parseRecording(
      [
        START,
        '{"type":"future-thing"}',
        drop('2026-11-24T10:00:02.000Z'),
        STATS,
      ].join('\n'),
      'r',
    );
    expect(rec.unknown).toBe(1);
    expect(rec.lines.map((l) => [l.line.type, new Date(l.at).toISOString()])).toEqual([
      ['start', '2026-11-24T10:00:00.000Z'],
      ['drop', '2026-11-24T10:00:02.000Z'],
      ['stats', '2026-11-24T10:00:02.000Z'],
    ]);
  });
});

/** A clock and timers the test moves by hand. */
function fakeTimers() {
  let now = 0;
  let pending: { fn: () => void; at: number } | null = null;
  const waits: number[] = [];
  const timers: Timers = {
    now: () => now,
    setTimeout: (fn, ms) => {
      waits.push(ms);
      pending = { fn, at: now + ms };
      return pending;
    },
    clearTimeout: () => {
      pending = null;
    },
  };
  const advance = (ms: number) => {
    const until = now + ms;
    while (pending && pending.at <= until) {
      const p: { fn: () => void; at: number } = pending;
      pending = null;
      now = p.at;
      p.fn();
    }
    now = until;
  };
  return { timers, advance, waits, pending: () => pending !== null };
}

describe('playing a recording', () => {
  const text = [
    START,
    drop('2026-11-24T10:00:01.000Z', 5),
    drop('2026-11-24T10:00:03.000Z', 7),
    drop('2026-11-24T10:00:10.000Z', 1),
  ].join('\n');

  it('plays at the recorded pace, the store clock following recorded time', () => {
    const store = new TuiStore({ source: 'replay' });
    const t = fakeTimers();
    new ReplayPlayer(parseRecording(text, 'r'), store, 1, t.timers).start();
    expect([store.snapshot().total, store.snapshot().now]).toEqual([0, Date.parse('2026-11-24T10:00:00Z')]);
    t.advance(1000);
    expect(store.snapshot().total).toBe(5);
    t.advance(1999);
    expect(store.snapshot().total).toBe(5);
    t.advance(1);
    expect([store.snapshot().total, store.snapshot().ended]).toEqual([12, null]);
    // quiet stretch: the clock still moves once a recorded second, so rates fall
    t.advance(5000);
    const s = store.snapshot();
    expect([s.total, s.now, s.rate]).toEqual([12, Date.parse('2026-11-24T10:00:08Z'), 1.4]);
    t.advance(2000);
    expect([store.snapshot().total, store.snapshot().ended, t.pending()]).toEqual([13, 'end of recording', false]);
  });

  it('plays ten times faster with --speed 10', () => {
    const store = new TuiStore({ source: 'replay' });
    const t = fakeTimers();
    new ReplayPlayer(parseRecording(text, 'r'), store, 10, t.timers).start();
    t.advance(300);
    expect(store.snapshot().total).toBe(12);
    t.advance(700);
    expect(store.snapshot().ended).toBe('end of recording');
    // one wake-up per recorded second: 100 ms at ×10
    expect(t.waits).toEqual([100, 100, 100, 100, 100, 100, 100, 100, 100, 100]);
  });

  it('never wakes more often than every 50 ms, however fast', () => {
    const store = new TuiStore({ source: 'replay' });
    const t = fakeTimers();
    new ReplayPlayer(parseRecording(text, 'r'), store, 1000, t.timers).start();
    t.advance(50);
    expect([store.snapshot().total, store.snapshot().ended, t.waits]).toEqual([13, 'end of recording', [50]]);
  });

  it('loads everything at once with --speed 0 and sets no timer', () => {
    const store = new TuiStore({ source: 'replay' });
    const t = fakeTimers();
    new ReplayPlayer(parseRecording(text, 'r'), store, 0, t.timers).start();
    const s = store.snapshot();
    expect([s.total, s.now, s.ended, t.waits]).toEqual([13, Date.parse('2026-11-24T10:00:10Z'), 'end of recording', []]);
  });

  it('stops cleanly', () => {
    const store = new TuiStore({ source: 'replay' });
    const t = fakeTimers();
    const p = new ReplayPlayer(parseRecording(text, 'r'), store, 1, t.timers);
    p.start();
    p.stop();
    t.advance(60_000);
    expect([store.snapshot().total, t.pending()]).toEqual([0, false]);
  });

  it('refuses a negative or infinite speed', () => {
    const rec = parseRecording(text, 'r');
    expect(() => new ReplayPlayer(rec, new TuiStore(), -1)).toThrow(RangeError);
    expect(() => new ReplayPlayer(rec, new TuiStore(), Infinity)).toThrow(RangeError);
  });
});

describe.skipIf(!existsSync(MAIN))('droptrace top --replay with a bad file (the built entry)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dttui-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const run = (...args: string[]) => spawnSync(process.execPath, [MAIN, 'top', ...args], { encoding: 'utf8', timeout: 20_000 });

  it('missing file: one line, exit 2', () => {
    const r = run('--replay', join(dir, 'nope.ndjson'));
    expect([r.status, r.stdout, r.stderr]).toEqual([2, '', `droptrace: cannot read replay file ${join(dir, 'nope.ndjson')}: no such file\n`]);
  });

  it('malformed line: one line naming it, exit 2, no stack trace', () => {
    const f = join(dir, 'bad.ndjson');
    writeFileSync(f, `${drop('2026-11-24T10:00:00.000Z')}\n${drop('2026-11-24T10:00:01.000Z')}\n{oops\n`);
    const r = run('--replay', f);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^droptrace: replay file ${f} line 3: not JSON \\([^\\n]+\\) \\(expected NDJSON from droptrace stream\\)\\n$`));
  });

  it('bad flags: one line, exit 2', () => {
    expect(run('--replay', DROPS, '--speed=-1').stderr).toBe(
      "droptrace: option '--speed <n>' argument '-1' is invalid. --speed wants a number >= 0, got \"-1\"\n",
    );
    expect(run('--replay', DROPS, '--group-by', 'color').stderr).toBe(
      "droptrace: option '--group-by <key>' argument 'color' is invalid. Allowed choices are kind, pod, flow, reason.\n",
    );
    const r = run('--speed', '2');
    expect([r.status, r.stderr]).toEqual([2, 'droptrace: --speed only applies to --replay\n']);
  });

  it('a good file but no terminal: says so, exit 2', () => {
    const r = run('--replay', DROPS);
    expect([r.status, r.stderr]).toEqual([2, 'droptrace: top draws a full-screen view and needs a terminal on stdout (use droptrace stream for NDJSON)\n']);
  });
});

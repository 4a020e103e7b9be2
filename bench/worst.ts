#!/usr/bin/env node
/**
 * The worst minute (issue 15), measured: droptrace under a long many-flows flood with every
 * drop a detail event, its stdout read through a pipe as a log shipper would, and — in mode
 * `stalled` — that reader stopped for a minute in the middle. Not a test: it prints figures and
 * whether each target is met. The whole description is HELP below.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanup, exited, installCleanup, state, track } from './cleanup.js';
import { compileFlood, flood, makeNamespaces, ROOT, ruleCount } from './flood.js';
import { MANY_BASE_PORT, parseArgs as benchDefaults } from './options.js';
import { have, procCpu, procStatus, round, say, sleep, systemCpu } from './proc.js';
import { CLI } from './tracers.js';

const HELP = `bench/worst.ts: droptrace in the worst minute (issue 15). Not a test; needs root.

A UDP flood (bench/flood.c) over --flows destination ports (16384 flows, each a key of its
own) from one throw-away namespace into an iptables DROP rule in another (dtbench-<id>-a/b,
198.18.0.0/15, nothing leaves the machine), for --seconds at the highest rate this machine
makes (the generator pinned to --cpu). droptrace runs as a DaemonSet runs it, with every drop a
detail event:  droptrace stream --netns <receiver> --detail-limit 0
and its stdout is a pipe this script reads, counting lines, bytes and the drops each drop
line stands for (count; folded or not).
  --mode pipe     the pipe is read all along
  --mode stalled  the reader stops reading for --stall seconds (default 60) in the middle of
                  the flood (the pipe fills; droptrace must hold its memory and count what it
                  skips in lost.stdout), then reads again
VmRSS of droptrace is sampled every second. When the flood ends, droptrace gets SIGTERM at
once (its backlog still full) and the time to its exit is measured.

Prints: peak RSS (VmHWM), RSS min/max over the last 60 s of the flood, lines and bytes read,
the final stats line's events / folded / unfolded (when the stream has it) / lost.* /
kernel.drops, the identities checked exactly, the exit code and SIGTERM→exit in ms, the
load; then the targets (peak ≤ 256 MiB, flat over the last 60 s: RSS is a garbage-collection
sawtooth, so flat means the lowest RSS of its second half within 10% of the lowest of its
first half, as scripts/soak.sh judges it; final
stats line present, identities exact, exit 0, SIGTERM→exit ≤ 1000 ms), and last one JSON line.

Usage: node dist/bench/worst.js [--seconds 120] [--mode pipe|stalled] [--stall 60]
                                [--flows 16384] [--cpu 0] [--memory-detail]
                                [--node-options '<flags for droptrace's node>']
                                [--stream-args '<more droptrace stream flags>']
--memory-detail: droptrace's own view of its memory once a second (V8 heap, Buffers, bytes
waiting for stdout), from a sampler preloaded into it (node --require; one 1 s timer).
--node-options: flags for droptrace's node, for experiments (e.g. --max-old-space-size=128);
--stream-args: more flags for droptrace stream (e.g. '--counters-interval 0').
Leaves nothing behind (namespaces, rules, processes) on error, Ctrl-C and SIGTERM too.`;

const RSS_TARGET_MIB = 256;
const EXIT_TARGET_MS = 1000;
/** droptrace still running this long after SIGTERM is killed (and the run reported as such) */
const KILL_AFTER_S = 60;

interface WorstOptions {
  seconds: number;
  mode: 'pipe' | 'stalled';
  stall: number;
  flows: number;
  cpu: number;
  /** a 1 s sampler of droptrace's own memory figures, preloaded into it (--memory-detail) */
  memoryDetail: boolean;
  /** extra flags for droptrace's node (experiments: --node-options '--max-old-space-size=128') */
  nodeOptions: string[];
  /** extra flags for droptrace stream (experiments: --stream-args '--counters-interval 0') */
  streamArgs: string[];
}

function usage(msg: string): never {
  process.stderr.write(`worst: ${msg} (see node dist/bench/worst.js --help)\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): WorstOptions {
  const o: WorstOptions = { seconds: 120, mode: 'pipe', stall: 60, flows: 16384, cpu: 0, memoryDetail: false, nodeOptions: [], streamArgs: [] };
  const num = (flag: string, v: string | undefined, lo: number, hi: number, int = true): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < lo || n > hi || (int && !Number.isInteger(n))) usage(`${flag} wants ${int ? 'a whole number' : 'a number'} from ${lo} to ${hi}, got "${v ?? ''}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--seconds') o.seconds = num(a, argv[++i], 5, 3600, false);
    else if (a === '--stall') o.stall = num(a, argv[++i], 1, 3600, false);
    else if (a === '--flows') o.flows = num(a, argv[++i], 2, 65536 - MANY_BASE_PORT);
    else if (a === '--cpu') o.cpu = num(a, argv[++i], -1, 1023);
    else if (a === '--mode') {
      const v = argv[++i];
      if (v !== 'pipe' && v !== 'stalled') usage(`--mode wants pipe or stalled, got "${v ?? ''}"`);
      o.mode = v;
    } else if (a === '--memory-detail') o.memoryDetail = true;
    else if (a === '--stream-args') o.streamArgs = (argv[++i] ?? '').split(/\s+/).filter(Boolean);
    else if (a === '--node-options') o.nodeOptions = (argv[++i] ?? '').split(/\s+/).filter(Boolean);
    else if (a === '-h' || a === '--help') {
      process.stdout.write(HELP + '\n');
      process.exit(0);
    } else usage(`unknown argument "${a}"`);
  }
  if (o.mode === 'stalled' && o.stall >= o.seconds) usage(`--stall (${o.stall} s) must be shorter than --seconds (${o.seconds} s)`);
  return o;
}

/** Loose view of the final stats line (docs/ndjson.md); `unfolded` only where the stream has it. */
interface Stats {
  type: 'stats';
  final?: boolean;
  events?: number;
  folded?: number;
  unfolded?: number;
  lost?: { ring_buffer?: number; userspace?: number; stdout?: number; total?: number };
  kernel?: { drops?: number; suppressed?: number; by_reason?: Record<string, number> };
}

const DROP = Buffer.from('{"type":"drop"');
const COUNT = Buffer.from('"count":');
const FOLDED = Buffer.from('"folded":true');

/**
 * What came through the pipe. Drop lines are a flood of hundreds of thousands a second, so they
 * are not JSON-parsed: `count` and `folded` are found in the line's bytes (the other lines are
 * few and parsed in full). A drop line without a count is counted in `badLines`.
 */
class PipeReader {
  lines = 0;
  bytes = 0;
  dropLines = 0;
  /** Σ count of drop lines without folded:true (detail events, repeats in a batch folded) */
  delivered = 0;
  /** Σ count of folded:true lines (what the kernel or the addon only counted) */
  folded = 0;
  badLines = 0;
  started = false;
  finalStats: Stats | null = null;
  ended = false;
  private rest: Buffer | null = null;

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    const buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    let at = 0;
    for (let nl = buf.indexOf(10, at); nl >= 0; at = nl + 1, nl = buf.indexOf(10, at)) this.line(buf.subarray(at, nl));
    this.rest = at < buf.length ? Buffer.from(buf.subarray(at)) : null;
  }

  private line(l: Buffer): void {
    if (l.length === 0) return;
    this.lines++;
    if (l.length > DROP.length && l.compare(DROP, 0, DROP.length, 0, DROP.length) === 0) {
      this.dropLines++;
      const c = l.indexOf(COUNT);
      let n = 0;
      let i = c + COUNT.length;
      for (; c >= 0 && i < l.length && l[i]! >= 48 && l[i]! <= 57; i++) n = n * 10 + l[i]! - 48;
      if (c < 0 || i === c + COUNT.length) this.badLines++;
      else if (l.indexOf(FOLDED) >= 0) this.folded += n;
      else this.delivered += n;
      return;
    }
    let v: { type?: string; final?: boolean };
    try {
      v = JSON.parse(l.toString('utf8')) as typeof v;
    } catch {
      this.badLines++;
      return;
    }
    if (v.type === 'start') this.started = true;
    else if (v.type === 'stats' && v.final) this.finalStats = v as Stats;
  }
}

/**
 * --memory-detail: preloaded into droptrace (node --require), once a second it appends its own
 * view of its memory to a file: the V8 heap, memory outside it (Buffers), and the bytes
 * waiting for the stdout reader. Nothing of droptrace is changed by it but one 1 s timer.
 */
const MEMORY_PRELOAD = `const fs = require('node:fs');
const v8 = require('node:v8');
const fd = fs.openSync(process.env.DT_WORST_MEMORY, 'w');
const MiB = (x) => Math.round(x / 104857.6) / 10;
setInterval(() => {
  const m = process.memoryUsage();
  const space = {};
  for (const s of v8.getHeapSpaceStatistics()) space[s.space_name.replace('_space', '')] = MiB(s.space_used_size);
  fs.writeSync(fd, JSON.stringify({ at: Date.now(), rss: MiB(m.rss), heap_total: MiB(m.heapTotal), heap_used: MiB(m.heapUsed),
    external: MiB(m.external), array_buffers: MiB(m.arrayBuffers), stdout_queued: MiB(process.stdout.writableLength), space,
    handles: process._getActiveHandles().map((h) => h.constructor.name).join(','), requests: process._getActiveRequests().length }) + '\\n');
}, 1000).unref();
`;

interface MemoryDetail {
  at: number;
  rss: number;
  heap_total: number;
  heap_used: number;
  external: number;
  array_buffers: number;
  stdout_queued: number;
  space: Record<string, number>;
  /** what keeps its event loop alive (names of the active handles), and requests in flight */
  handles: string;
  requests: number;
}

interface Sample {
  t: number;
  rss: number | null;
  hwm: number | null;
  bytes: number;
}

async function waitFor(cond: () => boolean, child: ChildProcessWithoutNullStreams, what: string, stderr: () => string, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`droptrace exited before ${what}: ${stderr().trim()}`);
    if (Date.now() > until) throw new Error(`droptrace: no ${what} within ${ms / 1000} s: ${stderr().trim()}`);
    await sleep(25);
  }
}

const fmt = (x: number | null | undefined, d = 1): string => (x === null || x === undefined ? '-' : String(round(x, d)));

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) usage('needs root (network namespaces, iptables, BPF)');
  for (const c of ['cc', 'ip', 'iptables']) if (!have(c)) usage(`needs ${c} (Debian: scripts/setup.sh installs it)`);
  const load0 = loadavg();
  state.tmp = mkdtempSync(join(tmpdir(), 'droptrace-worst-'));
  const bin = compileFlood(state.tmp);
  const bo = { ...benchDefaults([]), cpu: o.cpu, manyFlows: o.flows };
  const ns = makeNamespaces(bo.port, o.flows);
  say(`worst: namespaces ${ns.a} → ${ns.b} (netns ${ns.inode}), ${o.flows} flows, ${o.seconds} s, mode ${o.mode}; load ${load0.map((x) => x.toFixed(2)).join(' ')}`);

  const memFile = join(state.tmp, 'memory.ndjson');
  const preload = join(state.tmp, 'memory-detail.cjs');
  if (o.memoryDetail) writeFileSync(preload, MEMORY_PRELOAD);
  const nodeArgs = [...o.nodeOptions, ...(o.memoryDetail ? ['--require', preload] : [])];
  const child = track(spawn(process.execPath, [...nodeArgs, CLI, 'stream', '--netns', String(ns.inode), '--detail-limit', '0', ...o.streamArgs], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, DT_WORST_MEMORY: memFile } }));
  child.stdin.end();
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const reader = new PipeReader();
  child.stdout.on('data', (d: Buffer) => reader.push(d));
  const stdoutEnd = new Promise<number>((res) => child.stdout.on('end', () => res(performance.now())));
  const exit = exited(child);
  await waitFor(() => reader.started, child, 'start line', () => err);
  const pid = child.pid!;
  say(`worst: droptrace ${pid} attached; flooding`);

  // one sample a second, from the flood's start; the stall is timed from it too
  const samples: Sample[] = [];
  const t0 = performance.now();
  const t0Wall = Date.now();
  const cpu0 = procCpu(pid);
  const self0 = process.cpuUsage();
  const sys0 = systemCpu();
  const sample = () => samples.push({ t: (performance.now() - t0) / 1000, rss: procStatus(pid, 'VmRSS'), hwm: procStatus(pid, 'VmHWM'), bytes: reader.bytes });
  sample();
  const timers = [setInterval(sample, 1000)];
  const from = (o.seconds - o.stall) / 2;
  const stall = o.mode === 'stalled' ? { from: round(from, 1), to: round(from + o.stall, 1), bytes_at_stop: 0, bytes_at_resume: 0 } : null;
  if (stall) {
    timers.push(
      setTimeout(() => {
        // pause(): Node stops reading the fd once its own buffer is full; the pipe then fills
        child.stdout.pause();
        stall.bytes_at_stop = reader.bytes;
        say(`worst: reader stopped at ${fmt((performance.now() - t0) / 1000)} s`);
      }, from * 1000),
      setTimeout(
        () => {
          stall.bytes_at_resume = reader.bytes;
          child.stdout.resume();
          say(`worst: reader reading again at ${fmt((performance.now() - t0) / 1000)} s`);
        },
        (from + o.stall) * 1000,
      ),
    );
  }
  let gen;
  try {
    gen = await flood(bo, ns, bin, o.seconds, o.flows);
  } finally {
    for (const t of timers) clearTimeout(t);
  }
  sample();
  const cpu1 = procCpu(pid);
  const self1 = process.cpuUsage(self0);
  const sys1 = systemCpu();
  const floodS = (performance.now() - t0) / 1000;
  const atEnd = { lines: reader.lines, bytes: reader.bytes };
  child.stdout.resume();

  // SIGTERM with the backlog as the flood left it
  const k0 = performance.now();
  const stopCpu0 = procCpu(pid);
  const linesAtTerm = reader.lines;
  child.kill('SIGTERM');
  // what it does meanwhile: CPU busy (draining its backlog) or idle (waiting on something)
  let stopCpu = 0;
  const stopWatch = setInterval(() => {
    const c = procCpu(pid);
    if (c !== null && stopCpu0 !== null) stopCpu = c - stopCpu0;
  }, 200);
  const killer = setTimeout(() => {
    say(`worst: droptrace still running ${KILL_AFTER_S} s after SIGTERM: SIGKILL`);
    child.kill('SIGKILL');
  }, KILL_AFTER_S * 1000);
  const ex = await exit;
  const exitMs = performance.now() - k0;
  clearTimeout(killer);
  clearInterval(stopWatch);
  const eofMs = (await Promise.race([stdoutEnd, sleep(5000).then(() => NaN)])) - k0;
  const generated = ruleCount(ns.b, MANY_BASE_PORT, o.flows);
  const memory = o.memoryDetail
    ? readFileSync(memFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as MemoryDetail)
        .map((m) => ({ ...m, t: round((m.at - t0Wall) / 1000, 1) }))
    : null;
  cleanup();

  // the figures
  const rss = samples.map((s) => s.rss).filter((x): x is number => x !== null);
  const peak = Math.max(...samples.map((s) => s.hwm ?? 0));
  const win = Math.min(60, floodS / 2);
  const last = samples.filter((s) => s.t >= floodS - win && s.rss !== null).map((s) => s.rss!);
  const lastMin = Math.min(...last);
  const lastMax = Math.max(...last);
  // the sawtooth's floor, first and second half of the window: a trend, not a GC cycle
  const half = Math.floor(last.length / 2);
  const floors = [Math.min(...last.slice(0, half)), Math.min(...last.slice(half))] as const;
  const st = reader.finalStats;
  const k = st?.kernel?.drops;
  const unfolded = st?.unfolded;
  const lost = st?.lost ?? {};
  const stdoutLost = lost.stdout ?? 0;
  // what the reader got + what droptrace said it skipped + what it could not fold == the kernel's count
  const streamSum = reader.delivered + reader.folded + stdoutLost + (unfolded ?? 0);
  // the stats line alone: every drop a detail event, folded back, or (where counted) unfolded
  const statsSum = (st?.events ?? 0) + (st?.folded ?? 0) + (unfolded ?? 0);
  const busyPct = ((sys1.busy - sys0.busy) / (sys1.total - sys0.total)) * 100;
  const cpuPct = cpu0 !== null && cpu1 !== null ? ((cpu1 - cpu0) / floodS) * 100 : null;
  const readerPct = ((self1.user + self1.system) / 1e6 / floodS) * 100;
  const result = {
    type: 'droptrace-worst',
    time: new Date().toISOString(),
    options: o,
    load_1m: { start: round(load0[0], 2), end: round(loadavg()[0], 2) },
    machine_busy_pct: round(busyPct, 1),
    flood: { seconds: round(floodS, 1), sent: gen.sent, send_errors: gen.errors, generator_cpu_s: gen.cpu_s, dropped_by_rule: generated, drops_per_s: Math.round(generated / gen.seconds) },
    droptrace: { cpu_pct: round(cpuPct, 1), peak_rss_mib: round(peak, 1), last_window_s: round(win, 0), last_rss_mib: { min: round(lastMin, 1), max: round(lastMax, 1), floor_first_half: round(floors[0], 1), floor_second_half: round(floors[1], 1) } },
    rss_mib: samples.map((s) => round(s.rss, 1)),
    read: { reader_cpu_pct: round(readerPct, 1), lines: reader.lines, bytes: reader.bytes, drop_lines: reader.dropLines, delivered: reader.delivered, folded: reader.folded, bad_lines: reader.badLines, at_flood_end: atEnd },
    stall,
    final_stats: st,
    identity: {
      stream: { what: 'Σcount(drop lines read) + lost.stdout + unfolded == kernel.drops', sum: streamSum, kernel_drops: k ?? null, exact: k !== undefined && streamSum === k },
      stats: { what: 'events + folded + unfolded == kernel.drops', sum: statsSum, kernel_drops: k ?? null, exact: k !== undefined && statsSum === k },
      unfolded_in_stats: unfolded !== undefined,
    },
    memory_detail: memory,
    exit: {
      code: ex.code,
      signal: ex.signal,
      sigterm_to_exit_ms: round(exitMs, 0),
      sigterm_to_stdout_eof_ms: round(eofMs, 0),
      cpu_s_after_sigterm: round(stopCpu, 2),
      lines_after_sigterm: reader.lines - linesAtTerm,
    },
  };
  const flat = floors[1] <= floors[0] * 1.1;
  const targets = {
    peak_rss: peak <= RSS_TARGET_MIB,
    flat_last_window: flat,
    final_stats: st !== null,
    identity_stream: result.identity.stream.exact,
    identity_stats: result.identity.stats.exact,
    exit_0: ex.code === 0,
    sigterm_exit_1s: exitMs <= EXIT_TARGET_MS,
  };

  const p = (s: string) => process.stderr.write(s + '\n');
  p(`\nworst minute, mode ${o.mode}${stall ? ` (reader stopped ${fmt(o.stall, 0)} s from ${fmt((o.seconds - o.stall) / 2, 0)} s)` : ''}: ${fmt(floodS)} s flood, ${o.flows} flows, load ${fmt(load0[0], 2)} → ${fmt(loadavg()[0], 2)}, machine ${fmt(busyPct)}% busy`);
  p(`  flood           ${generated} drops by the rule, ${result.flood.drops_per_s} drops/s, generator ${fmt(gen.cpu_s)} s CPU`);
  p(`  droptrace       ${fmt(cpuPct)}% of a CPU; peak RSS ${fmt(peak)} MiB; last ${fmt(win, 0)} s RSS ${fmt(lastMin)}–${fmt(lastMax)} MiB, floor ${fmt(floors[0])} → ${fmt(floors[1])} MiB (halves)`);
  p(`  RSS (MiB, 1/s)  ${rss.map((x) => Math.round(x)).join(' ')}`);
  p(`  read            ${reader.lines} lines, ${reader.bytes} bytes (${fmt(reader.bytes / 2 ** 20)} MiB), reader ${fmt(readerPct)}% of a CPU; drop lines ${reader.dropLines}: delivered Σcount ${reader.delivered}, folded Σcount ${reader.folded}; bad ${reader.badLines}`);
  if (memory) {
    // the sampler is a timer in droptrace's event loop: a gap is a turn that long (batches, GC)
    const gaps = memory.slice(1).map((m, i) => (m.at - memory[i]!.at) / 1000);
    p(`  event loop      droptrace's own 1 s samples: ${memory.length}, longest gap ${fmt(Math.max(0, ...gaps))} s (a turn that long: batch work or GC)`);
    p('  inside (MiB)    t s: rss heap_total heap_used old_space external array_buffers stdout_queued (every 5 s)');
    for (const m of memory.filter((_, i) => i % 5 === 0 || i === memory.length - 1))
      p(`                  ${m.t}: ${m.rss} ${m.heap_total} ${m.heap_used} ${m.space.old ?? '-'} ${m.external} ${m.array_buffers} ${m.stdout_queued}`);
  }
  if (stall) p(`  stall           ${stall.bytes_at_resume - stall.bytes_at_stop} bytes read while stopped`);
  if (st) {
    p(`  final stats     events ${st.events} folded ${st.folded} unfolded ${unfolded ?? '(not in this stream)'} kernel.drops ${k} suppressed ${st.kernel?.suppressed}`);
    p(`                  lost: ring_buffer ${lost.ring_buffer} userspace ${lost.userspace} stdout ${lost.stdout} total ${lost.total}`);
  } else p('  final stats     MISSING');
  p(`  identity        ${result.identity.stream.what}: ${streamSum} vs ${k ?? '-'} → ${result.identity.stream.exact ? 'exact' : `OFF by ${streamSum - (k ?? 0)}`}`);
  p(`                  ${result.identity.stats.what}: ${statsSum} vs ${k ?? '-'} → ${result.identity.stats.exact ? 'exact' : `OFF by ${statsSum - (k ?? 0)}`}`);
  p(`  exit            code ${ex.code ?? ex.signal}, SIGTERM → exit ${fmt(exitMs, 0)} ms (stdout EOF ${fmt(eofMs, 0)} ms); meanwhile ${fmt(stopCpu, 2)} s of CPU, ${reader.lines - linesAtTerm} lines`);
  p(`  targets         ${Object.entries(targets).map(([n, ok]) => `${n} ${ok ? 'met' : 'MISSED'}`).join(', ')}`);
  if (err.trim()) p(`  droptrace stderr: ${err.trim().split('\n').slice(-3).join(' | ')}`);
  process.stdout.write(JSON.stringify({ ...result, targets }) + '\n');
}

installCleanup();
main().catch((e: unknown) => {
  say(`worst: failed: ${e instanceof Error ? e.message : String(e)}`);
  cleanup();
  process.exit(1);
});

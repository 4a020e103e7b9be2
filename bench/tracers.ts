/**
 * The tracers a run attaches (droptrace as a user runs it, or bpftrace count-only) and what
 * they wrote: started, waited on until attached (their ready signal), stopped, read back.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { stopChild, track } from './cleanup.js';
import type { BenchNs } from './flood.js';
import { ROOT } from './flood.js';
import { progIdsOf, round, sleep } from './proc.js';
import type { BpfProgram } from './proc.js';

export const CLI = join(ROOT, 'dist', 'src', 'cli.js');
export const BPFTRACE_PROGRAM = 'tracepoint:skb:kfree_skb { @[args->reason] = count(); }';

/** Loose view of the lines the bench reads back (the NDJSON schema has them in full). */
export interface StatsLine {
  type: 'stats';
  final?: boolean;
  events?: number;
  folded?: number;
  decode_errors?: number;
  lost?: { total?: number; ring_buffer?: number; userspace?: number };
  kernel?: { drops?: number; suppressed?: number; by_reason?: Record<string, number> };
}
export interface StoreSummary {
  type: 'bench-store';
  lines: number;
  delivered: number;
  folded: number;
  frames: number;
  store_total: number;
  groups: number;
}

export interface NdjsonSummary {
  lines: number;
  bytes: number;
  dropLines: number;
  delivered: number;
  folded: number;
  finalStats: StatsLine | null;
  store: StoreSummary | null;
  badLines: number;
}

/**
 * The non-empty lines of a file, in groups, read 16 MiB at a time: a many-flows run writes more
 * than one JavaScript string can hold.
 */
export function* fileLineGroups(file: string): Generator<string[]> {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(16 << 20);
    const text = new StringDecoder('utf8'); // a character split across two reads stays whole
    let rest = '';
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      const parts = (rest + text.write(buf.subarray(0, n))).split('\n');
      rest = parts.pop() ?? '';
      yield parts.filter(Boolean);
    }
    if (rest) yield [rest];
  } finally {
    closeSync(fd);
  }
}

/** Output file of a droptrace process: the lines, counted (drop lines summed by kind). */
export function readNdjson(file: string): NdjsonSummary {
  const r: NdjsonSummary = { lines: 0, bytes: statSync(file).size, dropLines: 0, delivered: 0, folded: 0, finalStats: null, store: null, badLines: 0 };
  for (const group of fileLineGroups(file))
    for (const s of group) {
      r.lines++;
      let l: { type?: string; count?: unknown; folded?: unknown; final?: unknown };
      try {
        l = JSON.parse(s) as typeof l;
      } catch {
        r.badLines++;
        continue;
      }
      if (l.type === 'drop') {
        r.dropLines++;
        const n = typeof l.count === 'number' ? l.count : 1;
        if (l.folded) r.folded += n;
        else r.delivered += n;
      } else if (l.type === 'stats' && l.final) r.finalStats = l as StatsLine;
      else if (l.type === 'bench-store') r.store = l as StoreSummary;
    }
  return r;
}

async function waitForStart(file: string, child: { exitCode: number | null; signalCode: string | null }, what: string, stderr: () => string): Promise<void> {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited before its start line: ${stderr().trim()}`);
    try {
      const text = readFileSync(file, 'utf8');
      if (text.includes('"type":"start"') && text.includes('\n')) return;
    } catch {
      // not there yet
    }
    await sleep(25);
  }
  throw new Error(`${what}: no start line within 60 s: ${stderr().trim()}`);
}

export interface Tracer<R> {
  pid: number;
  readyS: number;
  ownProgs(): Set<number>;
  isOurs(p: BpfProgram): boolean;
  stop(): Promise<R>;
}

export interface DroptraceOutput {
  file: string;
  out: NdjsonSummary;
  stderr: string;
}

/** A droptrace process writing NDJSON to a file (runs 3, 5, 7, 9, 10: the CLI; run 4: the TUI store runner). */
export async function startDroptrace(run: number, ns: BenchNs, dir: string, rep: number): Promise<Tracer<DroptraceOutput>> {
  const kind = run === 4 ? 'tui' : 'stream';
  const file = join(dir, `run${run}-${rep}.ndjson`);
  const fd = openSync(file, 'w');
  // DT_BENCH_NO_RULES=1: droptrace without rule attribution, to tell its cost from the drop path's
  const stream = [CLI, 'stream', '--netns', String(ns.inode), '--counters-interval', '0', ...(process.env.DT_BENCH_NO_RULES ? ['--no-rules'] : [])];
  const args =
    run === 3 || run === 7 || run === 9
      ? stream
      : run === 5
        ? [...stream, '--detail-limit', '0']
        : run === 10
          ? [...stream, '--detail-budget', '0']
          : [join(import.meta.dirname, 'tui-store-run.js'), '--netns', String(ns.inode)];
  const t0 = performance.now();
  const child = track(spawn(process.execPath, args, { stdio: ['ignore', fd, 'pipe'], cwd: ROOT }));
  closeSync(fd);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await waitForStart(file, child, `droptrace (${kind})`, () => err);
  return {
    pid: child.pid!,
    readyS: (performance.now() - t0) / 1000,
    ownProgs: () => progIdsOf(child.pid!),
    isOurs: (p) => p.name.startsWith('dt_'),
    async stop() {
      const r = await stopChild(child, `droptrace (${kind})`);
      if (r.code !== 0) throw new Error(`droptrace (${kind}) exited with ${r.code ?? r.signal}: ${err.trim()}`);
      return { file, out: readNdjson(file), stderr: err };
    },
  };
}

export interface BpftraceOutput {
  byReason: Record<number, number>;
  stderr: string;
}

export async function startBpftrace(): Promise<Tracer<BpftraceOutput>> {
  // BEGIN runs once every probe is attached: the ready signal; it adds nothing per drop
  const child = track(spawn('bpftrace', ['-e', `BEGIN { printf("ready\\n"); } ${BPFTRACE_PROGRAM}`], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const t0 = performance.now();
  const until = Date.now() + 60_000;
  while (!out.includes('ready\n')) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`bpftrace exited before attaching: ${(err || out).trim()}`);
    if (Date.now() > until) throw new Error(`bpftrace did not attach within 60 s: ${err.trim()}`);
    await sleep(25);
  }
  return {
    pid: child.pid!,
    readyS: (performance.now() - t0) / 1000,
    ownProgs: () => progIdsOf(child.pid!),
    isOurs: (p) => p.type === 'tracepoint',
    async stop() {
      await stopChild(child, 'bpftrace');
      const byReason: Record<number, number> = {};
      for (const m of out.matchAll(/^@\[(\d+)\]:\s*(\d+)$/gm)) byReason[Number(m[1])] = Number(m[2]);
      return { byReason, stderr: err };
    },
  };
}

/** The cost of writing run 3's NDJSON to a file rather than /dev/null, replayed line by line as Node writes it. */
export function fileSinkCost(file: string, dir: string): { lines: number; file_ms: number | null; devnull_ms: number | null; extra_ms: number | null } {
  let count = 0;
  const time = (target: string): number => {
    const fd = openSync(target, 'w');
    let ms = 0;
    count = 0;
    // only the writes are timed, a group of lines at a time (the reading is not)
    for (const group of fileLineGroups(file)) {
      const c0 = process.cpuUsage();
      for (const l of group) writeSync(fd, l + '\n');
      const c = process.cpuUsage(c0);
      ms += (c.user + c.system) / 1000;
      count += group.length;
    }
    closeSync(fd);
    return ms;
  };
  const replay = join(dir, 'sink-replay.ndjson');
  time('/dev/null'); // warm
  const toNull = time('/dev/null');
  const toFile = time(replay);
  rmSync(replay, { force: true });
  return { lines: count, file_ms: round(toFile, 2), devnull_ms: round(toNull, 2), extra_ms: round(Math.max(0, toFile - toNull), 2) };
}

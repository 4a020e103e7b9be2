#!/usr/bin/env node
/**
 * `droptrace top` under a many-flows flood (not a test: a measurement). The TUI runs in a tmux
 * pane of its own while bench/flood.c sends UDP to --flows destination ports (each a flow and a
 * key) of an `iptables -j DROP` rule in a throw-away namespace pair (dttop-<id>-a/b, 198.18/15).
 * Reports what the on-call engineer would feel: peak RSS (VmHWM), RSS over the last 60 s,
 * frames that reached the terminal (per second: a frozen screen shows as zeros), whether the
 * header's exact kernel count ends on the rule's own count, and the time from `q` to exit.
 *
 * Usage: node dist/bench/top-flood.js [--seconds 120] [--flows 16384] [--cpu 0] [--cpu-prof DIR]
 *                                    [--mem-log FILE] [--heap-snapshot DIR] [--checkout DIR]
 *                                    [--keep] [-- TOP_ARGS...]
 *   --checkout: measure another checkout's build (dist/src/cli.js there): a baseline
 *   --cpu-prof, --mem-log, --heap-snapshot: a CPU profile, a memory log (heap, Buffers) and a
 *   heap snapshot at exit, from inside the process (bench/inside.ts)
 *   e.g. -- --detail-limit 0      (every drop a detail event: the heaviest load the view gets)
 * Needs root, tmux, cc and a built droptrace. Prints one line per second on stderr
 * (t, rss MiB, frames, header total, kernel exact), a summary, and one JSON line on stdout.
 * Leaves nothing behind (namespaces, tmux server, children), also on error or Ctrl-C.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { count } from '../src/tui/format.js';
import { cleanup, installCleanup, state } from './cleanup.js';
import { compileFlood, flood, makeNamespaces, ROOT, ruleCount } from './flood.js';
import { MANY_BASE_PORT } from './options.js';
import type { BenchOptions } from './options.js';
import { procCpu, procStatus, round, say, sh, sleep } from './proc.js';

interface Args {
  seconds: number;
  flows: number;
  cpu: number;
  cpuProf: string | null;
  memLog: string | null;
  heapDir: string | null;
  /** another checkout's build to measure (a baseline), default this one */
  checkout: string;
  keep: boolean;
  top: string[];
}

function usage(msg: string): never {
  process.stderr.write(`top-flood: ${msg} (see --help)\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { seconds: 120, flows: 16384, cpu: 0, cpuProf: null, memLog: null, heapDir: null, checkout: ROOT, keep: false, top: [] };
  const int = (flag: string, v: string | undefined, lo: number, hi: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < lo || n > hi) usage(`${flag} wants a whole number from ${lo} to ${hi}, got "${v ?? ''}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    if (x === '--seconds') a.seconds = int(x, argv[++i], 1, 3600);
    else if (x === '--flows') a.flows = int(x, argv[++i], 2, 65536 - MANY_BASE_PORT);
    else if (x === '--cpu') a.cpu = int(x, argv[++i], -1, cpus().length - 1);
    else if (x === '--cpu-prof') a.cpuProf = argv[++i] ?? usage('--cpu-prof wants a directory');
    else if (x === '--mem-log') a.memLog = argv[++i] ?? usage('--mem-log wants a file');
    else if (x === '--heap-snapshot') a.heapDir = argv[++i] ?? usage('--heap-snapshot wants a directory');
    else if (x === '--checkout') a.checkout = argv[++i] ?? usage('--checkout wants a directory');
    else if (x === '--keep') a.keep = true;
    else if (x === '--') {
      a.top = argv.slice(i + 1);
      break;
    } else if (x === '-h' || x === '--help') {
      process.stdout.write(readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0]!.replace(/^#!.*\n\/\*\*\n/, '').replace(/^ \* ?/gm, '') + '\n');
      process.exit(0);
    } else usage(`unknown argument "${x}"`);
  }
  return a;
}

/** `12.3k drops/s  lost …  total 1.23M  kernel exact 4.56M`: the header's second line. */
export function headerNumbers(screen: string): { total: string; kernel: string | null } | null {
  const m = /^\S+ drops\/s {2}lost .*? {2}total (\S+)(?: {2}benign \S+ (?:hidden|shown))?(?: {2}kernel exact (\S+))?/m.exec(screen);
  return m ? { total: m[1]!, kernel: m[2] ?? null } : null;
}

/** Frames that reached the terminal: every frame Ink writes holds the header's rate line once. */
class FrameCounter {
  #fd: number;
  #tail = '';
  total = 0;
  constructor(path: string) {
    this.#fd = openSync(path, 'r');
  }
  read(): number {
    const buf = Buffer.alloc(1 << 20);
    let n = 0;
    for (;;) {
      const got = readSync(this.#fd, buf, 0, buf.length, null);
      if (got <= 0) break;
      const text = this.#tail + buf.toString('latin1', 0, got);
      const parts = text.split(' drops/s');
      n += parts.length - 1;
      this.#tail = parts[parts.length - 1]!.slice(-16);
    }
    this.total += n;
    return n;
  }
  close(): void {
    closeSync(this.#fd);
  }
}

async function main(): Promise<number> {
  const a = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) usage('needs root (BPF programs, network namespaces)');
  if (spawnSync('tmux', ['-V']).status !== 0) usage('needs tmux');
  const cli = join(a.checkout, 'dist', 'src', 'cli.js');
  if (!existsSync(cli)) usage('droptrace is not built (npm run build)');
  installCleanup();
  state.keep = a.keep;
  const dir = mkdtempSync(join(tmpdir(), 'dttop-'));
  state.tmp = dir;
  const sock = join(dir, 'tmux.sock');
  const tmux = (...args: string[]) => sh('tmux', ['-S', sock, ...args]);
  const killTmux = () => spawnSync('tmux', ['-S', sock, 'kill-server'], { stdio: 'ignore' });
  process.on('exit', killTmux);

  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const bin = compileFlood(dir);
  const ns = makeNamespaces(5301, a.flows);
  // a profile and memory log from SIGUSR2 on (bench/inside.ts): node's own --cpu-prof breaks BPF loading
  const inside = a.cpuProf !== null || a.memLog !== null || a.heapDir !== null;
  const prof = inside ? `--import=${join(ROOT, 'dist', 'bench', 'inside.js')} ` : '';
  const profEnv = (a.cpuProf ? `DT_CPU_PROF_DIR=${q(a.cpuProf)} ` : '') + (a.memLog ? `DT_MEM_LOG=${q(a.memLog)} ` : '') + (a.heapDir ? `DT_HEAP_SNAPSHOT_DIR=${q(a.heapDir)} ` : '');
  const inner = `echo $$ >${dir}/pid; exec env -u CI NO_COLOR=1 LANG=C.UTF-8 ${profEnv}${process.execPath} ${prof}${cli} top --netns ${ns.inode} ${a.top.map(q).join(' ')} 2>${dir}/err`;
  tmux('-f', '/dev/null', 'new-session', '-d', '-s', 'top', '-x', '120', '-y', '40', `sh -c ${q(inner)}; echo $? >${dir}/rc`);
  tmux('pipe-pane', '-t', 'top', '-o', `cat >>${dir}/pane`);
  const screen = () => (existsSync(join(dir, 'rc')) ? '' : tmux('capture-pane', '-p', '-t', 'top'));
  const ended = () => existsSync(join(dir, 'rc'));
  const fail = (what: string): never => {
    const err = existsSync(join(dir, 'err')) ? readFileSync(join(dir, 'err'), 'utf8') : '';
    throw new Error(`droptrace top ended while ${what}: ${err.trim()}`);
  };

  while (!/^droptrace {2}LIVE /m.test(screen())) {
    if (ended()) fail('starting');
    await sleep(100);
  }
  const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
  while (!existsSync(join(dir, 'pane'))) await sleep(50);
  if (inside) process.kill(pid, 'SIGUSR2');
  const frames = new FrameCounter(join(dir, 'pane'));
  frames.read();
  frames.total = 0;
  const load = loadavg().map((x) => round(x, 2));
  say(`droptrace top (pid ${pid}) under ${a.flows} flows for ${a.seconds} s; load ${load.join(' ')}; top args: ${a.top.join(' ') || '(defaults)'}`);

  const o = { port: MANY_BASE_PORT, cpu: a.cpu } as BenchOptions;
  const floodRun = flood(o, ns, bin, a.seconds, a.flows);
  let floodDone = false;
  void floodRun.finally(() => (floodDone = true)).catch(() => undefined);

  interface Sample {
    t: number;
    rssMiB: number | null;
    frames: number;
    total: string | null;
    kernel: string | null;
  }
  const samples: Sample[] = [];
  const t0 = performance.now();
  const cpu0 = procCpu(pid);
  process.stderr.write('t_s\trss_MiB\tframes\ttotal\tkernel\n');
  while (!floodDone) {
    await sleep(1000 - ((performance.now() - t0) % 1000));
    if (ended()) fail('the flood ran');
    const h = headerNumbers(screen());
    const s: Sample = { t: Math.round((performance.now() - t0) / 1000), rssMiB: round(procStatus(pid, 'VmRSS')), frames: frames.read(), total: h?.total ?? null, kernel: h?.kernel ?? null };
    samples.push(s);
    process.stderr.write(`${s.t}\t${s.rssMiB}\t${s.frames}\t${s.total}\t${s.kernel}\n`);
  }
  const f = await floodRun;
  if (a.heapDir) process.kill(pid, 'SIGUSR2');
  const cpuFlood = procCpu(pid);
  const cpuPct = cpu0 !== null && cpuFlood !== null ? round((100 * (cpuFlood - cpu0)) / ((performance.now() - t0) / 1000)) : null;
  const dropped = ruleCount(ns.b, MANY_BASE_PORT, a.flows);

  // the header's exact kernel count catches up with the rule's (bounded: a bench must end)
  const settleStart = performance.now();
  let last: { total: string; kernel: string | null } | null = null;
  let settled = false;
  while (performance.now() - settleStart < 30_000) {
    last = headerNumbers(screen());
    if (last?.kernel === count(dropped)) {
      settled = true;
      break;
    }
    if (ended()) fail('settling');
    await sleep(100);
  }
  const settleMs = performance.now() - settleStart;
  const peakMiB = round(procStatus(pid, 'VmHWM'));
  const framesDuring = samples.reduce((n, s) => n + s.frames, 0);

  // q → exit: until the process is gone (a zombie or reaped), not until the pane's shell noticed
  const qAt = performance.now();
  tmux('send-keys', '-t', 'top', 'q');
  // gone: a zombie or reaped (the shell behind the pane may take its time to write rc)
  const gone = () => {
    try {
      const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) === 'Z';
    } catch {
      return true;
    }
  };
  while (!gone() && performance.now() - qAt < 60_000) await sleep(2);
  const quitMs = gone() ? performance.now() - qAt : null;
  while (!ended() && performance.now() - qAt < 60_000) await sleep(5);
  const rc = ended() ? readFileSync(join(dir, 'rc'), 'utf8').trim() : 'still running';
  const stderr = existsSync(join(dir, 'err')) ? readFileSync(join(dir, 'err'), 'utf8').replace(/\x1b\[\?25h/g, '').trim() : '';
  frames.close();
  if (!ended()) spawnSync('kill', ['-KILL', String(pid)]);

  const lastMin = samples.filter((s) => s.t > a.seconds - 60 && s.rssMiB !== null).map((s) => s.rssMiB!);
  const stalls = samples.filter((s) => s.frames === 0).length;
  const result = {
    checkout: a.checkout,
    seconds: a.seconds,
    flows: a.flows,
    topArgs: a.top,
    load,
    // named namespaces on the machine: the host sampler walks each (nsenter for process-less ones)
    netnsOnMachine: sh('ip', ['netns', 'list']).split('\n').filter((l) => l.trim() !== '').length,
    loadAfter: loadavg().map((x) => round(x, 2)),
    sent: f.sent,
    kernelDrops: dropped,
    dropsPerSec: Math.round(dropped / f.seconds),
    cpuPercentOfOneCore: cpuPct,
    peakRssMiB: peakMiB,
    lastMinuteRssMiB: lastMin.length ? { min: Math.min(...lastMin), max: Math.max(...lastMin), first: lastMin[0], last: lastMin[lastMin.length - 1] } : null,
    framesDuringFlood: framesDuring,
    framesPerSec: round(framesDuring / samples.length),
    secondsWithoutFrame: stalls,
    headerKernelMatched: settled,
    settleMs: Math.round(settleMs),
    headerLast: last,
    quitMs: quitMs === null ? null : Math.round(quitMs),
    exitCode: rc,
    stderr,
    samples,
  };
  say(
    `flood: ${count(dropped)} drops (${count(result.dropsPerSec)}/s); droptrace CPU ${cpuPct}% of a core; peak RSS ${peakMiB} MiB; last 60 s RSS ${result.lastMinuteRssMiB ? `${result.lastMinuteRssMiB.min}..${result.lastMinuteRssMiB.max}` : '-'} MiB; ` +
      `${framesDuring} frames (${result.framesPerSec}/s, ${stalls} s without one); header kernel ${settled ? 'matched' : `did NOT match (${last?.kernel} vs ${count(dropped)})`} ${result.settleMs} ms after the flood; ` +
      `q → exit ${result.quitMs ?? '>60000'} ms (exit ${rc})${stderr ? `; stderr: ${stderr}` : ''}`,
  );
  process.stdout.write(JSON.stringify(result) + '\n');
  return settled && rc === '0' ? 0 : 1;
}

main().then(
  (code) => {
    cleanup();
    process.exit(code);
  },
  (e: unknown) => {
    say((e as Error).message);
    cleanup();
    process.exit(1);
  },
);

/** droptrace as a user runs it: `droptrace check --json` and `droptrace stream`, whose lines are read as they come. */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { CLI, readOr, SLOW } from './util.js';

export interface Probe {
  probe: string;
  hook: string;
  state: string;
  why?: string;
}
export interface CheckReport {
  probes?: Probe[];
  [k: string]: unknown;
}
export interface CheckResult {
  exit: number | null;
  report: CheckReport | null;
  stderr: string;
  missingFunctions: string[];
}

export function check(env: Record<string, string>): CheckResult {
  const r = spawnSync(process.execPath, [CLI, 'check', '--json'], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 * SLOW });
  let report: CheckReport | null = null;
  try {
    report = JSON.parse(r.stdout) as CheckReport;
  } catch {
    // reported through exit and stderr
  }
  return { exit: r.status, report, stderr: (r.stderr ?? '').trim(), missingFunctions: missingFunctions(report) };
}

/**
 * Kernel functions that probes in `report` hook and that this kernel does not have right now
 * (not built in, or in a module not loaded yet): such a probe must be unavailable, saying so.
 */
function missingFunctions(report: CheckReport | null): string[] {
  const fns = new Set<string>();
  for (const p of report?.probes ?? []) {
    const m = p.hook.match(/^(?:kprobe|kretprobe|fentry|fexit)\/(.+)$/);
    if (m) fns.add(m[1]!);
  }
  if (fns.size === 0) return [];
  const have = new Set<string>();
  for (const line of readOr('/proc/kallsyms', '').split('\n')) {
    const name = line.split(/\s+/)[2];
    if (name !== undefined && fns.has(name)) have.add(name);
  }
  return [...fns].filter((f) => !have.has(f));
}

/** A stream line as the exercise reads it (the NDJSON schema has them in full). */
export interface Line {
  type: string;
  family?: string;
  kind?: string;
  /** null: the kernel has no drop reasons (before 5.17) */
  reason?: string | null;
  certainty?: string;
  location?: string;
  netns?: number;
  count?: number;
  flow?: { dport?: number };
  probes?: Probe[];
  [k: string]: unknown;
}

export interface Stream {
  child: ChildProcess;
  lines: Line[];
  err: string;
  exited: boolean;
  /** true once `pred` holds for the lines so far; false after `ms` or when the stream ended */
  until(pred: (lines: Line[]) => boolean, ms: number): Promise<boolean>;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startStream(extra: string[], env: Record<string, string>): Stream {
  const child = spawn(process.execPath, [CLI, 'stream', '--stats-interval', '3600', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const waiters: Array<() => void> = [];
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
  const s: Stream = {
    child,
    lines: [],
    err: '',
    exited: false,
    until: (pred, ms) =>
      new Promise((res) => {
        const t = setTimeout(() => res(false), ms);
        const tick = () => {
          if (pred(s.lines)) {
            clearTimeout(t);
            res(true);
          } else if (s.exited) {
            clearTimeout(t);
            res(false);
          } else waiters.push(tick);
        };
        tick();
      }),
    stop: async () => {
      if (!s.exited) child.kill('SIGINT');
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000 * SLOW);
      const r = await done;
      clearTimeout(t);
      return r;
    },
  };
  child.stderr.on('data', (d: Buffer) => (s.err += d.toString()));
  createInterface({ input: child.stdout }).on('line', (l) => {
    try {
      s.lines.push(JSON.parse(l) as Line);
    } catch {
      s.err += `unparsable line: ${l}\n`;
    }
    wake();
  });
  void done.then(() => {
    s.exited = true;
    wake();
  });
  return s;
}

export const drops = (lines: Line[]): Line[] => lines.filter((l) => l.type === 'drop');
export const sum = (ds: Line[]): number => ds.reduce((n, d) => n + (d.count ?? 1), 0);

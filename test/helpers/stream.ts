/**
 * Runs the real CLI (`droptrace stream`) as a child process and collects its NDJSON. Waits on
 * the `start` line (the ready signal), never on sleeps.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');

export interface Line {
  type: string;
  [k: string]: unknown;
}

export interface StreamRun {
  child: ChildProcessWithoutNullStreams;
  lines: Line[];
  /** stdout lines that were not whole JSON (a line cut at exit): tests assert none */
  bad: string[];
  stderr: () => string;
  /** resolves with the start line */
  ready: Promise<Line>;
  /** resolves when the process exited */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * resolves once `pred` holds for the lines so far: checked once per chunk of stdout (not per
   * line, which is quadratic under a flood and slows this reader into lost.stdout)
   */
  until(pred: (lines: Line[]) => boolean, timeoutMs?: number): Promise<void>;
  /** SIGINT, then wait for exit */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startStream(args: string[]): StreamRun {
  const child = spawn(process.execPath, [CLI, 'stream', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: Line[] = [];
  const bad: string[] = [];
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const waiters: Array<() => void> = [];
  const rl = createInterface({ input: child.stdout });
  let resolveReady: (l: Line) => void;
  let rejectReady: (e: Error) => void;
  const ready = new Promise<Line>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  // waiters run once per turn of the event loop, after every line readline has for it
  let woken = false;
  const wake = () => {
    if (woken) return;
    woken = true;
    setImmediate(() => {
      woken = false;
      for (const w of waiters.splice(0)) w();
    });
  };
  rl.on('line', (s) => {
    let l: Line;
    try {
      l = JSON.parse(s) as Line;
    } catch {
      bad.push(s);
      return;
    }
    lines.push(l);
    if (l.type === 'start') resolveReady(l);
    if (waiters.length) wake();
  });
  let closed = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    // 'close', not 'exit': by then every line of stdout has been read
    child.on('close', (code, signal) => {
      closed = true;
      rejectReady(new Error(`droptrace stream exited (${code ?? signal}) before its start line: ${err.trim()}`));
      for (const w of waiters.splice(0)) w();
      res({ code, signal });
    });
  });
  const until = (pred: (l: Line[]) => boolean, timeoutMs = 10_000) =>
    new Promise<void>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`timed out waiting; ${lines.length} lines so far; stderr: ${err.trim()}`)), timeoutMs);
      const check = () => {
        if (pred(lines)) {
          clearTimeout(t);
          res();
        } else if (closed) {
          clearTimeout(t);
          rej(new Error(`stream exited before the condition held; stderr: ${err.trim()}`));
        } else waiters.push(check);
      };
      check();
    });
  const stop = async (signal: NodeJS.Signals = 'SIGINT') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  return { child, lines, bad, stderr: () => err, ready, exited, until, stop };
}

export const drops = (lines: Line[]) => lines.filter((l) => l.type === 'drop');
export const sumCount = (lines: Line[]) => lines.reduce((n, l) => n + (l.count as number), 0);

/**
 * What the bench must put back whatever happens (error, Ctrl-C, SIGTERM): its child processes,
 * the namespace pair, kernel.bpf_stats_enabled and its temporary directory. Synchronous and
 * idempotent, so `exit` and signal handlers can run it.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import type { NsPair } from '../src/lab/pair.js';
import { BPF_STATS, say } from './proc.js';

export const state: { tmp: string | null; pair: NsPair | null; statsPrev: string | null; children: Set<ChildProcess>; keep: boolean } = {
  tmp: null,
  pair: null,
  statsPrev: null,
  children: new Set(),
  keep: false,
};

/** Kills our children, deletes the namespaces, restores kernel.bpf_stats_enabled; each once. */
export function cleanup(): void {
  for (const c of state.children) {
    try {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  state.pair?.destroy();
  state.pair = null;
  if (state.statsPrev !== null) {
    try {
      writeFileSync(BPF_STATS, state.statsPrev);
    } catch (e) {
      say(`could not restore kernel.bpf_stats_enabled to ${state.statsPrev.trim()}: ${(e as Error).message}`);
    }
    state.statsPrev = null;
  }
  if (state.tmp && !state.keep) rmSync(state.tmp, { recursive: true, force: true });
  else if (state.tmp) say(`kept ${state.tmp}`);
  state.tmp = null;
}

export function installCleanup(): void {
  process.on('exit', cleanup);
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(s, () => {
      say(`${s}: cleaning up`);
      cleanup();
      process.exit(130);
    });
  }
}

export function track<T extends ChildProcess>(child: T): T {
  state.children.add(child);
  child.on('exit', () => state.children.delete(child));
  return child;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export function exited(child: ChildProcess): Promise<Exit> {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) res({ code: child.exitCode, signal: child.signalCode });
    else child.on('exit', (code, signal) => res({ code, signal }));
  });
}

export async function stopChild(child: ChildProcess, what: string, timeoutMs = 30_000): Promise<Exit> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  const t = setTimeout(() => {
    say(`${what} did not stop within ${timeoutMs / 1000} s after SIGINT: killing it`);
    child.kill('SIGKILL');
  }, timeoutMs);
  const r = await exited(child);
  clearTimeout(t);
  return r;
}

/** Small helpers of the kernel-matrix exercise, and where it runs (natively or in a qemu guest). */
import { execFileSync } from 'node:child_process';
import type { ExecFileSyncOptions } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { senderCommand } from '../src/lab/senders.js';
import type { SenderName } from '../src/lab/senders.js';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');
export const IN_VM = process.env.DT_VM === '1';
export const SLOW = IN_VM ? 4 : 1; // software-emulated guests are several times slower

const t0 = Date.now();
export const startedAt = t0;
export const log = (s: string): void => {
  process.stderr.write(`exercise [${release()} +${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}\n`);
};
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function sh(cmd: string, argv: string[], o: ExecFileSyncOptions = {}): string {
  return execFileSync(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'], ...o, encoding: 'utf8' }) as string;
}
export const inNs = (ns: string, cmd: string, argv: string[], o?: ExecFileSyncOptions): string => sh('ip', ['netns', 'exec', ns, cmd, ...argv], o);

export const tryWrite = (path: string, value: string | number): boolean => {
  try {
    writeFileSync(path, String(value));
    return true;
  } catch {
    return false;
  }
};
export function readOr(path: string): string | null;
export function readOr(path: string, dflt: string): string;
export function readOr(path: string, dflt: string | null = null): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return dflt;
  }
}

/** A python3 sender (src/lab/senders/), stdlib only: it starts faster than node in a slow guest. */
export const py = (ns: string, sender: SenderName, argv: Array<string | number>): string => {
  const [python, args] = senderCommand(sender, argv);
  return inNs(ns, python, args);
};

/** The first line of what a failed command said (its stderr, else its message). */
export const firstErr = (e: unknown): string => String((e as { stderr?: unknown }).stderr || (e as Error).message).trim().split('\n')[0] ?? '';

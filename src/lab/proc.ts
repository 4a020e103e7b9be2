/**
 * What a lab run reads from the kernel (/proc/sys, /proc/net counters) and how it runs a
 * command: small functions the scenarios and the session share.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { DroptraceError } from '../errors.js';

export function sysctlPath(key: string): string {
  return `/proc/sys/${key.replaceAll('.', '/')}`;
}

export function readSysctl(key: string): string {
  return readFileSync(sysctlPath(key), 'utf8').trim();
}

/** Sum of one column over the per-CPU rows of a /proc/net/stat file (hex values). */
export function sumStatColumn(text: string, column: string): number {
  const [head, ...rows] = text.trim().split('\n');
  const i = (head ?? '').trim().split(/\s+/).indexOf(column);
  if (i < 0) return 0;
  return rows.reduce((sum, r) => sum + parseInt(r.trim().split(/\s+/)[i] ?? '0', 16), 0);
}

/** One counter of /proc/net/netstat or /proc/net/snmp (`TcpExt` + `IPReversePathFilter`). */
export function netstatCounter(text: string, group: string, name: string): number {
  const lines = text.split('\n').filter((l) => l.startsWith(`${group}:`));
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const keys = lines[i]!.split(/\s+/).slice(1);
    const values = lines[i + 1]!.split(/\s+/).slice(1);
    const k = keys.indexOf(name);
    if (k >= 0) return Number(values[k] ?? 0);
  }
  return 0;
}

export function firstLine(s: string): string {
  return s.split('\n').find((l) => l.trim() !== '')?.trim() ?? '';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Run a command to completion; a failure is one line naming the command and its stderr. */
export function exec(cmd: string, args: string[], timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const why = firstLine(stderr) || (err as NodeJS.ErrnoException).code || err.message;
      reject(new DroptraceError('E_LAB_COMMAND', 'runtime', `lab: ${cmd} ${args.join(' ')} failed: ${why}`));
    });
  });
}


/** Which capabilities this process has, from /proc/self/status (no libcap needed). */
import { readFileSync } from 'node:fs';

export const CAP = { SYS_ADMIN: 21, NET_ADMIN: 12, SYS_PTRACE: 19, PERFMON: 38, BPF: 39, SYSLOG: 34 } as const;

export function effectiveCaps(status = readFileSync('/proc/self/status', 'utf8')): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m ? BigInt('0x' + m[1]) : 0n;
}

const has = (caps: bigint, cap: number) => (caps & (1n << BigInt(cap))) !== 0n;

/**
 * Capabilities missing for loading and attaching tracing programs: CAP_BPF + CAP_PERFMON
 * (5.8+), or CAP_SYS_ADMIN, which implies both.
 */
export function missingTracingCaps(caps: bigint): string[] {
  if (has(caps, CAP.SYS_ADMIN)) return [];
  const missing: string[] = [];
  if (!has(caps, CAP.BPF)) missing.push('CAP_BPF');
  if (!has(caps, CAP.PERFMON)) missing.push('CAP_PERFMON');
  return missing;
}

/**
 * Which capabilities this process has, from /proc/self/status (no libcap needed), and whether
 * droptrace can work here at all: one line naming what is missing (cannotWork).
 */
import { readFileSync } from 'node:fs';
import { DroptraceError } from '../errors.js';

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

/** The oldest kernel droptrace runs on (README, "Kernel requirements"). */
export const MIN_KERNEL = '5.10';

/** What droptrace cannot work without, as found here (or injected: tests, DROPTRACE_ASSUME_MISSING). */
export interface KernelNeeds {
  caps: bigint;
  /** /sys/kernel/btf/vmlinux: CO-RE and tp_btf need the kernel's own BTF */
  btf: boolean;
  /** BPF_MAP_TYPE_RINGBUF loads (Linux 5.8+); null: not probed (no permissions) or the probe failed */
  ringbuf: boolean | null;
}

export const ASSUMABLE = ['btf', 'ringbuf', 'cap_bpf', 'cap_perfmon'] as const;
export type Assumable = (typeof ASSUMABLE)[number];

/**
 * DROPTRACE_ASSUME_MISSING=btf,ringbuf,cap_bpf,cap_perfmon: behave as on a machine that lacks
 * them (a cap_ also drops CAP_SYS_ADMIN, which implies both), so the refusal of a kernel that
 * cannot work is tested without booting one. Only ever takes something away.
 */
export function assumedMissing(v = process.env.DROPTRACE_ASSUME_MISSING): Set<Assumable> {
  const out = new Set<Assumable>();
  if (!v) return out;
  for (const w of v.split(',').map((s) => s.trim())) {
    if (!(ASSUMABLE as readonly string[]).includes(w)) {
      throw new DroptraceError('E_USAGE', 'usage', `bad DROPTRACE_ASSUME_MISSING entry "${w}": expected some of ${ASSUMABLE.join(', ')}`);
    }
    out.add(w as Assumable);
  }
  return out;
}

export function withAssumed(n: KernelNeeds, missing: ReadonlySet<Assumable>): KernelNeeds {
  let caps = n.caps;
  const drop = (cap: number) => (caps &= ~(1n << BigInt(cap)));
  if (missing.has('cap_bpf')) [CAP.BPF, CAP.SYS_ADMIN].forEach(drop);
  if (missing.has('cap_perfmon')) [CAP.PERFMON, CAP.SYS_ADMIN].forEach(drop);
  return { caps, btf: n.btf && !missing.has('btf'), ringbuf: missing.has('ringbuf') ? false : n.ringbuf };
}

/**
 * Why droptrace cannot work here, in one line that names what is missing and the kernel it
 * needs, or null; the same line from `check`, `stream` and `top`. Missing capabilities alone
 * are not about the kernel: that line (E_PERM) says what to grant.
 */
export function cannotWork(n: KernelNeeds): DroptraceError | null {
  const caps = missingTracingCaps(n.caps);
  const hint = caps.length ? { hint: 'run as root, or grant CAP_BPF and CAP_PERFMON' } : {};
  const kernel: string[] = [];
  if (!n.btf) kernel.push('kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF=y)');
  if (n.ringbuf === false) kernel.push('the BPF ring buffer (Linux 5.8+)');
  if (kernel.length === 0) {
    return caps.length ? new DroptraceError('E_PERM', 'permissions', `missing capabilities ${caps.join(', ')}: droptrace loads BPF programs`, hint) : null;
  }
  if (caps.length) kernel.push(`capabilities ${caps.join(', ')}`);
  return new DroptraceError(!n.btf ? 'E_NO_BTF' : 'E_NO_RINGBUF', 'kernel', `cannot work on this kernel: missing ${kernel.join(', ')}: droptrace needs Linux ${MIN_KERNEL} or newer, built with BTF`, hint);
}

/**
 * The needs of this machine: capabilities, then BTF, then the ring buffer, probed by the addon
 * only when the capabilities to load a map are there. `ringbuf` is the addon's probe.
 */
export function kernelNeeds(o: { caps: bigint; exists: (path: string) => boolean; ringbuf: () => boolean | null; missing?: ReadonlySet<Assumable> }): KernelNeeds {
  const missing = o.missing ?? new Set<Assumable>();
  const caps = withAssumed({ caps: o.caps, btf: true, ringbuf: null }, missing).caps;
  const probe = missingTracingCaps(caps).length === 0 && !missing.has('ringbuf');
  return withAssumed({ caps: o.caps, btf: o.exists('/sys/kernel/btf/vmlinux'), ringbuf: probe ? o.ringbuf() : null }, missing);
}

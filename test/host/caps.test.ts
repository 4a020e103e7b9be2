/**
 * Kernels and processes droptrace cannot work on (src/host/caps.ts): one line naming what is
 * missing and the kernel it needs, from injected capabilities, BTF and ring-buffer probes.
 */
import { describe, expect, it } from 'vitest';
import { CAP, assumedMissing, cannotWork, kernelNeeds, withAssumed } from '../../src/host/caps.js';

const bit = (c: number) => 1n << BigInt(c);
const ROOT = (1n << 41n) - 1n;
const BPF_PERFMON = bit(CAP.BPF) | bit(CAP.PERFMON);
const line = (n: Parameters<typeof cannotWork>[0]) => {
  const e = cannotWork(n);
  return e && [e.code, e.stage, e.exitCode, e.line()];
};

describe('cannotWork', () => {
  it('nothing missing: null, with root or with CAP_BPF + CAP_PERFMON alone', () => {
    expect(cannotWork({ caps: ROOT, btf: true, ringbuf: true })).toBeNull();
    expect(cannotWork({ caps: BPF_PERFMON, btf: true, ringbuf: true })).toBeNull();
    expect(cannotWork({ caps: bit(CAP.SYS_ADMIN), btf: true, ringbuf: null })).toBeNull();
  });

  it('a kernel without BTF, or without the ring buffer (before 5.8): what is missing and the kernel needed', () => {
    expect(line({ caps: ROOT, btf: false, ringbuf: true })).toEqual([
      'E_NO_BTF',
      'kernel',
      1,
      'cannot work on this kernel: missing kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF=y): droptrace needs Linux 5.10 or newer, built with BTF',
    ]);
    expect(line({ caps: ROOT, btf: true, ringbuf: false })).toEqual([
      'E_NO_RINGBUF',
      'kernel',
      1,
      'cannot work on this kernel: missing the BPF ring buffer (Linux 5.8+): droptrace needs Linux 5.10 or newer, built with BTF',
    ]);
    // a 5.4 kernel as non-root: all of it, in one line
    expect(line({ caps: 0n, btf: false, ringbuf: false })).toEqual([
      'E_NO_BTF',
      'kernel',
      1,
      'cannot work on this kernel: missing kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF=y), the BPF ring buffer (Linux 5.8+), capabilities CAP_BPF, CAP_PERFMON: droptrace needs Linux 5.10 or newer, built with BTF (run as root, or grant CAP_BPF and CAP_PERFMON)',
    ]);
  });

  it('missing capabilities alone: the line says what to grant (unchanged from before)', () => {
    expect(line({ caps: bit(CAP.PERFMON), btf: true, ringbuf: null })).toEqual([
      'E_PERM',
      'permissions',
      1,
      'missing capabilities CAP_BPF: droptrace loads BPF programs (run as root, or grant CAP_BPF and CAP_PERFMON)',
    ]);
  });
});

describe('kernelNeeds', () => {
  it('probes the ring buffer only with the capabilities to load a map', () => {
    let probes = 0;
    const ringbuf = () => (probes++, true);
    expect(kernelNeeds({ caps: ROOT, exists: () => true, ringbuf })).toEqual({ caps: ROOT, btf: true, ringbuf: true });
    expect(kernelNeeds({ caps: 0n, exists: () => false, ringbuf })).toEqual({ caps: 0n, btf: false, ringbuf: null });
    expect(probes).toBe(1);
  });

  it('DROPTRACE_ASSUME_MISSING takes away, never adds', () => {
    expect([...assumedMissing('btf, ringbuf,cap_bpf')]).toEqual(['btf', 'ringbuf', 'cap_bpf']);
    expect(assumedMissing(undefined).size).toBe(0);
    expect(() => assumedMissing('btf,kprobes')).toThrow('bad DROPTRACE_ASSUME_MISSING entry "kprobes": expected some of btf, ringbuf, cap_bpf, cap_perfmon');
    const n = withAssumed({ caps: ROOT, btf: true, ringbuf: true }, assumedMissing('cap_perfmon'));
    expect([n.caps & bit(CAP.PERFMON), n.caps & bit(CAP.SYS_ADMIN), n.caps & bit(CAP.BPF)]).toEqual([0n, 0n, bit(CAP.BPF)]);
    expect(withAssumed({ caps: 0n, btf: false, ringbuf: false }, new Set())).toEqual({ caps: 0n, btf: false, ringbuf: false });
    let probed = false;
    const needs = kernelNeeds({ caps: ROOT, exists: () => true, ringbuf: () => (probed = true), missing: assumedMissing('ringbuf') });
    expect([needs.ringbuf, probed]).toEqual([false, false]);
  });
});

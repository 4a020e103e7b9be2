/**
 * `droptrace check`: can droptrace trace drops here, and if not, why — each probe tried for
 * real (load + attach + detach), plus the kernel features and permissions behind it.
 */
import { existsSync } from 'node:fs';
import { assumedMissing, CAP, cannotWork, kernelNeeds, missingTracingCaps } from './host/caps.js';
import type { Assumable } from './host/caps.js';
import { DroptraceError } from './errors.js';
import { HOOKS } from './native/binding.js';
import type { NativeBinding, ProbeReport } from './native/binding.js';
import { formatMapMemory, mapMemory, possibleCpus } from './native/map-memory.js';
import type { MapMemory } from './native/map-memory.js';

export interface CheckItem {
  name: string;
  ok: boolean;
  detail: string;
  /** droptrace works without it (with less detail) */
  optional?: boolean;
}

export interface CheckReport {
  kernel: string;
  features: CheckItem[];
  probes: ProbeReport[];
  /** what the loaded maps cost here, read back from the kernel (absent when nothing loaded) */
  maps?: MapMemory;
  ready: boolean;
  verdict: string;
}

export interface CheckDeps {
  native: () => NativeBinding;
  caps: bigint;
  kernel: string;
  exists?: (path: string) => boolean;
  /** possible CPUs (default /sys/devices/system/cpu/possible) */
  cpus?: () => number;
  /** taken as missing whatever is there (default: DROPTRACE_ASSUME_MISSING, src/host/caps.ts) */
  assumeMissing?: ReadonlySet<Assumable>;
}

const NO_REASONS =
  'missing (kernel before 5.17): drops are classified by the place the kernel freed them and the hooks below, ' +
  "each with a certainty (exact, likely, possible); `reason` is null, and drops the place does not explain are 'not_specified'";

export function runCheck(d: CheckDeps): CheckReport {
  const exists = d.exists ?? existsSync;
  let native: NativeBinding | null = null;
  let addonError: string | null = null;
  try {
    native = d.native();
  } catch (e) {
    addonError = e instanceof DroptraceError ? e.line() : String(e);
  }
  let ringbufErrno: number | undefined;
  const needs = kernelNeeds({
    caps: d.caps,
    exists,
    ringbuf: () => {
      if (!native) return null;
      const f = native.kernelFeatures();
      ringbufErrno = f.ringbufErrno;
      return f.ringbuf;
    },
    missing: d.assumeMissing ?? assumedMissing(),
  });
  const cannot = cannotWork(needs);
  const features: CheckItem[] = [];
  const missing = missingTracingCaps(needs.caps);
  features.push({
    name: 'permissions',
    ok: missing.length === 0,
    detail: missing.length ? `missing ${missing.join(', ')}: run as root or grant them` : 'CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)',
  });
  // Not needed to trace, but without them drops lose detail: say so before the user wonders.
  for (const [name, cap, why] of [
    ['cap_syslog', CAP.SYSLOG, 'kernel function names of drop locations (kallsyms addresses)'],
    ['cap_sys_ptrace', CAP.SYS_PTRACE, 'pod discovery through /proc/<pid>/ns/net and cgroups'],
  ] as const) {
    const ok = (d.caps & (1n << BigInt(cap))) !== 0n;
    features.push({ name, ok, optional: true, detail: ok ? `present: ${why}` : `missing: no ${why}` });
  }
  const btf = needs.btf;
  features.push({
    name: 'btf',
    ok: btf,
    detail: btf ? '/sys/kernel/btf/vmlinux' : 'no /sys/kernel/btf/vmlinux: needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (5.10+)',
  });
  features.push(
    needs.ringbuf === null
      ? { name: 'ring buffer', ok: false, optional: true, detail: ringbufErrno ? `could not be probed (errno ${ringbufErrno})` : 'not probed: missing permissions or addon' }
      : { name: 'ring buffer', ok: needs.ringbuf, detail: needs.ringbuf ? 'BPF_MAP_TYPE_RINGBUF' : 'no BPF_MAP_TYPE_RINGBUF: needs kernel 5.8+' },
  );
  if (addonError !== null) features.push({ name: 'addon', ok: false, detail: addonError });

  if (native && btf) {
    let reasons: Array<[string, number]> | null = null;
    try {
      reasons = native.btfEnum('skb_drop_reason');
    } catch (e) {
      features.push({ name: 'drop reasons', ok: false, detail: `reading BTF failed: ${(e as Error).message}` });
    }
    if (reasons !== undefined) {
      // before 5.17: drops are still traced, classified by their place (README, kernel requirements)
      features.push({
        name: 'drop reasons',
        ok: reasons !== null,
        ...(reasons ? {} : { optional: true }),
        detail: reasons ? `enum skb_drop_reason has ${reasons.length} values` : NO_REASONS,
      });
    }
  }
  const kprobes = exists('/sys/bus/event_source/devices/kprobe');
  features.push({
    name: 'kprobes',
    ok: kprobes,
    optional: true,
    detail: kprobes ? 'available' : 'not available (kernel built without CONFIG_KPROBES): tracepoints only',
  });

  const probes: ProbeReport[] = [];
  let maps: MapMemory | undefined;
  if (native && !cannot) {
    for (const hook of HOOKS) {
      // the optional hooks are tried once, next to the first drop hook
      const t = native.createTracer({ only: hook, extras: hook === HOOKS[0] });
      try {
        // check attaches nothing for long: a probe waiting for its module is said as such
        probes.push(...t.attach().map((p) => (p.code === 'E_MODULE_NOT_LOADED' ? { ...p, why: `${p.why ?? ''} (stream and top attach it when it loads)` } : p)));
        const info = maps ? [] : t.mapInfo();
        if (info.length) maps = mapMemory(info, (d.cpus ?? possibleCpus)());
      } finally {
        t.close();
      }
    }
  } else {
    for (const hook of HOOKS) {
      const why = !native ? 'addon not loaded' : missing.length && cannot?.code === 'E_PERM' ? 'missing permissions' : 'this kernel cannot work (see below)';
      probes.push({ probe: 'kfree_skb', hook, state: 'unavailable', why: `not tried: ${why}` });
    }
  }
  // an optional hook (neigh_create) attaching traces no drop: only a drop hook makes it ready
  const first = probes.find((p) => p.state === 'attached' && (HOOKS as readonly string[]).includes(p.hook));
  const ready = first !== undefined;
  const noReasons = features.some((f) => f.name === 'drop reasons' && !f.ok && f.detail === NO_REASONS);
  return {
    kernel: d.kernel,
    features,
    probes,
    ...(maps ? { maps } : {}),
    ready,
    verdict: ready
      ? `ready: droptrace will use ${first.hook}${noReasons ? ', without drop reasons (kinds from the drop location and hooks)' : ''}`
      : `not ready: ${cannot ? cannot.line() : 'no drop probe can attach on this machine'}`,
  };
}

export function formatCheck(r: CheckReport): string {
  const lines = [`droptrace check: kernel ${r.kernel}`];
  for (const f of r.features) lines.push(`  ${f.ok ? 'ok  ' : f.optional ? 'no  ' : 'FAIL'}  ${f.name.padEnd(14)} ${f.detail}`);
  lines.push('probes:');
  for (const p of r.probes) {
    const state = p.state === 'attached' ? 'attached' : `${p.state}: ${p.why ?? ''}`;
    lines.push(`  ${p.probe.padEnd(12)} ${p.hook.padEnd(32)} ${state}`);
  }
  if (r.maps) lines.push(...formatMapMemory(r.maps));
  lines.push(r.verdict);
  return lines.join('\n');
}

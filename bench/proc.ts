/** What the bench reads about processes and the machine: /proc, bpftool, tracefs. */
import { execFileSync, spawnSync } from 'node:child_process';
import type { ExecFileSyncOptions } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';

export const CLK_TCK = 100; // USER_HZ: /proc/<pid>/stat times are in 1/100 s on Linux
export const BPF_STATS = '/proc/sys/kernel/bpf_stats_enabled';
export const KFREE_FORMAT = '/sys/kernel/tracing/events/skb/kfree_skb/format';

export function sh(cmd: string, args: string[], opts: ExecFileSyncOptions = {}): string {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts, encoding: 'utf8' }) as string;
}
export const inNs = (ns: string, cmd: string, args: string[]): string => sh('ip', ['netns', 'exec', ns, cmd, ...args]);
export const have = (cmd: string): boolean =>
  spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } }).status === 0;
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const round = (x: number | null | undefined, d = 1): number | null => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);
export const say = (s: string): void => {
  process.stderr.write(`bench: ${s}\n`);
};

/** utime + stime of a process, in seconds. */
export function procCpu(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields after "(comm) ": state is f[0]; utime is field 14 of the full line → f[11]
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

export function procStatus(pid: number, field: string): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** busy and total jiffies of all CPUs (/proc/stat). */
export function systemCpu(): { busy: number; total: number } {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/** ids of the BPF programs a process holds (its prog and link fds: fdinfo `prog_id:`). */
export function progIdsOf(pid: number): Set<number> {
  const ids = new Set<number>();
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fdinfo`);
  } catch {
    return ids;
  }
  for (const fd of fds) {
    try {
      const m = /^prog_id:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      // fd closed meanwhile
    }
  }
  return ids;
}

export interface BpfProgram {
  id: number;
  name: string;
  type: string;
  runCnt: number;
  runTimeNs: number;
}

/** Every loaded BPF program with its run statistics, by id. */
export function bpfPrograms(): Map<number, BpfProgram> {
  const out = new Map<number, BpfProgram>();
  const progs = JSON.parse(sh('bpftool', ['prog', 'show', '--json'])) as Array<{ id: number; name?: string; type: string; run_cnt?: number; run_time_ns?: number }>;
  for (const p of progs) out.set(p.id, { id: p.id, name: p.name ?? '', type: p.type, runCnt: p.run_cnt ?? 0, runTimeNs: p.run_time_ns ?? 0 });
  return out;
}

/** `SKB_DROP_REASON_NETFILTER_DROP`'s number on this kernel, from the tracepoint's format. */
export function netfilterDropNumber(): number {
  const m = /\{\s*(\d+),\s*"NETFILTER_DROP"\s*\}/.exec(readFileSync(KFREE_FORMAT, 'utf8'));
  if (!m) throw new Error(`no NETFILTER_DROP in ${KFREE_FORMAT}`);
  return Number(m[1]);
}

export interface Machine {
  nproc: number;
  cpu_model: string;
  kernel: string;
  node: string;
  bpftrace: string | null;
  memory_gb: number | null;
  loadavg_1m_at_start: number | null;
}

export function machine(): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  let bpftrace: string | null = null;
  try {
    bpftrace = sh('bpftrace', ['--version']).trim();
  } catch {
    // reported as missing
  }
  return {
    nproc: cpus().length,
    cpu_model: model,
    kernel: release(),
    node: process.version,
    bpftrace,
    memory_gb: round(Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1048576, 1),
    loadavg_1m_at_start: round(loadavg()[0], 2),
  };
}

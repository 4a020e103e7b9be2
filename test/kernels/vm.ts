/**
 * Another kernel under qemu, from tests: a thin wrapper over kernels/run-in-vm.sh, which does
 * the work (initramfs, 9p root, bounds, cleanup) so the same harness runs from a shell.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const RUN_IN_VM = join(ROOT, 'kernels', 'run-in-vm.sh');
export const FETCH = join(ROOT, 'kernels', 'fetch.sh');

export interface VmRun {
  stdout: string;
  stderr: string;
  /** the command's exit code; 124 timed out, 125 the harness failed */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** wall time of the whole run: boot, command, power-off */
  ms: number;
  /** pid of the run-in-vm.sh process (its temporary directory is /tmp/droptrace-vm.<pid>-*) */
  pid: number;
}

export interface VmOptions {
  kernel?: string;
  timeoutS?: number;
  /** host directory that receives what the guest wrote to $DT_VM_OUT */
  out?: string;
  /** called with the harness process once it runs (to interrupt it in tests) */
  onSpawn?: (pid: number) => void;
}

/** Runs `command` (argv) in a guest; resolves when the harness exited, whatever the outcome. */
export function runInVm(command: string[], o: VmOptions = {}): Promise<VmRun> {
  const args: string[] = [];
  if (o.kernel) args.push('--kernel', o.kernel);
  if (o.timeoutS) args.push('--timeout', String(o.timeoutS));
  if (o.out) args.push('--out', o.out);
  const t0 = Date.now();
  const child = spawn('bash', [RUN_IN_VM, ...args, '--', ...command], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  o.onSpawn?.(child.pid!);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((res) => {
    child.on('close', (code, signal) => res({ stdout, stderr, code, signal, ms: Date.now() - t0, pid: child.pid! }));
  });
}

export interface Availability {
  ok: boolean;
  why: string;
  /** the guest kernel that runs when none is named: Debian's 6.1 */
  kernel?: string;
  /** a kernel without drop reasons, Debian's 5.10; else why not */
  noReasons?: string;
  noReasonsWhy?: string;
}

/** A kernel of the cache (kernels/fetch.sh: a version or a series), fetched when missing; or why not. */
export function cachedKernel(name: string): { path?: string; why: string } {
  const r = spawnSync('bash', [FETCH, name], { encoding: 'utf8', timeout: 900_000 });
  const path = r.stdout.trim().split('\n').at(-1);
  if (r.status === 0 && path) return { path, why: '' };
  return { why: `kernels/fetch.sh ${name} failed: ${(r.stderr || r.error?.message || '').trim().split('\n').at(-1)}` };
}

/** The newest installed kernel that is not the running one, with its modules. */
export function guestKernel(): string | undefined {
  const running = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  const found = existsSync('/boot')
    ? readdirSync('/boot')
        .filter((f) => f.startsWith('vmlinuz-'))
        .map((f) => f.slice('vmlinuz-'.length))
        .filter((v) => v !== running && existsSync(`/lib/modules/${v}`))
        .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
    : [];
  const v = found.at(-1);
  return v ? `/boot/vmlinuz-${v}` : undefined;
}

/**
 * Can a guest run here? Installs what is missing (Debian packages, through run-in-vm.sh
 * --install; the kernels into the cache, through kernels/fetch.sh) when root; otherwise says why
 * not, so tests can skip with that reason.
 */
export function vmAvailability(): Availability {
  if (process.getuid?.() !== 0) return { ok: false, why: 'needs root (qemu with the root filesystem shared, BPF in the guest)' };
  if (process.arch !== 'x64') return { ok: false, why: `the harness boots x86-64 kernels; this is ${process.arch}` };
  const r = spawnSync('bash', [RUN_IN_VM, '--install'], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) return { ok: false, why: `cannot install qemu, a kernel and busybox: ${(r.stderr || r.error?.message || '').trim().split('\n').at(-1)}` };
  // 6.1 from the cache, else from /boot (a machine that cannot reach Debian's archive)
  const k61 = cachedKernel('6.1');
  const kernel = k61.path ?? guestKernel();
  if (!kernel) return { ok: false, why: `${k61.why}; and no guest kernel in /boot besides the running one` };
  const k510 = cachedKernel('5.10');
  return { ok: true, why: '', kernel, noReasons: k510.path, noReasonsWhy: k510.why };
}

/** Processes whose command line names the temporary directory of harness run `pid`. */
export function leftovers(pid: number): string[] {
  const mark = `/tmp/droptrace-vm.${pid}-`;
  const out: string[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(mark)) out.push(`${p}: ${cmd.slice(0, 120)}`);
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/** Temporary directories a harness run `pid` left in /tmp. */
export function leftoverDirs(pid: number): string[] {
  return readdirSync('/tmp').filter((d) => d.startsWith(`droptrace-vm.${pid}-`));
}

export function scratchDir(): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), 'droptrace-kernels-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

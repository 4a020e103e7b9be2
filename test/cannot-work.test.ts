/**
 * A machine droptrace cannot work on, through the real CLI: `check`, `stream` and `top` say the
 * same one line (what is missing, the kernel needed), exit 1, no stack trace. The missing parts
 * are injected with DROPTRACE_ASSUME_MISSING, which only ever takes away: so this runs on any
 * kernel, as any user. `top` needs a terminal: it runs under script(1) when that is there.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLI } from './helpers/stream.js';

const ALL = 'btf,ringbuf,cap_bpf,cap_perfmon';
const LINE =
  'cannot work on this kernel: missing kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF=y), the BPF ring buffer (Linux 5.8+), capabilities CAP_BPF, CAP_PERFMON: droptrace needs Linux 5.10 or newer, built with BTF (run as root, or grant CAP_BPF and CAP_PERFMON)';

const run = (args: string[], missing: string) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, DROPTRACE_ASSUME_MISSING: missing }, timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const script = ['/usr/bin/script', '/bin/script'].find((p) => existsSync(p));
if (!script) console.warn('skipping droptrace top without a kernel that works: needs script(1) for a terminal (util-linux)');

describe('a machine droptrace cannot work on', () => {
  it('stream: the one line, exit 1, nothing on stdout', () => {
    expect(run(['stream'], ALL)).toEqual({ code: 1, out: '', err: `droptrace: ${LINE}\n` });
  });

  it('check: the report, its verdict the same line, exit 1', () => {
    const r = run(['check'], ALL);
    expect(r.code).toBe(1);
    expect(r.err).toBe('');
    const lines = r.out.trimEnd().split('\n');
    expect(lines.at(-1)).toBe(`not ready: ${LINE}`);
    expect(lines.filter((l) => l.startsWith('  FAIL'))).toEqual([
      '  FAIL  permissions    missing CAP_BPF, CAP_PERFMON: run as root or grant them',
      '  FAIL  btf            no /sys/kernel/btf/vmlinux: needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (5.10+)',
      '  FAIL  ring buffer    no BPF_MAP_TYPE_RINGBUF: needs kernel 5.8+',
    ]);
    const json = JSON.parse(run(['check', '--json'], ALL).out) as { ready: boolean; verdict: string };
    expect([json.ready, json.verdict]).toEqual([false, `not ready: ${LINE}`]);
  });

  it.skipIf(!script)('top: the same line before the screen is taken, exit 1', () => {
    const r = spawnSync(script!, ['-qec', `"${process.execPath}" "${CLI}" top`, '/dev/null'], {
      encoding: 'utf8',
      env: { ...process.env, DROPTRACE_ASSUME_MISSING: ALL },
      timeout: 60_000,
    });
    expect(r.status).toBe(1);
    // script(1) hands the terminal's output back: one line, no alternate screen, no stack
    expect(r.stdout.replaceAll('\r', '')).toBe(`droptrace: ${LINE}\n`);
  });

  it('a bad DROPTRACE_ASSUME_MISSING is a usage error', () => {
    expect(run(['stream'], 'kprobes')).toEqual({ code: 2, out: '', err: 'droptrace: bad DROPTRACE_ASSUME_MISSING entry "kprobes": expected some of btf, ringbuf, cap_bpf, cap_perfmon\n' });
  });
});

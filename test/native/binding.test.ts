import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DroptraceError, fromNative, NATIVE_CODES } from '../../src/errors.js';
import { renamesFromEnv, validateTracerOptions } from '../../src/native/binding.js';
import { formatMapMemory, KEY_MAP_BUDGET_BYTES, keyMapBytes, mapBytes, mapMemory, possibleCpus } from '../../src/native/map-memory.js';

describe('tracer options', () => {
  it('reads DROPTRACE_RENAME', () => {
    expect(renamesFromEnv(undefined)).toBeUndefined();
    expect(renamesFromEnv('__neigh_create:x, ip_handle_martian_source:y')).toEqual({ __neigh_create: 'x', ip_handle_martian_source: 'y' });
    expect(() => renamesFromEnv('a=b')).toThrow(DroptraceError);
  });

  it('refuses bad values before they reach C++', () => {
    expect(() => validateTracerOptions({ ringBytes: 3000 })).toThrow('bad ring buffer size 3000 bytes');
    expect(() => validateTracerOptions({ filterNetns: -1 })).toThrow('bad netns inode');
    expect(() => validateTracerOptions({ keyBurst: 1.5 })).toThrow('bad detail limit');
    expect(() => validateTracerOptions({ detailBudget: -1 })).toThrow('bad detail budget -1: expected 0 (no budget) to 1000000 events per CPU per second');
    expect(validateTracerOptions({ keyBurst: 100, detailBudget: 1000 })).toEqual({ keyBurst: 100, detailBudget: 1000 });
    expect(() => validateTracerOptions({ targets: { 'fexit/x': 'a b' } })).toThrow('bad probe target');
    expect(validateTracerOptions({ ringBytes: 1 << 20, keyBurst: 0, extras: false })).toEqual({ ringBytes: 1 << 20, keyBurst: 0, extras: false });
    expect(() => validateTracerOptions({ backlogBytes: 1000 })).toThrow('bad backlog 1000 bytes: expected 64 KiB to 1 TiB (--backlog takes MiB)');
    expect(() => validateTracerOptions({ backlogBytes: 1.5 * 2 ** 20 + 0.5 })).toThrow('bad backlog');
    expect(validateTracerOptions({ backlogBytes: 64 << 20 })).toEqual({ backlogBytes: 64 << 20 });
    expect(() => validateTracerOptions({ stackPerKey: 1001 })).toThrow('bad --stack-per-key 1001: expected 1 to 1000 stacks per key');
    expect(() => validateTracerOptions({ stackPerKey: 2.5 })).toThrow('bad --stack-per-key');
    expect(validateTracerOptions({ stackPerKey: 4 })).toEqual({ stackPerKey: 4 });
  });
});

describe("the addon's error codes", () => {
  const f = (code: string, message: string, errno?: number) => fromNative({ code, stage: 'x', message, ...(errno === undefined ? {} : { errno }) }) as DroptraceError;

  it('become one lowercase line that says what to do next, with the stage that failed', () => {
    const load = f('E_BPF_LOAD', 'load failed: Operation not permitted (errno 1)', 1);
    expect([load.code, load.stage, load.exitCode]).toEqual(['E_BPF_LOAD', 'load', 1]);
    expect(load.line()).toBe('the kernel refused to load the bpf program: load failed: Operation not permitted (errno 1) (run as root, or grant cap_bpf and cap_perfmon)');
    expect(f('E_BPF_LOAD', 'load failed: Invalid argument (errno 22); libbpf: verifier: R1 invalid mem access', 22).line()).toBe(
      'the kernel refused to load the bpf program: load failed: Invalid argument (errno 22); libbpf: verifier: R1 invalid mem access (run droptrace check for details)',
    );
    expect(f('E_RINGBUF', 'ring_buffer__new failed: Cannot allocate memory (errno 12)', 12).line()).toBe(
      'could not set up the ring buffer reader: ring_buffer__new failed: Cannot allocate memory (errno 12) (check the memory limits (ulimit -l, the cgroup) and try a smaller --ring-size)',
    );
    expect(f('E_ALREADY_ATTACHED', 'attach called twice on one tracer').stage).toBe('state');
    for (const code of NATIVE_CODES) {
      const e = f(code, 'detail');
      expect(e.code).toBe(code);
      expect(e.line()).toMatch(/^[a-z][^\n]*detail.* \([a-z][^\n]+\)$/);
    }
    // an unknown code still carries it; anything that is not a coded failure passes through
    expect(f('E_NEW', 'detail').line()).toBe('native addon failed (E_NEW): detail (run droptrace check for details)');
    const plain = new Error('x');
    expect(fromNative(plain)).toBe(plain);
  });

  it('are all listed in the README', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
    const section = readme.split(/^## Error codes$/m)[1]?.split(/^## /m)[0] ?? '';
    const listed = [...section.matchAll(/^\| `(E_[A-Z_]+)` \|/gm)].map((m) => m[1]);
    for (const code of [...NATIVE_CODES, 'E_KSYM_MISSING', 'E_NO_KPROBES', 'E_FEXIT_REFUSED', 'E_BACKLOG']) expect(listed).toContain(code);
  });
});

describe('key map sizing', () => {
  const KEY = 52;
  const VALUE = 32;

  it('does not grow with the CPU count: the same bytes at 1, 2, 128 and 1024 CPUs, within the budget', () => {
    const at = (cpus: number) => keyMapBytes(cpus, KEY, VALUE).shared;
    // 65,536 × (48 + 56 + 32) B + 65,536 buckets × 16 B, plus 32 B of locks per CPU
    expect(at(1)).toBe(65536 * 136 + 65536 * 16 + 32);
    expect(at(128) - at(1)).toBe(127 * 32);
    expect(at(1024)).toBeLessThanOrEqual(KEY_MAP_BUDGET_BYTES);
    // what a per-CPU value cost: 256 MiB of values alone at 128 CPUs, 384 MiB at 192
    expect(keyMapBytes(128, KEY, VALUE).perCpu).toBeGreaterThan(256 * 2 ** 20);
    expect(keyMapBytes(192, KEY, VALUE).perCpu).toBeGreaterThan(384 * 2 ** 20);
  });

  it('splits what the maps cost into a fixed part and a part per CPU, and prints the formula', () => {
    const maps = [
      { name: 'key_counts', type: 'lru_hash', maxEntries: 65536, keySize: KEY, valueSize: VALUE, flags: 0, memlock: 9962368 },
      { name: 'events', type: 'ringbuf', maxEntries: 8 << 20, keySize: 0, valueSize: 0, flags: 0, memlock: 8433992 },
      { name: 'ct_baselines', type: 'percpu_array', maxEntries: 4096, keySize: 4, valueSize: 32, flags: 0, memlock: 295224 },
    ];
    const m = mapMemory(maps, 2);
    expect([m.total, m.perCpu, m.fixed]).toEqual([9962368 + 8433992 + 295224, 4096 * 32, 9962368 + 8433992 + 295224 - 2 * 4096 * 32]);
    expect(mapBytes(maps[2]!, 2)).toBe(4096 * (8 + 2 * 32));
    expect(formatMapMemory(m)).toEqual([
      'maps: 17.8 MiB on this machine = 17.6 MiB + 128.0 KiB × 2 possible CPUs (kernel\'s memlock count)',
      '  key_counts     lru_hash        65536 × 52 B key + 32 B value        9.5 MiB',
      '  events         ringbuf         8.0 MiB ring                         8.0 MiB',
      '  ct_baselines   percpu_array    4096 × 4 B key + 32 B value per CPU  0.3 MiB',
      '  key_counts: 65536 × (48 + 56 + 32) B + 16 B × buckets, shared by all CPUs: the same on any machine (budget 16.0 MiB)',
    ]);
    expect(possibleCpus('0-127\n')).toBe(128);
    expect(possibleCpus('0,2-3')).toBe(3);
  });
});

describe('a kernel without what droptrace needs', () => {
  it('says BTF is missing and which kernel it needs', async () => {
    const { kernelReasons } = await import('../../src/pipeline/live.js');
    expect(() => kernelReasons('/nonexistent/vmlinux')).toThrow(
      'this kernel has no BTF (/nonexistent/vmlinux is missing)',
    );
    try {
      kernelReasons('/nonexistent/vmlinux');
    } catch (e) {
      expect((e as DroptraceError).line()).toBe(
        'this kernel has no BTF (/nonexistent/vmlinux is missing) (droptrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y, Linux 5.8 or newer)',
      );
      expect((e as DroptraceError).exitCode).toBe(1);
    }
  });
});

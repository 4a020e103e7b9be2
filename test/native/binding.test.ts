import { describe, expect, it } from 'vitest';
import { DroptraceError } from '../../src/errors.js';
import { renamesFromEnv, validateTracerOptions } from '../../src/native/binding.js';

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
    expect(() => validateTracerOptions({ targets: { 'fexit/x': 'a b' } })).toThrow('bad probe target');
    expect(validateTracerOptions({ ringBytes: 1 << 20, keyBurst: 0, extras: false })).toEqual({ ringBytes: 1 << 20, keyBurst: 0, extras: false });
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

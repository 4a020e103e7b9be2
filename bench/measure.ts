/**
 * One run of the bench: a tracer (or none) attached, two floods (bpf_stats on, then off as on
 * a node), and every figure of the run measured exactly or from the kernel's own counters;
 * then the userspace-only benchmark, each measurement a process of its own.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exited, track } from './cleanup.js';
import { flood, ROOT, ruleCount } from './flood.js';
import type { BenchNs } from './flood.js';
import { DROPTRACE_RUNS, MANY_BASE_PORT, RUN_NAMES } from './options.js';
import type { BenchOptions } from './options.js';
import { BPF_STATS, bpfPrograms, CLK_TCK, inNs, procCpu, procStatus, round, say, sleep, systemCpu } from './proc.js';
import { fileSinkCost, startBpftrace, startDroptrace } from './tracers.js';
import type { BpftraceOutput, DroptraceOutput, StoreSummary, Tracer } from './tracers.js';
import type { Measured, UserspaceRate, UserspaceResult, UserspaceRss } from './userspace-types.js';

/** runs 8 and 9: this rule, first in the receiver's INPUT chain, puts conntrack to work there */
const CONNTRACK_RULE = ['INPUT', '-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP'];

export interface ProgramFigures {
  id: number;
  name: string;
  type: string;
  run_cnt: number;
  run_time_ns: number;
  ns_per_run: number | null;
}

export interface RunResult {
  run: number;
  rep: number;
  name: string;
  seconds: number | null;
  sent: number;
  send_errors: number;
  /** both floods: what the tracer counted over its life */
  generated: number;
  /** the flood with bpf_stats off (production) */
  generated_off: number;
  drops_per_s: number;
  /** the flood with bpf_stats on (program figures) */
  stats_on: { seconds: number | null; generated: number; drops_per_s: number; slowdown_pct?: number | null; added_ns_per_drop?: number | null };
  generator_cpu_s: number;
  other_load_pct: number | null;
  ready_s: number | null;
  programs: ProgramFigures[];
  foreign_programs: Array<{ id: number; name: string; type: string; run_cnt: number }>;
  kernel_ns_per_event: number | null;
  tracer_cpu_pct: number | null;
  tracer_peak_rss_mb: number | null;
  counted?: number;
  exact?: boolean;
  counted_elsewhere?: number;
  kernel_drops?: number | null;
  events?: number | undefined;
  lost?: { ring_buffer: number | null; userspace: number | null; total: number };
  suppressed?: number | null;
  folded?: number | null;
  decode_errors?: number | undefined;
  stream?: { lines: number | undefined; delivered: number | undefined; folded: number | undefined; total: number };
  lost_observed?: number | null;
  lost_matches_stats?: boolean;
  stream_exact?: boolean;
  output?: { lines: number; bytes: number };
  file_sink?: ReturnType<typeof fileSinkCost> & { pct_of_tracer_cpu: number | null };
  store?: StoreSummary | null;
  // filled in by the report
  slowdown_pct?: number | null;
  ns_vs_bpftrace?: number | null;
  added_ns_per_drop?: number | null;
  added_vs_bpftrace?: number | null;
  slowdown_vs_bpftrace?: number | null;
}

export async function oneRun(o: BenchOptions, run: number, rep: number, ns: BenchNs, bin: string, dir: string, nfNumber: number | null): Promise<RunResult> {
  say(`run ${run} (${RUN_NAMES[run]})${o.repeat > 1 ? `, repetition ${rep}` : ''}`);
  inNs(ns.b, 'iptables', ['-Z', 'INPUT']);
  // runs 8, 9: conntrack at work in the receiver, only for these runs (a rule using it is
  // what registers conntrack's hooks in a namespace; deleting it unregisters them)
  if (run === 8 || run === 9) inNs(ns.b, 'iptables', ['-I', ...CONNTRACK_RULE]);
  try {
    return await floodRun(o, run, rep, ns, bin, dir, nfNumber);
  } finally {
    if (run === 8 || run === 9) inNs(ns.b, 'iptables', ['-D', ...CONNTRACK_RULE]);
  }
}

type AnyTracer = { kind: 'bpftrace'; t: Tracer<BpftraceOutput> } | { kind: 'droptrace'; t: Tracer<DroptraceOutput> };

async function floodRun(o: BenchOptions, run: number, rep: number, ns: BenchNs, bin: string, dir: string, nfNumber: number | null): Promise<RunResult> {
  const attached: AnyTracer | null =
    run === 2 ? { kind: 'bpftrace', t: await startBpftrace() } : DROPTRACE_RUNS.includes(run) ? { kind: 'droptrace', t: await startDroptrace(run, ns, dir, rep) } : null;
  const tracer = attached?.t ?? null;
  const flows = run === 6 || run === 7 || run === 10 ? o.manyFlows : 1;
  const port = flows > 1 ? MANY_BASE_PORT : o.port;
  try {
    await sleep(200); // let start-up work (kallsyms, first reconcile) settle before the flood
    const progsBefore = bpfPrograms();
    const cpu0 = tracer ? procCpu(tracer.pid) : null;
    const sys0 = systemCpu();
    const gen = await flood(o, ns, bin, o.seconds, flows);
    const sys1 = systemCpu();
    const cpu1 = tracer ? procCpu(tracer.pid) : null;
    const progsAfter = bpfPrograms();
    const own = tracer ? tracer.ownProgs() : new Set<number>();
    const peakRss = tracer ? procStatus(tracer.pid, 'VmHWM') : null;
    const generatedOn = ruleCount(ns.b, port, flows);
    // The same flood again with kernel.bpf_stats_enabled=0, as a node runs: the stats add two
    // clock reads to every program run, a cost of the measurement, not of the tracer. The
    // throughput figures (drops/s, slowdown, added ns/drop) come from this flood; the program
    // figures (ns/event) can only come from the first.
    writeFileSync(BPF_STATS, '0\n');
    let genOff;
    try {
      genOff = await flood(o, ns, bin, o.seconds, flows);
    } finally {
      writeFileSync(BPF_STATS, '1\n');
    }
    const generated = ruleCount(ns.b, port, flows);
    const generatedOff = generated - generatedOn;

    // BPF programs: ours (held by the tracer's fds) and anyone else's that ran meanwhile
    const programs: ProgramFigures[] = [];
    const foreign: RunResult['foreign_programs'] = [];
    for (const [id, after] of progsAfter) {
      const before = progsBefore.get(id);
      const runs = after.runCnt - (before?.runCnt ?? 0);
      const ns_ = after.runTimeNs - (before?.runTimeNs ?? 0);
      if (own.has(id) && tracer?.isOurs(after)) {
        programs.push({ id, name: after.name, type: after.type, run_cnt: runs, run_time_ns: ns_, ns_per_run: runs > 0 ? round(ns_ / runs, 1) : null });
      } else if (!own.has(id) && runs > 0) foreign.push({ id, name: after.name, type: after.type, run_cnt: runs });
    }
    const ran = programs.filter((p) => p.run_cnt > 0);
    const maxRuns = Math.max(0, ...ran.map((p) => p.run_cnt));
    // every program of ours runs once per event: their costs add up
    const kernelNsPerEvent = maxRuns > 0 ? round(ran.reduce((s, p) => s + p.run_time_ns, 0) / maxRuns, 1) : null;

    const wall = gen.seconds;
    const tracerCpuS = cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null;
    const busyS = (sys1.busy - sys0.busy) / CLK_TCK;
    const otherPct = Math.max(0, ((busyS - gen.cpu_s - (tracerCpuS ?? 0)) / wall) * 100);

    const r: RunResult = {
      run,
      rep,
      name: RUN_NAMES[run] ?? String(run),
      seconds: round(genOff.seconds, 3),
      sent: gen.sent + genOff.sent,
      send_errors: gen.errors + genOff.errors,
      generated,
      generated_off: generatedOff,
      drops_per_s: Math.round(generatedOff / genOff.seconds),
      stats_on: { seconds: round(wall, 3), generated: generatedOn, drops_per_s: Math.round(generatedOn / wall) },
      generator_cpu_s: gen.cpu_s,
      other_load_pct: round(otherPct, 1),
      ready_s: tracer ? round(tracer.readyS, 2) : null,
      programs,
      foreign_programs: foreign,
      kernel_ns_per_event: kernelNsPerEvent,
      tracer_cpu_pct: tracerCpuS !== null ? round((tracerCpuS / wall) * 100, 1) : null,
      tracer_peak_rss_mb: round(peakRss, 1),
    };
    if (!attached) return r;
    if (attached.kind === 'bpftrace') {
      const res = await attached.t.stop();
      // bpftrace's program has no namespace filter: it counts NETFILTER_DROP machine-wide, so
      // drops made elsewhere meanwhile (other tests, other rules) show up as a surplus
      r.counted = (nfNumber !== null ? res.byReason[nfNumber] : undefined) ?? 0;
      r.exact = r.counted === generated;
      r.counted_elsewhere = Math.max(0, r.counted - generated);
      return r;
    }
    const res = await attached.t.stop();
    const out = res.out;
    const st = out.finalStats;
    if (!st) throw new Error(`droptrace (run ${run}) wrote no final stats line; stderr: ${res.stderr.trim()}`);
    const suppressed = st.kernel?.suppressed ?? 0;
    const lost = st.lost?.total ?? 0;
    r.counted = st.kernel?.by_reason?.NETFILTER_DROP ?? 0;
    r.kernel_drops = st.kernel?.drops ?? null;
    r.exact = r.counted === generated;
    r.events = st.events;
    r.lost = { ring_buffer: st.lost?.ring_buffer ?? null, userspace: st.lost?.userspace ?? null, total: lost };
    r.suppressed = st.kernel?.suppressed ?? null;
    r.folded = st.folded ?? null;
    r.decode_errors = st.decode_errors;
    // what the stream itself says: Σ count of drop lines, from detail events and folded
    const seen = run !== 4 ? { delivered: out.delivered, folded: out.folded, lines: out.lines } : { delivered: out.store?.delivered, folded: out.store?.folded, lines: out.store?.lines };
    r.stream = { lines: seen.lines, delivered: seen.delivered, folded: seen.folded, total: (seen.delivered ?? 0) + (seen.folded ?? 0) };
    // drops that sent no detail event and were not rate-limited on purpose: the lost ones
    r.lost_observed = r.kernel_drops !== null ? r.kernel_drops - (seen.delivered ?? 0) - suppressed : null;
    r.lost_matches_stats = r.lost_observed === lost;
    r.stream_exact = r.stream.total === r.kernel_drops;
    if (run !== 4) {
      r.output = { lines: out.lines, bytes: out.bytes };
      const cost = fileSinkCost(res.file, dir);
      r.file_sink = { ...cost, pct_of_tracer_cpu: tracerCpuS && cost.extra_ms !== null ? round((cost.extra_ms / 1000 / tracerCpuS) * 100, 2) : null };
    }
    if (run === 4) r.store = out.store;
    return r;
  } catch (e) {
    if (tracer) await tracer.stop().catch(() => {});
    throw e;
  }
}

export async function userspaceBench(o: BenchOptions): Promise<UserspaceResult> {
  const userspace = join(ROOT, 'dist', 'bench', 'userspace.js');
  const node = <T>(args: string[], timeoutS: number): Promise<Measured<T>> =>
    new Promise((res) => {
      const child = track(spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutS * 1000);
      void exited(child).then((r) => {
        clearTimeout(t);
        if (r.code === 0) {
          try {
            res(JSON.parse(out.trim().split('\n').pop() ?? '') as T);
          } catch {
            res({ error: `unreadable output: ${out.slice(-200)}` });
          }
        } else res({ error: r.signal === 'SIGKILL' ? `did not finish within ${timeoutS} s` : `exited ${r.code}: ${err.trim().split('\n').slice(-3).join(' ')}` });
      });
    });
  say('userspace: decode + classify + enrich on recorded buffers');
  const rate = await node<UserspaceRate>([userspace, 'rate'], 120);
  say(`userspace: RSS with ${o.flows} distinct flows`);
  const rss = await node<UserspaceRss>(['--expose-gc', userspace, 'rss', '--flows', String(o.flows)], 180);
  // the same without Folder (decode + classify + enrich only): what the Folder's memory is
  const rssNoFolder = await node<UserspaceRss>(['--expose-gc', userspace, 'rss', '--flows', String(o.flows), '--stages', 'enrich', '--reconcile-every', '0'], 120);
  return { rate, rss, rss_without_folder: rssNoFolder };
}

#!/usr/bin/env node
/**
 * Turns the last line of `npm run bench` (one JSON object) into the Markdown tables of
 * docs/performance.md:   npm run bench | tail -1 | node dist/bench/report-md.js
 */
import { readFileSync } from 'node:fs';
import type { Machine } from './proc.js';
import type { RunResult } from './measure.js';
import type { Target } from './report.js';
import type { UserspaceResult } from './userspace-types.js';

interface BenchJson {
  time: string;
  machine: Machine;
  options: { seconds: number; repeat: number; generator_cpu: number };
  runs: RunResult[];
  userspace: UserspaceResult | null;
  targets?: Target[];
  bench_seconds: number;
}

const text = readFileSync(0, 'utf8').trim().split('\n').pop() ?? '';
const b = JSON.parse(text) as BenchJson;
const n = (x: number | null | undefined) => (x === null || x === undefined ? '—' : Math.round(x).toLocaleString('en-US'));
const p = (x: number | null | undefined) => (x === null || x === undefined ? '—' : `${x.toFixed(1)}%`);
const out: string[] = [];
const w = (s = '') => {
  out.push(s);
};
const m = b.machine;

w(`Run of ${b.time.slice(0, 16).replace('T', ' ')} UTC: ${m.nproc} CPUs (${m.cpu_model}), ${m.memory_gb} GB, kernel ${m.kernel}, Node ${m.node}, ${m.bpftrace ?? 'no bpftrace'};`);
w(`${b.options.seconds} s per run, generator ${b.options.generator_cpu >= 0 ? `pinned to CPU ${b.options.generator_cpu}` : 'not pinned'}, load average ${m.loadavg_1m_at_start} at start, whole bench ${b.bench_seconds} s.`);
w();
w('Two floods per run: one with `kernel.bpf_stats_enabled=1` (BPF ns/event, tracer CPU and RSS), one with it 0 as on a node (drops/s, slowdown, added ns/drop); *generated* and *counted* cover both. Slowdown and added time are against run 1 of the same repetition; runs 7 and 10 against run 6 (the same many-flows generator), run 9 against run 8 (the same receiver with conntrack at work).');
w();
w('| run | drops/s | slowdown | slowdown, stats on | generated | counted | exact | detail events | lost (stats / seen) | BPF ns/event | vs bpftrace | added ns/drop | vs bpftrace | tracer CPU | tracer peak RSS | other load |');
w('|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of b.runs) {
  w(
    `| ${r.run} ${r.name}${b.options.repeat > 1 ? ` #${r.rep}` : ''} | ${n(r.drops_per_s)} | ${p(r.slowdown_pct)} | ${p(r.stats_on?.slowdown_pct)} | ${n(r.generated)} | ${r.counted === undefined ? '—' : n(r.counted)} | ${r.exact === undefined ? '—' : r.exact ? 'yes' : r.counted_elsewhere ? `+${n(r.counted_elsewhere)} made elsewhere` : '**no**'} | ${r.events === undefined ? '—' : n(r.events)} | ${r.lost ? `${n(r.lost.total)} / ${n(r.lost_observed)}` : '—'} | ${r.kernel_ns_per_event ?? '—'} | ${r.ns_vs_bpftrace ? `${r.ns_vs_bpftrace}x` : '—'} | ${r.added_ns_per_drop ?? '—'} | ${r.added_vs_bpftrace ? `${r.added_vs_bpftrace}x` : '—'} | ${r.tracer_cpu_pct === null ? '—' : `${r.tracer_cpu_pct}%`} | ${r.tracer_peak_rss_mb === null ? '—' : `${r.tracer_peak_rss_mb} MB`} | ${p(r.other_load_pct)} |`,
  );
}
const warn = b.runs.filter((r) => r.foreign_programs?.length || (r.other_load_pct ?? 0) > 15);
if (warn.length) {
  w();
  for (const r of warn) {
    const f = r.foreign_programs?.length ? `other BPF programs ran (${r.foreign_programs.map((x) => `${x.name}: ${n(x.run_cnt)} runs`).join(', ')})` : '';
    const l = (r.other_load_pct ?? 0) > 15 ? `the machine was busy with other work (${r.other_load_pct}% of a CPU)` : '';
    w(`- run ${r.run}: ${[f, l].filter(Boolean).join('; ')}`);
  }
}
const us = b.userspace;
if (us && !('error' in us.rate)) {
  const r = us.rate;
  w();
  w(`| userspace, ${r.batch_records} distinct records per buffer | events/s | events per CPU-second |`);
  w('|---|---:|---:|');
  w(`| decode | ${n(r.stages.decode.events_per_s)} | ${n(r.stages.decode.events_per_cpu_s)} |`);
  w(`| + classify, explain, fold (EventBuilder) | ${n(r.stages.classify.events_per_s)} | ${n(r.stages.classify.events_per_cpu_s)} |`);
  w(`| + enrich (one Map lookup): **decode+classify+enrich** | ${n(r.decode_classify_enrich.events_per_s)} | ${n(r.decode_classify_enrich.events_per_cpu_s)} |`);
  w(`| + Folder.delivered (all of the stream path) | ${n(r.stages.full_stream_path.events_per_s)} | ${n(r.stages.full_stream_path.events_per_cpu_s)} |`);
  w(`| + NDJSON serialisation (${r.plus_ndjson.ndjson_bytes_per_event} bytes/event) | ${n(r.plus_ndjson.events_per_s)} | ${n(r.plus_ndjson.events_per_cpu_s)} |`);
  w(`| + TUI store ingest | ${n(r.plus_tui_store.events_per_s)} | ${n(r.plus_tui_store.events_per_cpu_s)} |`);
}
if (us && !('error' in us.rss)) {
  const r = us.rss;
  w();
  w(`RSS with ${n(r.flows)} distinct flows through the stream path (${r.reconciles} reconciles of a full 65,536-key map): **${r.peak_rss_mb} MB peak** (Node alone ${r.baseline_rss_mb} MB; live heap after a full GC ${r.retained_heap_mb} MB; ${r.seconds} s).`);
  const nf = us.rss_without_folder;
  if (nf && !('error' in nf)) w(`The same without \`Folder\` (decode+classify+enrich only, no reconcile): ${nf.peak_rss_mb} MB peak (live heap after a full GC ${nf.retained_heap_mb} MB; ${nf.seconds} s).`);
}
if (b.targets?.length) {
  w();
  w('| target (issue 6) | met | measured |');
  w('|---|---|---|');
  for (const t of b.targets) w(`| ${t.target} | ${t.met === null ? 'n/a' : t.met ? 'yes' : '**no**'} | ${t.measured} |`);
}
process.stdout.write(out.join('\n') + '\n');

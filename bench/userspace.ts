#!/usr/bin/env node
/**
 * Userspace-only benchmark: the path `droptrace stream` runs on every ring-buffer wake-up
 * (src/pipeline/stream.ts) — Decoder.decode → EventBuilder.fold (classify, explain, per-batch
 * folding) → enrichment (one stub step: a Map lookup netns → pod) → Folder.delivered — on
 * recorded buffers, without the kernel (bench/userspace-pipeline.ts).
 *
 *   node dist/bench/userspace.js rate [--seconds S] [--batch N] [--only decode|classify|enrich|full|ndjson|tui]
 *       → one JSON line: events/s for the bare path, + NDJSON serialisation, + TUI store ingest,
 *         each measured in a process of its own (--only: that one stage in this process, e.g.
 *         under --cpu-prof)
 *   node dist/bench/userspace.js rss [--flows N] [--sink none|ndjson|tui] [--stages full|enrich|classify|decode]
 *                                     [--reconcile-every BATCHES]
 *       → one JSON line: peak RSS (VmHWM) with N distinct flows through the same path, with a
 *         full-map reconcile (65536 kernel keys, all with folded drops) every 262144 events
 *
 * Run by bench/run.ts, each measurement in its own process (RSS is per process).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DropEvent } from './pipeline.js';
import { format } from '../src/sinks/ndjson.js';
import type { TuiStore } from '../src/tui/store.js';
import { makeBatch, makeKeyBuf, pipeline } from './userspace-pipeline.js';
import type { BenchPipeline, Sink, Stages } from './userspace-pipeline.js';
import type { RateFigures, UserspaceRate, UserspaceRss } from './userspace-types.js';

const argv = process.argv.slice(2);
const mode = argv[0] ?? 'rate';
const opt = <D extends string | null>(name: string, def: D): string | D => {
  const i = argv.indexOf(name);
  return i >= 0 ? (argv[i + 1] ?? def) : def;
};

const round = (x: number | null | undefined, d = 1): number | null => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

const statusMb = (field: string): number | null => {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : null;
};

async function tuiSink(): Promise<{ store: TuiStore; sink: Sink }> {
  const { TuiStore } = await import('../src/tui/store.js');
  const store = new TuiStore({ source: 'live' });
  return { store, sink: (ev: DropEvent) => store.ingest(ev) };
}

const STAGES: readonly string[] = ['decode', 'classify', 'enrich', 'full'];

/**
 * Events/s of one pipeline over `seconds`, split into 3 windows after a warm-up; the best
 * window is reported (the others were slowed by something else: GC of an earlier stage, a
 * neighbour on a shared machine), both per wall-clock second and per CPU-second of the process.
 */
function measure(p: BenchPipeline, batches: Buffer[], seconds: number): RateFigures {
  // warm-up: let the JIT settle
  const warm = performance.now() + 300;
  for (let k = 0; performance.now() < warm; k++) p.batch(batches[k % batches.length]!);
  let best: RateFigures | null = null;
  let k = 0;
  for (let w = 0; w < 3; w++) {
    const e0 = p.totals.events;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const until = t0 + (seconds * 1000) / 3;
    while (performance.now() < until) {
      p.batch(batches[k++ % batches.length]!);
    }
    const wall = (performance.now() - t0) / 1000;
    const cu = process.cpuUsage(c0);
    const cpu = (cu.user + cu.system) / 1e6;
    const events = p.totals.events - e0;
    const r = { events, wall_s: round(wall, 3), cpu_s: round(cpu, 3), events_per_s: Math.round(events / wall), events_per_cpu_s: Math.round(events / cpu) };
    if (!best || r.events_per_s > best.events_per_s) best = r;
  }
  return best!;
}

async function rate(): Promise<void> {
  const seconds = Number(opt('--seconds', '1.5'));
  const batchSize = Number(opt('--batch', '1024'));
  // 64 batches of distinct keys (65536 records: the size of the kernel's key map)
  const batches: Buffer[] = [];
  for (let b = 0; b < 64; b++) batches.push(makeBatch(b * batchSize, batchSize));
  const bytes = batches.reduce((s, b) => s + b.length, 0);

  const only = opt('--only', null);
  if (only) {
    let p: BenchPipeline;
    let sinkBytes = 0;
    if (only === 'ndjson') p = pipeline({ sink: (ev) => (sinkBytes += format(ev).length) });
    else if (only === 'tui') p = pipeline({ sink: (await tuiSink()).sink });
    else if (STAGES.includes(only)) p = pipeline({ stages: only as Stages });
    else throw new Error(`--only wants decode, classify, enrich, full, ndjson or tui, got "${only}"`);
    const r = measure(p, batches, seconds);
    if (p.totals.decodeErrors) throw new Error(`decode errors: ${p.totals.decodeErrors}`);
    const extra = only === 'ndjson' ? { ndjson_bytes_per_event: round(sinkBytes / p.totals.events, 1) } : {};
    process.stdout.write(JSON.stringify({ type: 'bench-userspace-rate', only, ...r, ...extra }) + '\n');
    return;
  }
  // Each stage in a process of its own (this script again, with --only): in one process the
  // JIT's feedback from one pipeline shapes the code the next one runs, which no real
  // droptrace process does (it runs one path).
  const alone = (what: string): RateFigures => {
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), 'rate', '--only', what, '--seconds', String(seconds), '--batch', String(batchSize)], { encoding: 'utf8' });
    const { type: _t, only: _o, ...r } = JSON.parse(out.trim().split('\n').pop() ?? '') as RateFigures & { type: string; only: string };
    return r;
  };
  const stage = { decode: alone('decode'), classify: alone('classify'), enrich: alone('enrich') };
  const r1 = alone('full');
  const r2 = alone('ndjson');
  const r3 = alone('tui');
  const result: UserspaceRate = {
    type: 'bench-userspace-rate',
    batch_records: batchSize,
    record_bytes_avg: round(bytes / (64 * batchSize), 1),
    each_stage_in_own_process: true,
    decode_classify_enrich: stage.enrich,
    stages: { decode: stage.decode, classify: stage.classify, full_stream_path: r1 },
    plus_ndjson: r2,
    plus_tui_store: r3,
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

async function rss(): Promise<void> {
  const flows = Number(opt('--flows', '1000000'));
  const sinkName = opt('--sink', 'none');
  const batchSize = 1024;
  const reconcileEvery = Number(opt('--reconcile-every', '256')); // batches (256: every 262144 events); 0: never
  let sink: Sink | undefined;
  let store: TuiStore | null = null;
  if (sinkName === 'ndjson') {
    let n = 0;
    sink = (ev) => {
      n += format(ev).length - 1;
    };
  } else if (sinkName === 'tui') ({ store, sink } = await tuiSink());
  const stages = opt('--stages', 'full');
  if (!STAGES.includes(stages)) throw new Error(`--stages wants decode, classify, enrich or full, got "${stages}"`);
  const p = pipeline({ ...(sink ? { sink } : {}), stages: stages as Stages });
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const baseline = statusMb('VmRSS');
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let reconciles = 0;
  for (let first = 0, b = 0; first < flows; first += batchSize, b++) {
    p.batch(makeBatch(first, Math.min(batchSize, flows - first)));
    if (reconcileEvery > 0 && (b + 1) % reconcileEvery === 0) {
      // the kernel's LRU map holds the 65536 most recent keys
      const n = Math.min(65536, first + batchSize);
      p.reconcile(makeKeyBuf(first + batchSize - n, n, 5 + reconciles), new Date().toISOString());
      reconciles++;
    }
  }
  const wall = (performance.now() - t0) / 1000;
  const cu = process.cpuUsage(c0);
  const snap = store ? store.snapshot() : null;
  const heapUsed = process.memoryUsage().heapUsed;
  // with --expose-gc: what the pipeline really keeps (the rest of the peak is garbage V8 had
  // not collected yet, and heap it keeps reserved)
  let retained: number | null = null;
  if (gc) {
    gc();
    retained = process.memoryUsage().heapUsed;
  }
  const result: UserspaceRss = {
    type: 'bench-userspace-rss',
    sink: sinkName,
    stages,
    flows,
    events: p.totals.events,
    lines: p.totals.lines,
    folded_drops: p.totals.folded,
    reconciles,
    decode_errors: p.totals.decodeErrors,
    seconds: round(wall, 2),
    cpu_s: round((cu.user + cu.system) / 1e6, 2),
    baseline_rss_mb: round(baseline),
    heap_used_mb: round(heapUsed / 1048576),
    retained_heap_mb: retained === null ? null : round(retained / 1048576),
    peak_rss_mb: round(statusMb('VmHWM')),
    end_rss_mb: round(statusMb('VmRSS')),
    ...(snap ? { store_total: snap.total, store_groups: snap.groups.length } : {}),
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

if (mode === 'rate') await rate();
else if (mode === 'rss') await rss();
else {
  process.stderr.write('usage: node dist/bench/userspace.js rate|rss [options]\n');
  process.exit(2);
}

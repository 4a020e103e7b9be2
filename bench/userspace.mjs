#!/usr/bin/env node
// Userspace-only benchmark: the path `droptrace stream` runs on every ring-buffer wake-up
// (src/pipeline/stream.ts) — Decoder.decode → EventBuilder.fold (classify, explain, per-batch folding)
// → enrichment (one stub step: a Map lookup netns → pod) → Folder.delivered — on recorded
// buffers, without the kernel. Buffers are built from the golden kernel records
// (test/fixtures/golden-6.18.json), repeated with their addresses, ports and times varied so
// that every record of a batch is a distinct key and folding does not collapse the work.
//
//   node bench/userspace.mjs rate [--seconds S] [--batch N] [--only decode|classify|enrich|full|ndjson|tui]
//       → one JSON line: events/s for the bare path, + NDJSON serialisation, + TUI store ingest,
//         each measured in a process of its own (--only: that one stage in this process, e.g.
//         under --cpu-prof)
//   node bench/userspace.mjs rss [--flows N] [--sink none|ndjson|tui] [--stages full|enrich|classify|decode]
//       → one JSON line: peak RSS (VmHWM) with N distinct flows through the same path, with a
//         full-map reconcile (65536 kernel keys, all with folded drops) every 262144 events
//
// The pipeline below is built as src/pipeline/stream.ts builds it and must follow it when it changes:
// record offsets from Decoder.decode, reused batch arrays, Folder.delivered with the record
// bytes (the Folder keeps those, not the event), and the reconcile walking the key map with
// eachKey and emitting each folded line as it is made. Every stage does the same work per
// event as before those changes; none was narrowed.
//
// Run by bench/run.mjs, each measurement in its own process (RSS is per process).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { WallClock } from '../dist/src/pipeline/clock.js';
import { Decoder, eachKey } from '../dist/src/pipeline/decode.js';
import { EventBuilder } from '../dist/src/pipeline/events.js';
import { cachedSysctl } from '../dist/src/pipeline/explain.js';
import { Folder } from '../dist/src/pipeline/fold.js';
import { Symbolizer } from '../dist/src/pipeline/kallsyms.js';
import { FIELDS, KEY_ENTRY_SIZE, KEY_FIELDS, KEY_SIZE } from '../dist/src/pipeline/layout.js';
import { ReasonNames } from '../dist/src/pipeline/reasons.js';

const ROOT = join(import.meta.dirname, '..');
const golden = JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'golden-6.18.json'), 'utf8'));
const templates = golden.records.map((h) => Buffer.from(h, 'hex'));

const argv = process.argv.slice(2);
const mode = argv[0] ?? 'rate';
const opt = (name, def) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : def;
};

// ---- the pipeline, constructed as src/pipeline/stream.ts does ----

const MONO_BASE = 2_000_000_000_000n; // the golden records were taken ~2400 s after boot
const REALTIME_BASE = 1_795_510_000_000_000_000n;

/** A small kallsyms text naming the golden records' call sites, plus filler symbols. */
function fakeKallsyms() {
  const sites = {
    ffffffff820490cc: '__udp4_lib_rcv',
    ffffffff820ebad1: 'ip6_mc_input',
    ffffffff81f657b8: 'nft_do_chain',
    ffffffff81ff7c4b: 'ip_rcv_finish_core',
    ffffffff820db82e: 'icmpv6_rcv',
    ffffffff82109b01: '__udp6_lib_rcv',
  };
  const rows = [];
  for (const [addr, name] of Object.entries(sites)) rows.push(`${(BigInt('0x' + addr) - 0x40n).toString(16)} t ${name}`);
  for (let i = 0; i < 5000; i++) rows.push(`${(0xffffffff81000000n + BigInt(i) * 0x3000n + 0x10n).toString(16)} T bench_filler_${i}`);
  return rows.join('\n');
}

/**
 * `stages` cuts the path short to show where the time goes: 'decode' (Decoder only),
 * 'classify' (+ EventBuilder.fold: classify, explain, times, per-batch folding), 'enrich'
 * (+ the enrichment chain: the decode+classify+enrich), 'full' (+ Folder.delivered,
 * everything src/pipeline/stream.ts does per event before emitting it).
 */
function pipeline({ sink, stages = 'full' } = {}) {
  const doBuild = stages !== 'decode';
  const doEnrich = stages === 'enrich' || stages === 'full';
  const doFolder = stages === 'full';
  const reasons = new ReasonNames(golden.reasons);
  const symbols = new Symbolizer(fakeKallsyms());
  const clock = new WallClock({ monotonicNs: MONO_BASE, realtimeNs: REALTIME_BASE });
  const decoder = new Decoder(clock.monoBaseNs);
  const builder = new EventBuilder(reasons, symbols, clock, cachedSysctl());
  const folder = new Folder();
  // the enrichment chain: one step, one index hit (pod by netns), as src/enrich/types.ts asks
  const pods = new Map();
  for (let i = 0; i < 1000; i++) pods.set(4026532000 + i, { namespace: 'bench', name: `pod-${i}`, uid: `uid-${i}` });
  const enrichers = [
    {
      name: 'bench-pod-by-netns',
      enrich(ev) {
        const p = pods.get(ev.netns);
        if (p) {
          ev.pod = p;
          ev.pod_match = 'netns';
        }
      },
    },
  ];
  let enrichmentFailures = 0;
  const enrich = (ev) => {
    for (const e of enrichers) {
      try {
        e.enrich(ev);
      } catch {
        enrichmentFailures++;
      }
    }
  };
  const scratch = [];
  const offsets = [];
  const batchEvents = [];
  const batchFirsts = [];
  const totals = { events: 0, lines: 0, decodeErrors: 0, folded: 0 };
  const emit = sink ?? (() => {});
  return {
    totals,
    /** one ring-buffer wake-up, as the tracer's callback in src/pipeline/stream.ts */
    batch(buf) {
      scratch.length = 0;
      offsets.length = 0;
      const r = decoder.decode(buf, scratch, offsets);
      totals.decodeErrors += r.errors;
      totals.events += scratch.length;
      if (doBuild) {
        builder.fold(scratch, batchEvents, batchFirsts);
        for (let i = 0; i < batchEvents.length; i++) {
          const ev = batchEvents[i];
          if (doEnrich) enrich(ev);
          if (doFolder) folder.delivered(null, ev, buf, offsets[batchFirsts[i]]);
          totals.lines++;
          emit(ev);
        }
      }
      scratch.length = 0;
      batchEvents.length = 0;
    },
    /** the periodic reconcile of the kernel's key map (src/pipeline/stream.ts reconcile()) */
    reconcile(keyBuf, time) {
      folder.reconcile(eachKey(keyBuf, { suppressedOnly: true }), (raw) => builder.describe(raw), time, (ev) => {
        enrich(ev);
        totals.folded += ev.count;
        emit(ev);
      });
    },
    get enrichmentFailures() {
      return enrichmentFailures;
    },
  };
}

// ---- recorded buffers, varied ----

/**
 * Record `i` of a stream of distinct flows: golden template i % 10 with its source address,
 * source port and time changed (so each record is its own key), framed by its own size field.
 */
function writeRecord(out, off, i, flowId) {
  const t = templates[i % templates.length];
  t.copy(out, off);
  const flags = out[off + FIELDS.flags[0]];
  const ts = MONO_BASE + 1_000_000n + BigInt(i) * 2500n;
  out.writeBigUInt64LE(ts, off + FIELDS.ts_ns[0]);
  const s = off + FIELDS.saddr[0];
  if (flags & 0x01) {
    // IPv4: 10.a.b.c from the flow id (up to 16.7M sources)
    out[s] = 10;
    out[s + 1] = (flowId >>> 16) & 0xff;
    out[s + 2] = (flowId >>> 8) & 0xff;
    out[s + 3] = flowId & 0xff;
  } else if (flags & 0x02) {
    out.writeUInt32BE(flowId >>> 0, s + 12);
  }
  if (flags & 0x04) {
    const l4 = out[off + FIELDS.l4_proto[0]];
    if (l4 === 6 || l4 === 17) out.writeUInt16LE(1024 + (flowId % 50000), off + FIELDS.sport[0]);
  }
  return t.length;
}

function recordSize(i) {
  return templates[i % templates.length].length;
}

/** A batch of `n` records starting at record `first`; flow ids = record indexes. */
function makeBatch(first, n) {
  let size = 0;
  for (let i = first; i < first + n; i++) size += recordSize(i);
  const buf = Buffer.alloc(size);
  let off = 0;
  for (let i = first; i < first + n; i++) off += writeRecord(buf, off, i, i);
  return buf;
}

/** What the addon's readKeys() returns for the keys of records [first, first + n): all with suppressed drops. */
function makeKeyBuf(first, n, suppressed) {
  const buf = Buffer.alloc(n * KEY_ENTRY_SIZE);
  const rec = Buffer.alloc(512);
  const copy = (kf, f, len) => rec.copy(buf, base + KEY_FIELDS[kf][0], FIELDS[f][0], FIELDS[f][0] + len);
  let base = 0;
  for (let k = 0; k < n; k++, base += KEY_ENTRY_SIZE) {
    const i = first + k;
    writeRecord(rec, 0, i, i);
    copy('reason', 'reason', 4);
    copy('netns', 'netns', 4);
    copy('ifindex', 'ifindex', 4);
    copy('sport', 'sport', 2);
    copy('dport', 'dport', 2);
    copy('l4_proto', 'l4_proto', 1);
    copy('icmp_type', 'icmp_type', 1);
    copy('icmp_code', 'icmp_code', 1);
    copy('saddr', 'saddr', 16);
    copy('daddr', 'daddr', 16);
    const flags = rec[FIELDS.flags[0]];
    buf[base + KEY_FIELDS.ip_version[0]] = flags & 0x01 ? 4 : flags & 0x02 ? 6 : 0;
    buf.writeBigUInt64LE(BigInt(suppressed + 1), base + KEY_SIZE);
    buf.writeBigUInt64LE(BigInt(suppressed), base + KEY_SIZE + 8);
  }
  return buf;
}

const hwmMb = () => {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : null;
};
const rssMb = () => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : null;
};

async function tuiSink() {
  const { TuiStore } = await import('../dist/src/tui/store.js');
  const store = new TuiStore({ source: 'live' });
  return { store, sink: (ev) => store.ingest(ev) };
}

// ---- modes ----

/**
 * Events/s of one pipeline over `seconds`, split into 3 windows after a warm-up; the best
 * window is reported (the others were slowed by something else: GC of an earlier stage, a
 * neighbour on a shared machine), both per wall-clock second and per CPU-second of the process.
 */
function measure(p, batches, seconds) {
  // warm-up: let the JIT settle
  const warm = performance.now() + 300;
  for (let k = 0; performance.now() < warm; k++) p.batch(batches[k % batches.length]);
  let best = null;
  let k = 0;
  for (let w = 0; w < 3; w++) {
    const e0 = p.totals.events;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const until = t0 + (seconds * 1000) / 3;
    while (performance.now() < until) {
      p.batch(batches[k++ % batches.length]);
    }
    const wall = (performance.now() - t0) / 1000;
    const cu = process.cpuUsage(c0);
    const cpu = (cu.user + cu.system) / 1e6;
    const events = p.totals.events - e0;
    const r = { events, wall_s: round(wall, 3), cpu_s: round(cpu, 3), events_per_s: Math.round(events / wall), events_per_cpu_s: Math.round(events / cpu) };
    if (!best || r.events_per_s > best.events_per_s) best = r;
  }
  return best;
}

const round = (x, d = 1) => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

async function rate() {
  const seconds = Number(opt('--seconds', '1.5'));
  const batchSize = Number(opt('--batch', '1024'));
  // 64 batches of distinct keys (65536 records: the size of the kernel's key map)
  const batches = [];
  for (let b = 0; b < 64; b++) batches.push(makeBatch(b * batchSize, batchSize));
  const bytes = batches.reduce((s, b) => s + b.length, 0);

  const only = opt('--only', null);
  if (only) {
    let p;
    let sinkBytes = 0;
    if (only === 'ndjson') p = pipeline({ sink: (ev) => (sinkBytes += JSON.stringify(ev).length + 1) });
    else if (only === 'tui') p = pipeline({ sink: (await tuiSink()).sink });
    else if (['decode', 'classify', 'enrich', 'full'].includes(only)) p = pipeline({ stages: only });
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
  const alone = (what) => {
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), 'rate', '--only', what, '--seconds', String(seconds), '--batch', String(batchSize)], { encoding: 'utf8' });
    const { type: _t, only: _o, ...r } = JSON.parse(out.trim().split('\n').pop());
    return r;
  };
  const stage = {};
  for (const s of ['decode', 'classify', 'enrich']) stage[s] = alone(s);
  const r1 = alone('full');
  const r2 = alone('ndjson');
  const r3 = alone('tui');
  process.stdout.write(
    JSON.stringify({
      type: 'bench-userspace-rate',
      batch_records: batchSize,
      record_bytes_avg: round(bytes / (64 * batchSize), 1),
      each_stage_in_own_process: true,
      // the figure: decode + classify + enrich
      decode_classify_enrich: stage.enrich,
      stages: { decode: stage.decode, classify: stage.classify, full_stream_path: r1 },
      plus_ndjson: r2,
      plus_tui_store: r3,
    }) + '\n',
  );
}

async function rss() {
  const flows = Number(opt('--flows', '1000000'));
  const sinkName = opt('--sink', 'none');
  const batchSize = 1024;
  const reconcileEvery = Number(opt('--reconcile-every', '256')); // batches (256: every 262144 events); 0: never
  let sink;
  let store = null;
  if (sinkName === 'ndjson') {
    let n = 0;
    sink = (ev) => (n += JSON.stringify(ev).length);
  } else if (sinkName === 'tui') ({ store, sink } = await tuiSink());
  const stages = opt('--stages', 'full');
  const p = pipeline({ ...(sink ? { sink } : {}), stages });
  if (globalThis.gc) globalThis.gc();
  const baseline = rssMb();
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
  let retained = null;
  if (globalThis.gc) {
    globalThis.gc();
    retained = process.memoryUsage().heapUsed;
  }
  process.stdout.write(
    JSON.stringify({
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
      peak_rss_mb: round(hwmMb()),
      end_rss_mb: round(rssMb()),
      ...(snap ? { store_total: snap.total, store_groups: snap.groups.length } : {}),
    }) + '\n',
  );
}

if (mode === 'rate') await rate();
else if (mode === 'rss') await rss();
else {
  process.stderr.write('usage: node bench/userspace.mjs rate|rss [options]\n');
  process.exit(2);
}

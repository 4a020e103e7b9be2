/**
 * The stream path of bench/userspace.ts, built as src/pipeline/stream.ts builds it, and the
 * recorded buffers it runs on: golden kernel records (test/fixtures/golden-6.18.json) repeated
 * with their addresses, ports and times varied so every record of a batch is a distinct key
 * and folding does not collapse the work.
 *
 * It must follow src/pipeline/stream.ts when that changes: record offsets from Decoder.decode,
 * reused batch arrays, Folder.delivered with the record bytes (the Folder keeps those, not the
 * event), and the reconcile walking the key map with eachKey and emitting each folded line as
 * it is made. Every stage does the same work per event as the stream; none is narrowed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cachedSysctl, Decoder, eachKey, EventBuilder, FIELDS, Folder, KEY_ENTRY_SIZE, KEY_FIELDS, KEY_SIZE, ReasonNames, Symbolizer, WallClock } from './pipeline.js';
import type { DropEvent, RawDrop } from './pipeline.js';

const ROOT = join(import.meta.dirname, '..', '..');
const golden = JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'golden-6.18.json'), 'utf8')) as { reasons: Array<[string, number]>; records: string[] };
const templates = golden.records.map((h) => Buffer.from(h, 'hex'));

export const MONO_BASE = 2_000_000_000_000n; // the golden records were taken ~2400 s after boot
const REALTIME_BASE = 1_795_510_000_000_000_000n;

/** A small kallsyms text naming the golden records' call sites, plus filler symbols. */
function fakeKallsyms(): string {
  const sites: Record<string, string> = {
    ffffffff820490cc: '__udp4_lib_rcv',
    ffffffff820ebad1: 'ip6_mc_input',
    ffffffff81f657b8: 'nft_do_chain',
    ffffffff81ff7c4b: 'ip_rcv_finish_core',
    ffffffff820db82e: 'icmpv6_rcv',
    ffffffff82109b01: '__udp6_lib_rcv',
  };
  const rows: string[] = [];
  for (const [addr, name] of Object.entries(sites)) rows.push(`${(BigInt('0x' + addr) - 0x40n).toString(16)} t ${name}`);
  for (let i = 0; i < 5000; i++) rows.push(`${(0xffffffff81000000n + BigInt(i) * 0x3000n + 0x10n).toString(16)} T bench_filler_${i}`);
  return rows.join('\n');
}

export type Stages = 'decode' | 'classify' | 'enrich' | 'full';
export type Sink = (ev: DropEvent) => void;

export interface BenchPipeline {
  totals: { events: number; lines: number; decodeErrors: number; folded: number };
  /** one ring-buffer wake-up, as the tracer's callback in src/pipeline/stream.ts */
  batch(buf: Buffer): void;
  /** the periodic reconcile of the kernel's key map (src/pipeline/stream.ts reconcile()) */
  reconcile(keyBuf: Buffer, time: string): void;
  readonly enrichmentFailures: number;
}

/**
 * `stages` cuts the path short to show where the time goes: 'decode' (Decoder only),
 * 'classify' (+ EventBuilder.fold: classify, explain, times, per-batch folding), 'enrich'
 * (+ the enrichment chain: the decode+classify+enrich), 'full' (+ Folder.delivered,
 * everything src/pipeline/stream.ts does per event before emitting it).
 */
export function pipeline({ sink, stages = 'full' }: { sink?: Sink; stages?: Stages } = {}): BenchPipeline {
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
  const pods = new Map<number, { namespace: string; name: string; uid: string }>();
  for (let i = 0; i < 1000; i++) pods.set(4026532000 + i, { namespace: 'bench', name: `pod-${i}`, uid: `uid-${i}` });
  const enrichers = [
    {
      name: 'bench-pod-by-netns',
      enrich(ev: DropEvent) {
        const p = pods.get(ev.netns);
        if (p) {
          ev.pod = p;
          ev.pod_match = 'netns';
        }
      },
    },
  ];
  let enrichmentFailures = 0;
  const enrich = (ev: DropEvent) => {
    for (const e of enrichers) {
      try {
        e.enrich(ev);
      } catch {
        enrichmentFailures++;
      }
    }
  };
  const scratch: RawDrop[] = [];
  const offsets: number[] = [];
  const batchEvents: DropEvent[] = [];
  const batchFirsts: number[] = [];
  const totals = { events: 0, lines: 0, decodeErrors: 0, folded: 0 };
  const emit: Sink = sink ?? (() => {});
  return {
    totals,
    batch(buf) {
      scratch.length = 0;
      offsets.length = 0;
      const r = decoder.decode(buf, scratch, offsets);
      totals.decodeErrors += r.errors;
      totals.events += scratch.length;
      if (doBuild) {
        builder.fold(scratch, batchEvents, batchFirsts);
        for (let i = 0; i < batchEvents.length; i++) {
          const ev = batchEvents[i]!;
          if (doEnrich) enrich(ev);
          if (doFolder) folder.delivered(null, ev, buf, offsets[batchFirsts[i]!]);
          totals.lines++;
          emit(ev);
        }
      }
      scratch.length = 0;
      batchEvents.length = 0;
    },
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

/**
 * Record `i` of a stream of distinct flows: golden template i % 10 with its source address,
 * source port and time changed (so each record is its own key), framed by its own size field.
 */
function writeRecord(out: Buffer, off: number, i: number, flowId: number): number {
  const t = templates[i % templates.length]!;
  t.copy(out, off);
  const flags = out[off + FIELDS.flags[0]]!;
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

function recordSize(i: number): number {
  return templates[i % templates.length]!.length;
}

/** A batch of `n` records starting at record `first`; flow ids = record indexes. */
export function makeBatch(first: number, n: number): Buffer {
  let size = 0;
  for (let i = first; i < first + n; i++) size += recordSize(i);
  const buf = Buffer.alloc(size);
  let off = 0;
  for (let i = first; i < first + n; i++) off += writeRecord(buf, off, i, i);
  return buf;
}

/** What the addon's readKeys() returns for the keys of records [first, first + n): all with suppressed drops. */
export function makeKeyBuf(first: number, n: number, suppressed: number): Buffer {
  const buf = Buffer.alloc(n * KEY_ENTRY_SIZE);
  const rec = Buffer.alloc(512);
  let base = 0;
  const copy = (kf: keyof typeof KEY_FIELDS, f: keyof typeof FIELDS, len: number) => rec.copy(buf, base + KEY_FIELDS[kf][0], FIELDS[f][0], FIELDS[f][0] + len);
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
    const flags = rec[FIELDS.flags[0]]!;
    buf[base + KEY_FIELDS.ip_version[0]] = flags & 0x01 ? 4 : flags & 0x02 ? 6 : 0;
    buf.writeBigUInt64LE(BigInt(suppressed + 1), base + KEY_SIZE);
    buf.writeBigUInt64LE(BigInt(suppressed), base + KEY_SIZE + 8);
  }
  return buf;
}

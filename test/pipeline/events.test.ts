/**
 * The golden kernel records through the real stream (runStream over the FakeTracer): the drop
 * lines it makes, byte for byte (test/fixtures/golden-6.18.lines.ndjson was written by the
 * implementation before the stream path cached descriptions and kept records instead of
 * events), and EventBuilder's caches against the plain classify() + explain() they stand for.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { benignWhy } from '../../src/pipeline/benign.js';
import { classify } from '../../src/pipeline/classify.js';
import { WallClock } from '../../src/pipeline/clock.js';
import { Decoder, PROTO_NAMES } from '../../src/pipeline/decode.js';
import type { RawDrop } from '../../src/pipeline/decode.js';
import { EventBuilder } from '../../src/pipeline/events.js';
import type { DropEvent, StatsLine, StreamLine } from '../../src/pipeline/events.js';
import { explain } from '../../src/pipeline/explain.js';
import { Symbolizer } from '../../src/pipeline/kallsyms.js';
import { NeighPressure, neighTableOf } from '../../src/pipeline/neigh-pressure.js';
import { FIELDS, KEY_ENTRY_SIZE, KEY_FIELDS, KEY_SIZE } from '../../src/pipeline/layout.js';
import { ReasonNames } from '../../src/pipeline/reasons.js';
import { runStream } from '../../src/pipeline/stream.js';
import { FakeBinding } from '../helpers/fake-tracer.js';

const golden = JSON.parse(readFileSync(new URL('../fixtures/golden-6.18.json', import.meta.url), 'utf8')) as {
  reasons: Array<[string, number]>;
  records: string[];
};
const records = golden.records.map((h) => Buffer.from(h, 'hex'));
const want = readFileSync(new URL('../fixtures/golden-6.18.lines.ndjson', import.meta.url), 'utf8').trimEnd().split('\n');
const reasons = new ReasonNames(golden.reasons);
const kallsyms = [
  'ffffffff8204908c t __udp4_lib_rcv',
  'ffffffff820eba91 t ip6_mc_input',
  'ffffffff81f65778 t nft_do_chain',
  'ffffffff81ff7c0b t ip_rcv_finish_core.constprop.0',
  'ffffffff820db7ee t icmpv6_rcv',
  'ffffffff82109ac1 t __udp6_lib_rcv',
  'ffffffff81e10000 t neigh_invalidate',
].join('\n');
const sysctlValues: Record<string, number> = { 'net.netfilter.nf_conntrack_max': 262144, 'net.netfilter.nf_conntrack_tcp_be_liberal': 0 };
const sysctl = (k: string) => sysctlValues[k] ?? null;

function setup() {
  const clock = new WallClock({ monotonicNs: 2_399_000_000_000n, realtimeNs: 1_795_510_937_000_000_000n });
  // a clock that stands still: the reference below keeps its own record of full tables
  const builder = new EventBuilder(reasons, new Symbolizer(kallsyms), clock, sysctl, new NeighPressure(() => 0));
  const decoder = new Decoder(clock.monoBaseNs);
  return { builder, decoder };
}

/** `now` for the stream: a Date that writes nanoseconds, as the golden folded lines have them. */
class NsDate extends Date {
  override toISOString(): string {
    return super.toISOString().replace(/Z$/, '000000Z');
  }
}

/**
 * The real stream (src/pipeline/stream.ts) over the FakeTracer replaying `batches`, ended once
 * all were handed over; `podFrom`: from that batch on, and until the last was handed over,
 * enrichment gives netns 4026532457 a pod (the folded lines made at the end get theirs from
 * the delivered ones, as the golden lines were made).
 */
async function stream(batches: Buffer[], o: { keys?: Buffer; podFrom?: number } = {}) {
  let batch = -1;
  let handedOver = false;
  const fake = new FakeBinding({ batches, ...(o.keys ? { keys: o.keys } : {}), beforeBatch: (i) => (batch = i) });
  const lines: StreamLine[] = [];
  const ac = new AbortController();
  const done = runStream({
    native: fake,
    tracer: {},
    reasons,
    symbols: new Symbolizer(kallsyms),
    sysctl,
    meta: { version: 'test', node: 'n', kernel: '6.18' },
    emit: (l) => lines.push(l),
    enrichers: [
      {
        name: 'golden-pod',
        enrich(ev) {
          if (o.podFrom !== undefined && batch >= o.podFrom && !handedOver && ev.netns === 4026532457) {
            ev.pod = { namespace: 'lab', name: 'golden', uid: 'u-1' };
            ev.pod_match = 'netns';
          }
        },
      },
    ],
    statsIntervalMs: 3_600_000,
    foldIntervalMs: 3_600_000,
    signal: ac.signal,
    now: () => new NsDate(Date.parse('2026-11-24T09:02:18.000Z')),
  });
  await fake.tracer.done;
  handedOver = true;
  ac.abort();
  await done;
  const stats = lines.at(-1) as StatsLine;
  expect(stats).toMatchObject({ type: 'stats', final: true });
  return { drops: lines.filter((l): l is DropEvent => l.type === 'drop'), stats };
}

/** The key-map entry of a record's key, with `suppressed` drops folded. */
function keyEntry(r: Buffer, suppressed: number): Buffer {
  const e = Buffer.alloc(KEY_ENTRY_SIZE);
  const fields = ['reason', 'netns', 'ifindex', 'sport', 'dport', 'l4_proto', 'icmp_type', 'icmp_code', 'saddr', 'daddr'] as const;
  for (const f of fields) r.copy(e, KEY_FIELDS[f][0], FIELDS[f][0], FIELDS[f][0] + KEY_FIELDS[f][1]);
  const flags = r[FIELDS.flags[0]]!;
  e[KEY_FIELDS.ip_version[0]] = flags & 1 ? 4 : flags & 2 ? 6 : 0;
  e.writeBigUInt64LE(BigInt(suppressed + 2), KEY_SIZE);
  e.writeBigUInt64LE(BigInt(suppressed), KEY_SIZE + 8);
  return e;
}

describe('drop lines of the golden records', () => {
  it('are what they were, delivered and folded', async () => {
    // each record on its own wake-up, then all of them twice in one (enrichment's pod must
    // come back on the folded lines)
    const all = Buffer.concat([...records, ...records]);
    // every record's key with 7 suppressed drops, and a key no event was delivered for
    const other = Buffer.alloc(KEY_ENTRY_SIZE);
    other.writeUInt32LE(reasons.value('NETFILTER_DROP')!, KEY_FIELDS.reason[0]);
    other.writeUInt32LE(4026532457, KEY_FIELDS.netns[0]);
    other[KEY_FIELDS.l4_proto[0]] = 6;
    other[KEY_FIELDS.ip_version[0]] = 4;
    other.set([198, 18, 7, 9], KEY_FIELDS.saddr[0]);
    other.set([198, 18, 7, 2], KEY_FIELDS.daddr[0]);
    other.writeUInt16LE(443, KEY_FIELDS.dport[0]);
    other.writeBigUInt64LE(3n, KEY_SIZE + 8);
    const keys = Buffer.concat([...records.map((r) => keyEntry(r, 7)), other]);
    const { drops, stats } = await stream([...records, all], { keys, podFrom: records.length });
    const got = drops.map((ev) => JSON.stringify(ev));
    got.push(JSON.stringify({ folded: stats.folded, dnsFailures: stats.enrichment_failures }));
    expect(got).toEqual(want);
  });

  it('fold one batch: repeats of a key become one line with count and last_time; DNS drops never', async () => {
    const { drops } = await stream([Buffer.concat([records[0]!, records[4]!, records[0]!, records[4]!, records[0]!])]);
    expect(drops.map((ev) => [ev.kind, ev.count, ev.last_time !== undefined, ev.dns?.name])).toEqual([
      ['no_socket', 3, true, undefined],
      ['netfilter_rule', 1, false, 'kube-dns.droptrace.test.'],
      ['netfilter_rule', 1, false, 'kube-dns.droptrace.test.'],
    ]);
  });
});

/** build() as it was before descriptions were cached: classify and explain every drop. */
function reference(d: RawDrop, symbols: Symbolizer, clock: WallClock, pressure: NeighPressure): Record<string, unknown> {
  const reason = reasons.name(d.reason);
  const location = symbols.lookup(d.location);
  const c = classify({ reason, location, src: d.src, dst: d.dst, ctFlags: d.ctFlags, martianConf: d.martianConf });
  if (c.kind === 'neigh_table_full') pressure.noteFull(d.netns, neighTableOf(d));
  const overflow = c.kind === 'neigh_resolution_failed' ? pressure.recent(d.netns, neighTableOf(d)) : undefined;
  const x = explain(c, d, reason, sysctl, location, overflow);
  const why = benignWhy(reason, location);
  const flow =
    d.src === null || d.dst === null
      ? null
      : {
          proto: PROTO_NAMES[d.l4Proto] ?? `ip-${d.l4Proto}`,
          src: d.src,
          dst: d.dst,
          ...(d.sport !== null && d.dport !== null ? { sport: d.sport, dport: d.dport } : d.icmpType !== null && d.icmpCode !== null ? { type: d.icmpType, code: d.icmpCode } : {}),
        };
  return {
    time: clock.at(d.monoDeltaNs),
    family: c.family,
    kind: c.kind,
    reason,
    location,
    flow,
    explain: x.explain,
    hint: x.hint,
    evidence: c.evidence,
    neigh: x.neigh,
    martian: x.martian,
    conntrack: x.conntrack ? { nf_conntrack_max: x.conntrack.nf_conntrack_max } : undefined,
    benign: why === null ? undefined : true,
    benign_why: why ?? undefined,
  };
}

describe('EventBuilder caches', () => {
  it('describe every drop as classify() and explain() do, whatever mix of reasons, places, flags and flows', () => {
    const { builder, decoder } = setup();
    const symbols = new Symbolizer(kallsyms);
    const clock = new WallClock({ monotonicNs: 2_399_000_000_000n, realtimeNs: 1_795_510_937_000_000_000n });
    const reasonValues = golden.reasons.map(([, v]) => v);
    const pressure = new NeighPressure(() => 0);
    const record = fc
      .record({
        base: fc.nat(records.length - 1),
        reason: fc.oneof(fc.constantFrom(...reasonValues), fc.nat(2000)),
        location: fc.constantFrom(0xffffffff820490ccn, 0xffffffff81ff7c4bn, 0xffffffff81f657b8n, 0x820490ccn, 0n, 0xffffffff820eba95n, 0xffffffff81e10040n),
        ctFlags: fc.nat(255),
        martianConf: fc.constantFrom(0, 0x80, 0x81, 0x84, 0x86),
        netns: fc.constantFrom(4026532457, 1, 2),
        src: fc.constantFrom([198, 18, 7, 1], [127, 0, 0, 9], [0, 1, 2, 3], [224, 0, 0, 1]),
        dst: fc.constantFrom([198, 18, 7, 2], [127, 0, 0, 1], [0, 0, 0, 9]),
        neigh: fc.constantFrom(0, 2, 10),
      })
      .map((k) => {
        const r = Buffer.from(records[k.base]!);
        r.writeUInt32LE(k.reason, FIELDS.reason[0]);
        r.writeBigUInt64LE(k.location, FIELDS.location[0]);
        r[FIELDS.ct_flags[0]] = k.ctFlags;
        r[FIELDS.martian_conf[0]] = k.martianConf;
        r.writeUInt32LE(k.netns, FIELDS.netns[0]);
        if (r[FIELDS.flags[0]]! & 1) {
          r.set(k.src, FIELDS.saddr[0]);
          r.set(k.dst, FIELDS.daddr[0]);
        }
        r[FIELDS.neigh_family[0]] = k.neigh;
        return r;
      });
    fc.assert(
      fc.property(fc.array(record, { minLength: 1, maxLength: 20 }), (recs) => {
        for (const d of decoder.decode(Buffer.concat(recs)).drops) {
          const ev = builder.build(d) as unknown as Record<string, unknown>;
          const ref = reference(d, symbols, clock, pressure);
          // a DNS drop's explanation starts with its question (parsed per drop, not cached)
          if (ev.dns) ref.explain = `${(ev.explain as string).slice(0, (ev.explain as string).indexOf(': ') + 2)}${ref.explain as string}`;
          for (const [k, v] of Object.entries(ref)) expect([k, ev[k]]).toEqual([k, v]);
        }
      }),
      { numRuns: 500 },
    );
  });
});

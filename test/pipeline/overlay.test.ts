/**
 * Overlay inner headers from real records (test/fixtures/golden-overlay-6.18.json, written by
 * scripts/record-overlay.mjs on kernel 6.18): decoded, explained, attributed to pods by their
 * inner addresses, kept apart when folded, and carried by folded lines.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { podEnricher } from '../../src/enrich/pod-enricher.js';
import { PodIndex } from '../../src/enrich/pod-index.js';
import { WallClock } from '../../src/pipeline/clock.js';
import { Decoder } from '../../src/pipeline/decode.js';
import type { RawDrop } from '../../src/pipeline/decode.js';
import { EventBuilder } from '../../src/pipeline/events.js';
import { Folder } from '../../src/pipeline/fold.js';
import { Symbolizer } from '../../src/pipeline/kallsyms.js';
import { FIELDS } from '../../src/pipeline/layout.js';
import { innerFlowText, sameInner, withInner } from '../../src/pipeline/overlay.js';
import { ReasonNames } from '../../src/pipeline/reasons.js';
import { keyEntry } from '../helpers/records.js';
import { decodeKeys } from '../../src/pipeline/decode.js';

const fixture = JSON.parse(readFileSync(new URL('../fixtures/golden-overlay-6.18.json', import.meta.url), 'utf8')) as {
  reasons: Array<[string, number]>;
  records: string[];
  what: string[];
  addrs: { outerA: string; outerB: string; outer6A: string; outer6B: string; netnsB: number };
};
const records = fixture.records.map((h) => Buffer.from(h, 'hex'));
const at = (what: string) => records[fixture.what.indexOf(what)]!;
const { outerA, outerB, outer6A, outer6B, netnsB } = fixture.addrs;
const kallsyms = ['ffffffff81fb4b00 t nft_do_chain', 'ffffffff8209ec00 t __udp4_lib_rcv', 'ffffffff8215d100 t __udp6_lib_rcv'].join('\n');

function setup() {
  const clock = new WallClock({ monotonicNs: 0n, realtimeNs: 1_795_510_937_000_000_000n });
  const builder = new EventBuilder(new ReasonNames(fixture.reasons), new Symbolizer(kallsyms), clock, () => null);
  return { builder, decoder: new Decoder(0n) };
}
const decodeOne = (r: Buffer): RawDrop => {
  const out = new Decoder(0n).decode(r);
  expect(out.errors).toBe(0);
  return out.drops[0]!;
};

describe('overlay inner headers in recorded records', () => {
  it('decodes UDP between pods inside VXLAN 42 (4789), next to the nodes\' flow', () => {
    const d = decodeOne(at('vxlan-udp4'));
    expect([d.src, d.dst, d.dport, d.l4Proto]).toEqual([outerA, outerB, 4789, 17]);
    expect(d.inner).toEqual({ proto: 'udp', src: '198.19.42.1', dst: '198.19.42.2', sport: 5555, dport: 7777, vni: 42, encap: 'vxlan' });
  });

  it('decodes an ARP frame inside the tunnel as a tunnel without an inner flow', () => {
    expect(decodeOne(at('vxlan-arp')).inner).toEqual({ vni: 42, encap: 'vxlan' });
  });

  it('decodes IPv6 pods inside VXLAN 72 on 8472', () => {
    const d = decodeOne(at('vxlan-udp6'));
    expect([d.src, d.dst, d.dport]).toEqual([outerA, outerB, 8472]);
    expect(d.inner).toEqual({ proto: 'udp', src: 'fd99:48::1', dst: 'fd99:48::2', sport: 6000, dport: 7000, vni: 72, encap: 'vxlan' });
  });

  it('decodes Geneve with options over IPv6, an ICMP echo inside', () => {
    const d = decodeOne(at('geneve-icmp'));
    expect([d.src, d.dst, d.sport, d.dport]).toEqual([outer6A, outer6B, 40066, 6081]);
    expect(d.inner).toEqual({ proto: 'icmp', src: '198.19.66.1', dst: '198.19.66.2', type: 8, code: 0, vni: 0xabcdef, encap: 'geneve' });
  });

  it('says cut-short inner headers, and ignores an encap value it does not know', () => {
    const r = Buffer.from(at('vxlan-udp4'));
    r[FIELDS.inner_flags[0]] = 0x01 | 0x10; // IPv4, truncated, no L4
    expect(decodeOne(r).inner).toEqual({ proto: 'udp', src: '198.19.42.1', dst: '198.19.42.2', vni: 42, encap: 'vxlan', truncated: true });
    r[FIELDS.encap[0]] = 3;
    expect(decodeOne(r).inner).toBeUndefined();
  });

  it('explains the drop with the tunnel, the pods\' flow first', () => {
    const { builder, decoder } = setup();
    const ev = builder.build(decoder.decode(at('vxlan-udp4')).drops[0]!);
    expect(ev).toMatchObject({ kind: 'netfilter_rule', netns: netnsB, flow: { proto: 'udp', src: outerA, dst: outerB, dport: 4789 } });
    expect(ev.explain).toBe(
      `udp 198.19.42.1:5555 → 198.19.42.2:7777 inside VXLAN 42 from node ${outerA} to ${outerB} dropped: ` +
        'a firewall rule (iptables/nftables) returned DROP for this packet (freed in nft_do_chain)',
    );
    const g = builder.build(decoder.decode(at('geneve-icmp')).drops[0]!);
    expect(g.explain.startsWith(`icmp 198.19.66.1 → 198.19.66.2 type 8/0 inside Geneve ${0xabcdef} from node ${outer6A} to ${outer6B} dropped: `)).toBe(true);
    // the line: `inner` after the fields every drop line has, in the flow's order
    const line = JSON.parse(JSON.stringify({ ...ev, time: 't' })) as Record<string, unknown>;
    expect(Object.keys(line).at(-1)).toBe('inner');
    expect(Object.keys(line.inner as object)).toEqual(['proto', 'src', 'dst', 'sport', 'dport', 'vni', 'encap']);
    expect(withInner('udp a → b', ev.inner)).toBe('udp a → b · VXLAN 42: udp 198.19.42.1:5555 → 198.19.42.2:7777');
    expect(innerFlowText({ vni: 1, encap: 'vxlan' })).toBe('(no inner IP header)');
  });

  it('attributes a tunnelled drop to the pod of its inner source, else of its inner destination', () => {
    const { builder, decoder } = setup();
    const idx = new PodIndex({ now: () => Date.now() });
    idx.upsert({ uid: 'db', namespace: 'shop', name: 'db-1', ips: ['198.19.42.2'], start: 0 }, 'file');
    const e = podEnricher(idx);
    const ev = builder.build(decoder.decode(at('vxlan-udp4')).drops[0]!);
    e.enrich(ev);
    expect([ev.pod?.name, ev.pod_match]).toEqual(['db-1', 'inner_dst']);
    idx.upsert({ uid: 'web', namespace: 'shop', name: 'web-1', ips: ['198.19.42.1'], start: 0 }, 'file');
    const again = builder.build(decoder.decode(at('vxlan-udp4')).drops[0]!);
    e.enrich(again);
    expect([again.pod?.name, again.pod_match]).toEqual(['web-1', 'inner_src']);
    // the netns still comes first
    idx.upsert({ uid: 'node', namespace: 'lab', name: 'node-b', ips: [], netns: [netnsB], start: 0 }, 'file');
    const third = builder.build(decoder.decode(at('vxlan-udp4')).drops[0]!);
    e.enrich(third);
    expect([third.pod?.name, third.pod_match]).toEqual(['node-b', 'netns']);
  });

  it('does not fold two inner flows of one outer key into one line', () => {
    const { builder, decoder } = setup();
    const a = at('vxlan-udp4');
    const b = Buffer.from(a);
    b.writeUInt16LE(5556, FIELDS.inner_sport[0]);
    const events = builder.fold(decoder.decode(Buffer.concat([a, b, a])).drops);
    expect(events.map((e) => [e.inner?.sport, e.count])).toEqual([
      [5555, 2],
      [5556, 1],
    ]);
    expect(sameInner(events[0]!.inner, events[0]!.inner)).toBe(true);
    expect(sameInner(events[0]!.inner, undefined)).toBe(false);
  });

  it('gives folded lines the inner flow of their key\'s last delivered drop', () => {
    const { builder, decoder } = setup();
    const r = at('vxlan-udp4');
    const ev = builder.build(decoder.decode(r).drops[0]!);
    const f = new Folder();
    f.delivered(null, ev, r, 0);
    const [line] = f.reconcile(decodeKeys(keyEntry(r, 9, 8)), (raw) => builder.describe(raw), 'now');
    expect(line).toMatchObject({ count: 8, folded: true, inner: ev.inner, explain: ev.explain });
  });
});

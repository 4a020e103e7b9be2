/**
 * Services from recorded kernel records (scripts/record-golden-dnat.mjs, kernel 6.18): drops
 * after a DNAT rule decode to their original destination next to the translated flow, and the
 * drop line says both; a record without DNAT has none.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EVENT_FIELDS } from '../../src/gen/record.js';
import { WallClock } from '../../src/pipeline/clock.js';
import { Decoder } from '../../src/pipeline/decode.js';
import { EventBuilder } from '../../src/pipeline/events.js';
import { Symbolizer } from '../../src/pipeline/kallsyms.js';
import { ReasonNames } from '../../src/pipeline/reasons.js';
import { serviceClause } from '../../src/pipeline/service.js';
import { schemaErrors } from '../helpers/schema.js';

type Fixture = { reasons: Array<[string, number]>; records: string[] };
const load = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as Fixture;
// 198.18.7.1 → 198.19.7.10:53 (UDP, DNAT to 198.18.7.2:5353), → 198.19.7.11:53 (a DNS query,
// DNAT to :53), → 198.19.7.12:80 (TCP SYN, DNAT to :8080), fd99::7:1 → fd99:53::7:10:53 (DNAT to
// [fd99::7:2]:5353); each into a DROP rule on the translated port
const dnat = load('golden-dnat-6.18.json');
const golden = load('golden-6.18.json');

function build(fx: Fixture) {
  const clock = new WallClock({ monotonicNs: 0n, realtimeNs: 1_795_510_937_000_000_000n });
  const builder = new EventBuilder(new ReasonNames(fx.reasons), new Symbolizer('ffffffff81fb4770 T nft_do_chain'), clock, () => null);
  return fx.records.map((hex) => {
    const r = new Decoder(0n).decode(Buffer.from(hex, 'hex'));
    expect(r.errors).toBe(0);
    return { raw: r.drops[0]!, line: builder.build(r.drops[0]!) };
  });
}

describe('drops after DNAT, from recorded records', () => {
  const got = build(dnat);

  it('decodes the original destination next to the translated one', () => {
    expect(got.map(({ raw: d }) => [d.src, d.sport, d.dst, d.dport, d.service])).toEqual([
      ['198.18.7.1', 41010, '198.18.7.2', 5353, { ip: '198.19.7.10', port: 53, reply: false }],
      ['198.18.7.1', 41011, '198.18.7.2', 53, { ip: '198.19.7.11', port: 53, reply: false }],
      ['198.18.7.1', 41012, '198.18.7.2', 8080, { ip: '198.19.7.12', port: 80, reply: false }],
      ['fd99::7:1', 41013, 'fd99::7:2', 5353, { ip: 'fd99:53::7:10', port: 53, reply: false }],
    ]);
  });

  it('names the service in the line and its explain sentence', () => {
    const rule = 'a firewall rule (iptables/nftables) returned DROP for this packet (freed in nft_do_chain)';
    expect(got.map(({ line }) => [line.kind, line.service, line.explain])).toEqual([
      ['netfilter_rule', { ip: '198.19.7.10', port: 53 }, `packet to service 198.19.7.10:53 (pod 198.18.7.2:5353) dropped: ${rule}`],
      ['netfilter_rule', { ip: '198.19.7.11', port: 53 }, `DNS query for kube-dns.droptrace.test. (A) to service 198.19.7.11:53 (pod 198.18.7.2:53) dropped: ${rule}`],
      ['netfilter_rule', { ip: '198.19.7.12', port: 80 }, `packet to service 198.19.7.12:80 (pod 198.18.7.2:8080) dropped: ${rule}`],
      ['netfilter_rule', { ip: 'fd99:53::7:10', port: 53 }, `packet to service [fd99:53::7:10]:53 (pod [fd99::7:2]:5353) dropped: ${rule}`],
    ]);
    expect(schemaErrors(got.map(({ line }) => JSON.parse(JSON.stringify(line)) as object))).toEqual([]);
  });

  it('reads the entry status and direction the kernel gave', () => {
    for (const hex of dnat.records) {
      const b = Buffer.from(hex, 'hex');
      // IPS_DST_NAT | IPS_DST_NAT_DONE, and IP_CT_NEW: the first packet of the original direction
      expect(b.readUInt32LE(EVENT_FIELDS.dnat_status[0]) & 0x120).toBe(0x120);
      expect(b[EVENT_FIELDS.dnat_ctinfo[0]]).toBe(2);
    }
  });

  it('has no service on the records without DNAT', () => {
    expect(build(golden).map(({ raw, line }) => [raw.service, 'service' in line && line.service !== undefined])).toEqual(golden.records.map(() => [null, false]));
  });

  it('says a reply comes from the service, and leaves out a port the protocol has not', () => {
    const d = { src: '10.244.1.5', sport: 53, dst: '10.244.2.7', dport: 40000 };
    expect(serviceClause({ ip: '10.96.0.10', port: 53, reply: true }, d)).toBe('from service 10.96.0.10:53 (pod 10.244.1.5:53)');
    expect(serviceClause({ ip: '10.96.0.10', port: null, reply: false }, { ...d, sport: null, dport: null })).toBe('to service 10.96.0.10 (pod 10.244.2.7)');
    expect(serviceClause({ ip: '10.96.0.10', port: 53, reply: false }, d, 'kube-system/coredns-7db6d8ff4d-x2x9q')).toBe(
      'to service 10.96.0.10:53 (pod kube-system/coredns-7db6d8ff4d-x2x9q)',
    );
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeKeys, Decoder, eachKey } from '../../src/pipeline/decode.js';
import { EVENT_FIELDS, EVENT_SIZE, EVENT_VERSION, KEY_FIELDS, KEY_SIZE } from '../../src/gen/record.js';
import { keyString } from '../../src/pipeline/keytable.js';
import { KEY_ENTRY_SIZE } from '../../src/pipeline/layout.js';
import { ReasonNames } from '../../src/pipeline/reasons.js';

// Real records from the kernel's ring buffer (scripts/record-golden.mjs, kernel 6.18): UDP to a
// closed port, an IPv6 MLD report, a TCP SYN into an iptables DROP rule, a UDP datagram with a
// forged 127.0.0.9 source, a DNS query into a DROP rule (with its payload), IPv6 multicast
// noise, and UDP over IPv6 to closed ports.
const golden = JSON.parse(readFileSync(new URL('../fixtures/golden-6.18.json', import.meta.url), 'utf8')) as {
  reasons: Array<[string, number]>;
  records: string[];
};
const names = new ReasonNames(golden.reasons);
const decodeOne = (hex: string) => {
  const r = new Decoder(0n).decode(Buffer.from(hex, 'hex'));
  expect(r.errors).toBe(0);
  const { record, at, ...d } = r.drops[0]!;
  expect([record?.length, at]).toEqual([hex.length / 2, 0]);
  return { ...d, key: keyString(record!, at), reason: names.name(d.reason), location: d.location.toString(16), payload: d.payload && Buffer.from(d.payload).toString('hex') };
};

/** The key string decodeKeys() reads from a key-map entry with these fields. */
function mapKey(k: { reason: number; netns: number; ifindex: number; sport: number; dport: number; l4: number; ipVersion: number; saddr: number[]; daddr: number[] }): string {
  const entry = Buffer.alloc(KEY_ENTRY_SIZE);
  entry.writeUInt32LE(k.reason, KEY_FIELDS.reason[0]);
  entry.writeUInt32LE(k.netns, KEY_FIELDS.netns[0]);
  entry.writeUInt32LE(k.ifindex, KEY_FIELDS.ifindex[0]);
  entry.writeUInt16LE(k.sport, KEY_FIELDS.sport[0]);
  entry.writeUInt16LE(k.dport, KEY_FIELDS.dport[0]);
  entry[KEY_FIELDS.l4_proto[0]] = k.l4;
  entry[KEY_FIELDS.ip_version[0]] = k.ipVersion;
  entry.set(k.saddr, KEY_FIELDS.saddr[0]);
  entry.set(k.daddr, KEY_FIELDS.daddr[0]);
  return decodeKeys(entry)[0]!.key;
}

describe('Decoder on golden records', () => {
  it('decodes an IPv4 UDP drop at a closed port', () => {
    expect(decodeOne(golden.records[0]!)).toEqual({
      monoDeltaNs: 2399830825622,
      location: 'ffffffff820490cc',
      locationLow: 0x820490cc | 0,
      reason: 'NO_SOCKET',
      netns: 4026532457,
      ifindex: 2,
      ifname: 'dtgvb',
      l3Proto: 0x0800,
      l4Proto: 17,
      src: '198.18.7.1',
      dst: '198.18.7.2',
      sport: 41000,
      dport: 5400,
      icmpType: null,
      icmpCode: null,
      pktLen: 14, // UDP header + "golden": the IP header was already pulled
      flags: 0x01 | 0x04,
      probe: 1,
      ctFlags: 0, // only NETFILTER_DROP carries conntrack state
      martianConf: 0x80, // log_martians read: off for all and for the device
      rpFilter: 0,
      neigh: null,
      service: null, // no DNAT on the skb
      stackId: -1, // no --stack
      payload: null,
      // the record starts with the kernel's per-key counter key, as its entry in the key map says it
      key: mapKey({ reason: 3, netns: 4026532457, ifindex: 2, sport: 41000, dport: 5400, l4: 17, ipVersion: 4, saddr: [198, 18, 7, 1], daddr: [198, 18, 7, 2] }),
    });
  });

  it('decodes a TCP SYN dropped by a rule', () => {
    expect(decodeOne(golden.records[2]!)).toMatchObject({
      reason: 'NETFILTER_DROP',
      ctFlags: 0x04 | 0x40, // conntrack loaded, no ct on the skb, first drop in this netns
      l4Proto: 6,
      src: '198.18.7.1',
      dst: '198.18.7.2',
      sport: 41001,
      dport: 8080,
      pktLen: 60,
    });
  });

  it('decodes ICMPv6 type and code, with no ports', () => {
    expect(decodeOne(golden.records[1]!)).toMatchObject({
      l3Proto: 0x86dd,
      l4Proto: 58,
      src: '::',
      dst: 'ff02::16',
      sport: null,
      dport: null,
      icmpType: 143, // MLDv2 report
      icmpCode: 0,
      martianConf: 0, // IPv6: no IPv4 device configuration
    });
  });

  it('decodes a forged loopback source', () => {
    expect(decodeOne(golden.records[3]!)).toMatchObject({ reason: 'IP_LOCALNET', src: '127.0.0.9', dst: '198.18.7.2', sport: 41002, dport: 5403 });
  });

  it('keeps the DNS payload of a port-53 drop', () => {
    expect(decodeOne(golden.records[4]!)).toMatchObject({
      reason: 'NETFILTER_DROP',
      sport: 41003,
      dport: 53,
      pktLen: 69,
      // header 1234 0100 0001 0000 0000 0000, then kube-dns.droptrace.test, type A, class IN
      payload: '123401000001000000000000086b7562652d646e730964726f70747261636504746573740000010001',
    });
    expect(Buffer.from(golden.records[4]!, 'hex').length).toBe(EVENT_SIZE + 41);
  });

  it('decodes IPv6 UDP', () => {
    expect(decodeOne(golden.records[8]!)).toMatchObject({ reason: 'NO_SOCKET', src: 'fd99::7:1', dst: 'fd99::7:2', sport: 41000, dport: 5406, flags: 0x02 | 0x04 });
  });

  it('decodes a whole batch and measures time from the clock base', () => {
    const buf = Buffer.from(golden.records.join(''), 'hex');
    const base = 2399830825622n;
    const r = new Decoder(base).decode(buf);
    expect(r.errors).toBe(0);
    expect(r.drops).toHaveLength(golden.records.length);
    expect(r.drops[0]!.monoDeltaNs).toBe(0);
    expect(r.drops[1]!.monoDeltaNs).toBe(2399964104001 - 2399830825622);
    expect(r.drops.map((d) => d.dport)).toEqual([5400, null, 8080, 5403, 53, null, null, 9, 5406, null]);
  });

  it('counts a record of another version as a decode error instead of guessing', () => {
    const buf = Buffer.from(golden.records[0]! + golden.records[1]!, 'hex');
    buf.writeUInt16LE(EVENT_VERSION + 1, EVENT_SIZE + EVENT_FIELDS.version[0]);
    const r = new Decoder(0n).decode(buf);
    expect(r.errors).toBe(1);
    expect(r.drops.map((d) => d.dport)).toEqual([5400]);
  });

  it('counts a record whose size field overruns the batch as a decode error', () => {
    const buf = Buffer.from(golden.records[0]! + golden.records[4]!, 'hex').subarray(0, EVENT_SIZE + 130);
    const r = new Decoder(0n).decode(buf);
    expect(r.drops.map((d) => d.dport)).toEqual([5400]);
    expect(r.errors).toBe(1);
  });

  it('counts a truncated tail as a decode error', () => {
    const buf = Buffer.from(golden.records[0]!, 'hex').subarray(0, EVENT_SIZE - 5);
    expect(new Decoder(0n).decode(buf)).toEqual({ drops: [], errors: 1 });
  });
});

describe('decodeKeys', () => {
  it('skips keys with nothing suppressed when asked, before building anything', () => {
    const buf = Buffer.alloc(2 * KEY_ENTRY_SIZE);
    buf.writeUInt32LE(12, KEY_FIELDS.reason[0]); // reason of key 1
    buf.writeBigUInt64LE(7n, KEY_SIZE); // count
    buf.writeUInt32LE(3, KEY_ENTRY_SIZE + KEY_FIELDS.reason[0]); // reason of key 2
    buf.writeBigUInt64LE(9n, KEY_ENTRY_SIZE + KEY_SIZE);
    buf.writeBigUInt64LE(5n, KEY_ENTRY_SIZE + KEY_SIZE + 8); // suppressed
    expect(decodeKeys(buf).map((k) => [k.reason, k.count, k.suppressed])).toEqual([
      [12, 7, 0],
      [3, 9, 5],
    ]);
    expect(decodeKeys(buf, { suppressedOnly: true }).map((k) => [k.reason, k.count, k.suppressed])).toEqual([[3, 9, 5]]);
  });

  it("is a string of the key's 52 bytes, two to a UTF-16 unit, never shown", () => {
    const k = mapKey({ reason: 3, netns: 0x01020304, ifindex: 2, sport: 0x1234, dport: 53, l4: 17, ipVersion: 4, saddr: [10, 0, 0, 1], daddr: [10, 0, 0, 2] });
    expect(k).toHaveLength(KEY_SIZE / 2);
    expect([...k].slice(0, 10).map((c) => c.charCodeAt(0))).toEqual([3, 0, 0x0304, 0x0102, 2, 0, 0x1234, 53, 17, 4 << 8]);
  });

  it('eachKey walks the same entries as decodeKeys, with one object', () => {
    const buf = Buffer.alloc(3 * KEY_ENTRY_SIZE);
    for (let i = 0; i < 3; i++) {
      buf.writeUInt32LE(10 + i, i * KEY_ENTRY_SIZE);
      buf[i * KEY_ENTRY_SIZE + KEY_FIELDS.ip_version[0]] = 4;
      buf[i * KEY_ENTRY_SIZE + KEY_FIELDS.saddr[0]] = 192 + i;
      buf.writeBigUInt64LE(BigInt(i), i * KEY_ENTRY_SIZE + KEY_SIZE + 8);
    }
    const seen: unknown[] = [];
    const objects = new Set<unknown>();
    for (const k of eachKey(buf, { suppressedOnly: true })) {
      objects.add(k);
      seen.push({ key: k.key, reason: k.reason, netns: k.netns, ifindex: k.ifindex, count: k.count, suppressed: k.suppressed, src: k.flowRecord.src });
    }
    expect(objects.size).toBe(1);
    expect(seen).toEqual(
      decodeKeys(buf, { suppressedOnly: true }).map((k) => ({ key: k.key, reason: k.reason, netns: k.netns, ifindex: k.ifindex, count: k.count, suppressed: k.suppressed, src: k.flowRecord.src })),
    );
    expect(seen.map((k) => (k as { src: string }).src)).toEqual(['193.0.0.0', '194.0.0.0']);
  });
});

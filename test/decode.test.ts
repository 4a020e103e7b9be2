import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Decoder } from '../src/decode.js';
import { EVENT_SIZE, EVENT_VERSION } from '../src/layout.js';
import { ReasonNames } from '../src/reasons.js';

// Real records from the kernel's ring buffer (scripts/record-golden.mjs, kernel 6.18): UDP to a
// closed port, a TCP SYN into an iptables DROP rule, an IPv6 neighbour solicitation, a UDP
// datagram with a forged 127.0.0.9 source, and UDP over IPv6 to closed ports.
const golden = JSON.parse(readFileSync(new URL('./fixtures/golden-6.18.json', import.meta.url), 'utf8')) as {
  reasons: Array<[string, number]>;
  records: string[];
};
const names = new ReasonNames(golden.reasons);
const decodeOne = (hex: string) => {
  const r = new Decoder(0n).decode(Buffer.from(hex, 'hex'));
  expect(r.errors).toBe(0);
  const d = r.drops[0]!;
  return { ...d, reason: names.name(d.reason), location: d.location.toString(16) };
};

describe('Decoder on golden records', () => {
  it('decodes an IPv4 UDP drop at a closed port', () => {
    expect(decodeOne(golden.records[0]!)).toEqual({
      monoDeltaNs: 1639040606050,
      location: 'ffffffff820490cc',
      reason: 'NO_SOCKET',
      netns: 4026532386,
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
    });
  });

  it('decodes a TCP SYN dropped by a rule', () => {
    expect(decodeOne(golden.records[1]!)).toMatchObject({
      reason: 'NETFILTER_DROP',
      l4Proto: 6,
      src: '198.18.7.1',
      dst: '198.18.7.2',
      sport: 41001,
      dport: 8080,
      pktLen: 60,
    });
  });

  it('decodes ICMPv6 type and code, with no ports', () => {
    expect(decodeOne(golden.records[2]!)).toMatchObject({
      l3Proto: 0x86dd,
      l4Proto: 58,
      src: '::',
      dst: 'ff02::1:ff8f:be63',
      sport: null,
      dport: null,
      icmpType: 135,
      icmpCode: 0,
    });
  });

  it('decodes a forged loopback source', () => {
    expect(decodeOne(golden.records[3]!)).toMatchObject({ reason: 'IP_LOCALNET', src: '127.0.0.9', dst: '198.18.7.2', sport: 41002, dport: 5403 });
  });

  it('decodes IPv6 UDP', () => {
    expect(decodeOne(golden.records[5]!)).toMatchObject({ reason: 'NO_SOCKET', src: 'fd99::7:1', dst: 'fd99::7:2', sport: 41000, dport: 5406, flags: 0x02 | 0x04 });
  });

  it('decodes a whole batch and measures time from the clock base', () => {
    const buf = Buffer.from(golden.records.join(''), 'hex');
    const base = 1639040606050n;
    const r = new Decoder(base).decode(buf);
    expect(r.errors).toBe(0);
    expect(r.drops).toHaveLength(golden.records.length);
    expect(r.drops[0]!.monoDeltaNs).toBe(0);
    expect(r.drops[1]!.monoDeltaNs).toBe(1639208139886 - 1639040606050);
  });

  it('counts a record of another version as a decode error instead of guessing', () => {
    const buf = Buffer.from(golden.records[0]! + golden.records[1]!, 'hex');
    buf.writeUInt32LE(EVENT_VERSION + 1, EVENT_SIZE + 16);
    const r = new Decoder(0n).decode(buf);
    expect(r.errors).toBe(1);
    expect(r.drops.map((d) => d.dport)).toEqual([5400]);
  });

  it('counts a truncated tail as a decode error', () => {
    const buf = Buffer.from(golden.records[0]!, 'hex').subarray(0, EVENT_SIZE - 5);
    expect(new Decoder(0n).decode(buf)).toEqual({ drops: [], errors: 1 });
  });
});

/**
 * End to end, as root: packets whose headers are short, lie about their length or are not
 * IP where the kernel drops them. Each drop must show only what the packet had: its
 * addresses and ports when they are in it, none when they are not (with `truncated`), never
 * bytes from beyond its end. Frames are written raw into the sender's veth end.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, dstopts, eth, ipv4, ipv6, macOf, sendFrames, udp } from '../helpers/frames.js';
import { inNs, makePair, sendUdp } from '../helpers/netns.js';
import type { Pair } from '../helpers/netns.js';
import { schemaErrors } from '../helpers/schema.js';
import { drops, startStream, sumCount } from '../helpers/stream.js';
import type { Line } from '../helpers/stream.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('skipping header-bounds end-to-end tests: they need root (BPF programs, network namespaces)');

const N = 3;
const IPPROTO_UDP = 17;
const IPPROTO_DSTOPTS = 60;

describe.skipIf(!isRoot)('headers read only from the packet, end to end', () => {
  let p: Pair;
  let macA: string;
  let macB: string;
  beforeAll(() => {
    p = makePair();
    macA = macOf(p.a, p.vethA);
    macB = macOf(p.b, p.vethB);
  });
  afterAll(() => p?.destroy());

  /**
   * Streams the receiver's drops while `send` runs; returns the drop lines of (reason,
   * location) on the receiver's veth once they add up to N.
   */
  async function dropsOf(reason: string, location: string, send: () => void, ifname = p.vethB, extra: string[] = []): Promise<Line[]> {
    const s = startStream(['--netns', String(p.netnsB), ...extra]);
    try {
      await s.ready;
      send();
      const mine = (l: Line) => l.reason === reason && l.location === location && l.ifname === ifname;
      await s.until((ls) => sumCount(drops(ls).filter(mine)) >= N);
      await s.stop();
      const got = drops(s.lines).filter(mine);
      expect(sumCount(got)).toBe(N);
      expect(schemaErrors(s.lines)).toEqual([]);
      return got;
    } finally {
      await s.stop();
    }
  }

  const toB = (type: number, l3: Buffer, tags: Array<[number, number]> = []) => Buffer.concat([eth(macB, macA, type, tags), l3]);
  const send = (frame: Buffer) => () => sendFrames(p.a, p.vethA, [frame], N);
  const v4 = (sport: number, dport: number, body = Buffer.from('droptrace')) => ipv4({ src: p.ipA, dst: p.ipB, proto: IPPROTO_UDP, payload: udp(sport, dport, body) });
  const flow4 = (sport?: number, dport?: number) =>
    sport === undefined ? { proto: 'udp', src: p.ipA, dst: p.ipB } : { proto: 'udp', src: p.ipA, dst: p.ipB, sport, dport };

  it('an IPv4 header cut short: no flow, truncated', async () => {
    // the first 12 bytes of a good header: version 4, IHL 5, and the rest never arrives
    const got = await dropsOf('IP_INHDR', 'ip_rcv_core', send(toB(ETH_P_IP, v4(40100, 5400).subarray(0, 12))));
    for (const d of got) expect([d.flow, d.truncated]).toEqual([null, true]);
  });

  it('a runt for another host, dropped before its header is pulled: no flow, truncated', async () => {
    const frame = Buffer.concat([eth('02:00:5e:00:00:99', macA, ETH_P_IP), v4(40101, 5401).subarray(0, 12)]);
    const got = await dropsOf('OTHERHOST', 'ip_rcv_core', send(frame));
    for (const d of got) expect([d.flow, d.truncated]).toEqual([null, true]);
  });

  it('an IPv4 total length past the packet: the addresses and ports it has', async () => {
    const l3 = ipv4({ src: p.ipA, dst: p.ipB, proto: IPPROTO_UDP, payload: udp(40102, 5402, Buffer.alloc(0)), totLen: 200 });
    const got = await dropsOf('PKT_TOO_SMALL', 'ip_rcv_core', send(toB(ETH_P_IP, l3)));
    for (const d of got) expect([d.flow, d.truncated]).toEqual([flow4(40102, 5402), undefined]);
  });

  it('an IPv4 header length past the packet: addresses, no ports, truncated', async () => {
    // IHL 15 (60 bytes) and a total length of 64; 20 header bytes and 4 that would be ports
    // arrive: L4 starts past them
    const hdr = ipv4({ src: p.ipA, dst: p.ipB, proto: IPPROTO_UDP, payload: Buffer.alloc(4), ihl: 15, totLen: 64 });
    const frame = toB(ETH_P_IP, Buffer.concat([hdr.subarray(0, 20), udp(40103, 5403, Buffer.alloc(0)).subarray(0, 4)]));
    const got = await dropsOf('IP_INHDR', 'ip_rcv_core', send(frame));
    for (const d of got) expect([d.flow, d.truncated]).toEqual([flow4(), true]);
  });

  it('a UDP header cut to two bytes: addresses, no ports, truncated', async () => {
    const l3 = ipv4({ src: p.ipA, dst: p.ipB, proto: IPPROTO_UDP, payload: udp(40104, 5404, Buffer.alloc(0)).subarray(0, 2) });
    const got = await dropsOf('NOT_SPECIFIED', '__udp4_lib_rcv', send(toB(ETH_P_IP, l3)));
    for (const d of got) expect([d.flow, d.truncated]).toEqual([flow4(), true]);
  });

  it('the same under the classic tracepoint (headers read with bpf_probe_read_kernel)', async () => {
    const l3 = ipv4({ src: p.ipA, dst: p.ipB, proto: IPPROTO_UDP, payload: udp(40112, 5412, Buffer.alloc(0)).subarray(0, 2) });
    const got = await dropsOf('NOT_SPECIFIED', '__udp4_lib_rcv', send(toB(ETH_P_IP, l3)), p.vethB, ['--hook', 'tracepoint/skb/kfree_skb']);
    for (const d of got) expect([d.flow, d.truncated]).toEqual([flow4(), true]);
  });

  it('a UDP length past the packet (PKT_TOO_SMALL): its ports are there and shown', async () => {
    const u = udp(40105, 5405, Buffer.alloc(0));
    u.writeUInt16BE(100, 4);
    const got = await dropsOf('PKT_TOO_SMALL', '__udp4_lib_rcv', send(toB(ETH_P_IP, ipv4({ src: p.ipA, dst: p.ipB, proto: IPPROTO_UDP, payload: u }))));
    for (const d of got) expect([d.flow, d.truncated]).toEqual([flow4(40105, 5405), undefined]);
  });

  const v6 = (payload: Buffer) => ipv6({ src: p.ip6A, dst: p.ip6B, next: IPPROTO_DSTOPTS, payload });
  const udp6 = (sport: number, dport: number) => udp(sport, dport, Buffer.from('droptrace'), { src: p.ip6A, dst: p.ip6B });

  it('an IPv6 extension header claiming 2 KiB in a short packet: addresses, no ports, truncated', async () => {
    const opts = dstopts(IPPROTO_UDP);
    opts[1] = 255;
    const got = await dropsOf('NOT_SPECIFIED', 'ipv6_destopt_rcv', send(toB(ETH_P_IPV6, v6(Buffer.concat([opts, udp6(40106, 5406)])))));
    for (const d of got) expect([d.flow, d.truncated]).toEqual([{ proto: 'ip-60', src: p.ip6A, dst: p.ip6B }, true]);
  });

  it('an IPv6 extension chain longer than the walk: addresses, no ports, truncated', async () => {
    const chain = [...Array.from({ length: 8 }, () => dstopts(IPPROTO_DSTOPTS)), dstopts(IPPROTO_UDP)];
    const got = await dropsOf('NO_SOCKET', '__udp6_lib_rcv', send(toB(ETH_P_IPV6, v6(Buffer.concat([...chain, udp6(40107, 5407)])))));
    for (const d of got) expect([d.flow, d.truncated]).toEqual([{ proto: 'ip-60', src: p.ip6A, dst: p.ip6B }, true]);
  });

  it('an IPv6 extension chain within the walk: the ports after it', async () => {
    const chain = [dstopts(IPPROTO_DSTOPTS, 1), dstopts(IPPROTO_DSTOPTS), dstopts(IPPROTO_UDP)];
    const got = await dropsOf('NO_SOCKET', '__udp6_lib_rcv', send(toB(ETH_P_IPV6, v6(Buffer.concat([...chain, udp6(40108, 5408)])))));
    for (const d of got) expect([d.flow, d.truncated]).toEqual([{ proto: 'udp', src: p.ip6A, dst: p.ip6B, sport: 40108, dport: 5408 }, undefined]);
  });

  it('an 802.1Q-tagged frame no VLAN device takes: the inner IPv4 flow', async () => {
    // the receive path moves the tag out of the packet; the drop sees skb->protocol IPv4
    const got = await dropsOf('OTHERHOST', 'ip_rcv_core', send(toB(ETH_P_IP, v4(40109, 5409), [[ETH_P_8021Q, 100]])));
    for (const d of got) expect([d.flow, d.truncated]).toEqual([flow4(40109, 5409), undefined]);
  });

  it('a stacked (802.1ad + 802.1Q) frame left with its inner tag: no flow, not read as IP', async () => {
    // inner TCI 0x4564 starts with the byte 0x45, an IPv4 version and header length to a
    // parser that guesses from the first byte
    const frame = toB(ETH_P_IP, v4(40110, 5410), [
      [ETH_P_8021AD, 100],
      [ETH_P_8021Q, 0x4564],
    ]);
    const got = await dropsOf('UNHANDLED_PROTO', '__netif_receive_skb_core', send(frame));
    for (const d of got) expect([d.flow, d.truncated]).toEqual([null, undefined]);
  });

  it('traffic of a VLAN device (tag offloaded) dropped by a rule: the exact flow on the VLAN device', async (ctx) => {
    const n = Number(p.ipA.split('.')[2]);
    const [vA, vB, ipA, ipB] = [`${p.vethA}.7`, `${p.vethB}.7`, `198.19.${n}.1`, `198.19.${n}.2`];
    const made = spawnSync('ip', ['netns', 'exec', p.a, 'ip', 'link', 'add', 'link', p.vethA, 'name', vA, 'type', 'vlan', 'id', '7'], { encoding: 'utf8' });
    if (made.status !== 0) {
      console.warn(`skipping the VLAN device case: this kernel makes no VLAN devices (${made.stderr.trim()}; CONFIG_VLAN_8021Q)`);
      ctx.skip();
    }
    for (const [ns, dev, vdev, ip] of [
      [p.a, p.vethA, vA, ipA],
      [p.b, p.vethB, vB, ipB],
    ] as const) {
      if (ns === p.b) inNs(ns, 'ip', ['link', 'add', 'link', dev, 'name', vdev, 'type', 'vlan', 'id', '7']);
      inNs(ns, 'ip', ['addr', 'add', `${ip}/24`, 'dev', vdev]);
      inNs(ns, 'ip', ['link', 'set', vdev, 'up']);
    }
    inNs(p.b, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '5411', '-j', 'DROP']);
    try {
      sendUdp(p.a, ipA, 40111, ipB, 9, 1); // resolve the neighbour first
      const got = await dropsOf('NETFILTER_DROP', 'nft_do_chain', () => sendUdp(p.a, ipA, 40111, ipB, 5411, N), vB);
      for (const d of got) expect([d.flow, d.truncated]).toEqual([{ proto: 'udp', src: ipA, dst: ipB, sport: 40111, dport: 5411 }, undefined]);
    } finally {
      inNs(p.b, 'iptables', ['-F', 'INPUT']);
    }
  });
});

/**
 * Hand-made Ethernet frames for end-to-end tests that need packets no socket would send (runt
 * IP headers, short L4 headers, bogus IPv6 extension chains, VLAN tags), and a sender that
 * writes them unchanged into a device through an AF_PACKET socket (Node has none: Debian's
 * python3, stdlib only). Checksums are computed so a frame is dropped for what the test made
 * wrong in it, not for a bad checksum.
 */
import { inNs } from './netns.js';

export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;
export const ETH_P_8021Q = 0x8100;
export const ETH_P_8021AD = 0x88a8;

const u16 = (v: number) => Buffer.from([(v >> 8) & 0xff, v & 0xff]);

export function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

export function ip4Bytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

export function ip6Bytes(ip: string): Buffer {
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.concat(groups.map((g) => u16(parseInt(g, 16))));
}

function csum(b: Buffer): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** Ethernet header; `tags` are [TPID, TCI] pairs, outermost first. */
export function eth(dst: string, src: string, type: number, tags: Array<[number, number]> = []): Buffer {
  return Buffer.concat([macBytes(dst), macBytes(src), ...tags.flatMap(([tpid, tci]) => [u16(tpid), u16(tci)]), u16(type)]);
}

/** An IPv4 header (no options unless `ihl` says more, then zero-filled) followed by `payload`. */
export function ipv4(o: { src: string; dst: string; proto: number; payload: Buffer; totLen?: number; ihl?: number }): Buffer {
  const ihl = o.ihl ?? 5;
  const hdr = Buffer.alloc(ihl * 4);
  hdr[0] = 0x40 | ihl;
  hdr.writeUInt16BE(o.totLen ?? ihl * 4 + o.payload.length, 2);
  hdr.writeUInt16BE(1, 4);
  hdr[8] = 64;
  hdr[9] = o.proto;
  ip4Bytes(o.src).copy(hdr, 12);
  ip4Bytes(o.dst).copy(hdr, 16);
  hdr.writeUInt16BE(csum(hdr), 10);
  return Buffer.concat([hdr, o.payload]);
}

/** An IPv6 header followed by `payload` (extension headers included); `next` the first next-header. */
export function ipv6(o: { src: string; dst: string; next: number; payload: Buffer }): Buffer {
  const hdr = Buffer.alloc(40);
  hdr[0] = 0x60;
  hdr.writeUInt16BE(o.payload.length, 4);
  hdr[6] = o.next;
  hdr[7] = 64;
  ip6Bytes(o.src).copy(hdr, 8);
  ip6Bytes(o.dst).copy(hdr, 24);
  return Buffer.concat([hdr, o.payload]);
}

/** A UDP header and payload; the checksum over the IPv6 pseudo-header when `v6` is given (IPv4: none). */
export function udp(sport: number, dport: number, payload: Buffer, v6?: { src: string; dst: string }): Buffer {
  const d = Buffer.concat([u16(sport), u16(dport), u16(8 + payload.length), u16(0), payload]);
  if (v6) {
    const pseudo = Buffer.concat([ip6Bytes(v6.src), ip6Bytes(v6.dst), Buffer.from([0, 0]), u16(d.length), Buffer.from([0, 0, 0, 17])]);
    d.writeUInt16BE(csum(Buffer.concat([pseudo, d])) || 0xffff, 6);
  }
  return d;
}

/**
 * One IPv6 destination-options header of 8 * (units + 1) bytes, filled by one option: PadN
 * in 8 bytes; past that an experimental option (RFC 4727, "skip if unknown"), as the kernel
 * refuses more than 7 bytes of padding in a row.
 */
export function dstopts(next: number, units = 0): Buffer {
  const h = Buffer.alloc(8 * (units + 1));
  h[0] = next;
  h[1] = units;
  h[2] = units === 0 ? 1 : 0x1e;
  h[3] = h.length - 4;
  return h;
}

/** Writes each frame as is into `dev` in namespace `ns`, `count` times over. */
export function sendFrames(ns: string, dev: string, frames: Buffer[], count = 1): void {
  const py = `
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
frames = [bytes.fromhex(h) for h in sys.argv[3:]]
for _ in range(int(sys.argv[2])):
    for f in frames:
        s.send(f)
`;
  inNs(ns, '/usr/bin/python3', ['-c', py, dev, String(count), ...frames.map((f) => f.toString('hex'))]);
}

export function macOf(ns: string, dev: string): string {
  return inNs(ns, 'cat', [`/sys/class/net/${dev}/address`]).trim();
}

/**
 * Overlays on a namespace pair (src/lab/pair.ts): a real VXLAN device in each namespace, the
 * "nodes" talking over the veth and the "pods" inside the tunnel, as flannel and Cilium's
 * VXLAN mode set them up; and a hand-made Geneve datagram, for kernels without the geneve
 * module. Addresses stay in 198.18.0.0/15 and fd99::/16; everything goes with the namespaces.
 * Used by test/pipeline/overlay.e2e.test.ts and scripts/record-overlay.mjs.
 */
import { execFileSync } from 'node:child_process';
import type { NsPair } from './pair.js';

export interface VxlanOptions {
  /** the VNI; also the third byte of the inner IPv4 /24 (198.19.<vni & 255>.1/.2) */
  vni: number;
  /** UDP destination port: 4789 (IANA) or 8472 (Linux default, flannel) */
  dstport: number;
  /** device names in a and b (default vxa<vni>, vxb<vni>) */
  devs?: [string, string];
  /** only a gets a device: b has nothing on dstport (a VTEP port mismatch) */
  onlyA?: boolean;
  /** inner IPv6 too (fd99:<vni hex>::1/.2); else IPv6 is off on the devices (no MLD chatter) */
  ipv6?: boolean;
}

export interface Vxlan {
  devA: string;
  devB: string;
  /** the pods' addresses, inside the tunnel */
  innerA: string;
  innerB: string;
  inner6A: string | null;
  inner6B: string | null;
}

const run = (args: string[], input?: string) => execFileSync('ip', args, { stdio: ['pipe', 'pipe', 'pipe'], ...(input ? { input } : {}) });

/** VXLAN devices over the pair's veth, with permanent inner neighbours (no ARP inside the tunnel). */
export function addVxlan(p: NsPair, o: VxlanOptions): Vxlan {
  const [devA, devB] = o.devs ?? [`vxa${o.vni}`, `vxb${o.vni}`];
  const net = o.vni & 255;
  const v = { devA, devB, innerA: `198.19.${net}.1`, innerB: `198.19.${net}.2`, inner6A: null as string | null, inner6B: null as string | null };
  if (o.ipv6) {
    v.inner6A = `fd99:${o.vni.toString(16)}::1`;
    v.inner6B = `fd99:${o.vni.toString(16)}::2`;
  }
  const macA = `02:dd:ee:00:${(net >> 4).toString(16)}${(net & 15).toString(16)}:01`;
  const macB = macA.slice(0, -2) + '02';
  const sides = [
    { ns: p.a, dev: devA, mac: macA, local: p.ipA, remote: p.ipB, veth: p.vethA, ip: v.innerA, ip6: v.inner6A, peer: v.innerB, peer6: v.inner6B, peerMac: macB },
    { ns: p.b, dev: devB, mac: macB, local: p.ipB, remote: p.ipA, veth: p.vethB, ip: v.innerB, ip6: v.inner6B, peer: v.innerA, peer6: v.inner6A, peerMac: macA },
  ];
  for (const s of o.onlyA ? sides.slice(0, 1) : sides) {
    run(['-n', s.ns, 'link', 'add', s.dev, 'address', s.mac, 'type', 'vxlan', 'id', String(o.vni), 'dstport', String(o.dstport), 'local', s.local, 'remote', s.remote, 'dev', s.veth]);
    if (!o.ipv6) run(['netns', 'exec', s.ns, 'sysctl', '-qw', `net.ipv6.conf.${s.dev}.disable_ipv6=1`]);
    const lines = [`addr add ${s.ip}/24 dev ${s.dev}`];
    if (s.ip6) lines.push(`addr add ${s.ip6}/64 dev ${s.dev} nodad`);
    lines.push(`link set ${s.dev} up`, `neigh replace ${s.peer} lladdr ${s.peerMac} dev ${s.dev} nud permanent`);
    if (s.peer6) lines.push(`neigh replace ${s.peer6} lladdr ${s.peerMac} dev ${s.dev} nud permanent`);
    run(['-n', s.ns, '-batch', '-'], lines.join('\n'));
  }
  return v;
}

export interface GeneveDatagram {
  /** outer: from the namespace's own address (IPv4 or IPv6) and this port, to dst:6081 */
  src: string;
  sport: number;
  dst: string;
  vni: number;
  /** bytes of Geneve options (a multiple of 4, at most 252) */
  optionBytes: number;
  /** inner IPv4 ICMP echo request */
  innerSrc: string;
  innerDst: string;
  count: number;
}

/**
 * Sends hand-made Geneve datagrams (UDP to 6081) from namespace `ns`: Geneve header with
 * options, Ethernet, IPv4, ICMP echo request. Nobody listens on 6081 on the other side: each
 * is dropped there (NO_SOCKET) with its inner packet intact.
 */
export function sendGeneve(ns: string, g: GeneveDatagram): void {
  const py = `
import socket, struct, sys
a = sys.argv
src, sport, dst, vni, opt, isrc, idst, n = a[1], int(a[2]), a[3], int(a[4]), int(a[5]), a[6], a[7], int(a[8])
def csum(b):
    if len(b) % 2: b += b'\\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
icmp = struct.pack('!BBHHH', 8, 0, 0, 0x77, 1) + b'droptrace'
icmp = icmp[:2] + struct.pack('!H', csum(icmp)) + icmp[4:]
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0, socket.inet_aton(isrc), socket.inet_aton(idst))
ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
eth = bytes.fromhex('02dd00000002' '02dd00000001' '0800')
# Geneve: version 0 and options length (4-byte words), flags, protocol 0x6558 (Ethernet), VNI
options = b''.join(struct.pack('!HBB', 0x0102, 0x01, 0x01) + b'\\0' * 4 for _ in range(opt // 8)) + b'\\0' * (opt % 8)
gen = struct.pack('!BBH', opt // 4, 0, 0x6558) + struct.pack('!I', vni << 8) + options
fam = socket.AF_INET6 if ':' in dst else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind((src, sport))
for _ in range(n): s.sendto(gen + eth + ip + icmp, (dst, 6081))
`;
  execFileSync('ip', ['netns', 'exec', ns, 'python3', '-c', py, g.src, String(g.sport), g.dst, String(g.vni), String(g.optionBytes), g.innerSrc, g.innerDst, String(g.count)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

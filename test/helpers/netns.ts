/**
 * Throw-away network namespaces for end-to-end tests: two namespaces joined by a veth, with
 * 198.18.0.0/15 and fd99::/16 addresses only. Everything is deleted in `destroy()`, which tests
 * call from afterAll/finally so a failing test cleans up too.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';

export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(input ? { input } : {}) });
}

export function inNs(ns: string, cmd: string, args: string[], input?: string): string {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args], input);
}

export interface Pair {
  a: string;
  b: string;
  /** veth ends: vethA lives in a, vethB in b */
  vethA: string;
  vethB: string;
  ipA: string;
  ipB: string;
  ip6A: string;
  ip6B: string;
  netnsA: number;
  netnsB: number;
  destroy(): void;
}

let counter = 0;

/** Two namespaces `dtt<id>a`/`dtt<id>b`, veth `dta<id>`/`dtb<id>`, 198.18.<n>.1/.2 and fd99::<n>:1/2. */
export function makePair(): Pair {
  const id = randomBytes(3).toString('hex');
  const n = (counter++ % 200) + 20 + (randomBytes(1)[0]! % 30);
  const a = `dtt${id}a`;
  const b = `dtt${id}b`;
  const vethA = `dta${id}`;
  const vethB = `dtb${id}`;
  const ipA = `198.18.${n}.1`;
  const ipB = `198.18.${n}.2`;
  const ip6A = `fd99::${n}:1`;
  const ip6B = `fd99::${n}:2`;
  const destroy = () => {
    for (const ns of [a, b]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  };
  try {
    sh('ip', ['netns', 'add', a]);
    sh('ip', ['netns', 'add', b]);
    sh('ip', ['link', 'add', vethA, 'netns', a, 'type', 'veth', 'peer', 'name', vethB, 'netns', b]);
    for (const [ns, dev, ip, ip6] of [
      [a, vethA, ipA, ip6A],
      [b, vethB, ipB, ip6B],
    ] as const) {
      inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
      inNs(ns, 'ip', ['addr', 'add', `${ip}/24`, 'dev', dev]);
      inNs(ns, 'ip', ['-6', 'addr', 'add', `${ip6}/112`, 'dev', dev, 'nodad']);
      inNs(ns, 'ip', ['link', 'set', dev, 'up']);
    }
    return {
      a,
      b,
      vethA,
      vethB,
      ipA,
      ipB,
      ip6A,
      ip6B,
      netnsA: statSync(`/run/netns/${a}`).ino,
      netnsB: statSync(`/run/netns/${b}`).ino,
      destroy,
    };
  } catch (e) {
    destroy();
    throw e;
  }
}

/** Sends `count` UDP datagrams from namespace `ns`, from `src:sport` to `dst:dport`, and waits for it. */
export function sendUdp(ns: string, src: string, sport: number, dst: string, dport: number, count: number): void {
  const js = `
    const s = require('node:dgram').createSocket(${JSON.stringify(dst.includes(':') ? 'udp6' : 'udp4')});
    s.bind(${sport}, ${JSON.stringify(src)}, async () => {
      for (let i = 0; i < ${count}; i++) await new Promise((r, j) => s.send('droptrace', ${dport}, ${JSON.stringify(dst)}, (e) => e ? j(e) : r()));
      s.close();
    });`;
  inNs(ns, process.execPath, ['-e', js]);
}

/**
 * Sends `count` raw IPv4/UDP datagrams with a forged source address from namespace `ns`
 * (Node has no raw sockets: Debian's python3, stdlib only).
 */
export function sendSpoofedUdp(ns: string, src: string, dst: string, sport: number, dport: number, count: number): void {
  const py = `
import socket, struct, sys
src, dst, sport, dport, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
payload = b'droptrace'
udp = struct.pack('!HHHH', sport, dport, 8 + len(payload), 0) + payload
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
hdr = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
hdr = hdr[:10] + struct.pack('!H', csum(hdr)) + hdr[12:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for _ in range(count):
    s.sendto(hdr + udp, (dst, 0))
`;
  inNs(ns, '/usr/bin/python3', ['-c', py, src, dst, String(sport), String(dport), String(count)]);
}

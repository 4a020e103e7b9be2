/**
 * Throw-away network namespaces for end-to-end tests: the lab's namespace pair (two namespaces
 * joined by a veth, 198.18.0.0/15 and fd99::/16 addresses only). Everything is deleted in
 * `destroy()`, which tests call from afterAll/finally so a failing test cleans up too.
 */
import { execFileSync } from 'node:child_process';
import { createPair } from '../../src/lab/pair.js';
import type { NsPair, PairOptions } from '../../src/lab/pair.js';
import { senderCommand } from '../../src/lab/senders.js';

export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(input ? { input } : {}) });
}

export function inNs(ns: string, cmd: string, args: string[], input?: string): string {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args], input);
}

export type Pair = NsPair;

/** Two namespaces `dtt<id>a`/`dtt<id>b` joined by a veth, 198.18.<n>.1/.2 and fd99::<n>:1/2 (src/lab/pair.ts). */
export function makePair(opts: PairOptions = {}): Pair {
  return createPair({ prefix: 'dtt', ...opts });
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
  const [python, args] = senderCommand('spoof', [src, dst, sport, dport, count]);
  inNs(ns, python, args);
}

/** The namespaces the bench floods, the flood generator (bench/flood.c) and the exact count of what it dropped. */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createPair } from '../src/lab/pair.js';
import { exited, state, track } from './cleanup.js';
import { MANY_BASE_PORT } from './options.js';
import type { BenchOptions } from './options.js';
import { inNs } from './proc.js';

export const ROOT = join(import.meta.dirname, '..', '..');

export interface BenchNs {
  a: string;
  b: string;
  ipA: string;
  ipB: string;
  vethA: string;
  vethB: string;
  /** the receiver's netns inode */
  inode: number;
}

export function makeNamespaces(port: number, manyFlows: number): BenchNs {
  const id = randomBytes(3).toString('hex');
  const p = createPair({
    names: [`dtbench-${id}-a`, `dtbench-${id}-b`],
    devs: [`dtba${id}`, `dtbb${id}`],
    subnet: 100 + (randomBytes(1)[0]! % 100),
    // no IPv6: no MLD/ND chatter counted as drops in the receiver next to the flood
    ipv6: false,
    // a permanent neighbour entry: no ARP, no neighbour-queue drops at the start of a run
    neighbours: 'a',
    drop: [
      { proto: 'udp', dport: port },
      { proto: 'udp', dport: [MANY_BASE_PORT, MANY_BASE_PORT + manyFlows - 1] },
    ],
  });
  state.pair = p;
  return { a: p.a, b: p.b, ipA: p.ipA, ipB: p.ipB, vethA: p.vethA, vethB: p.vethB, inode: p.netnsB };
}

/** Packets the DROP rule of a port (or of the many-flows port range) matched since the last zeroing (exact). */
export function ruleCount(ns: string, port: number, manyFlows = 1): number {
  const out = inNs(ns, 'iptables', ['-L', 'INPUT', '-v', '-x', '-n']);
  const match = manyFlows > 1 ? `dpts:${port}:${port + manyFlows - 1}` : `dpt:${port}`;
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[2] === 'DROP' && new RegExp(`${match}(\\s|$)`).test(line)) return Number(f[0]);
  }
  throw new Error(`no DROP rule for udp ${match} in ${ns}:\n${out}`);
}

export function compileFlood(dir: string): string {
  const bin = join(dir, 'flood');
  const r = spawnSync('cc', ['-O2', '-Wall', '-o', bin, join(ROOT, 'bench', 'flood.c')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cc bench/flood.c failed:\n${r.stderr}`);
  return bin;
}

/** What bench/flood.c prints when it is done. */
export interface FloodResult {
  seconds: number;
  sent: number;
  errors: number;
  cpu_s: number;
}

export async function flood(o: BenchOptions, ns: BenchNs, bin: string, seconds: number, flows = 1): Promise<FloodResult> {
  const port = flows > 1 ? MANY_BASE_PORT : o.port;
  const child = track(spawn('ip', ['netns', 'exec', ns.a, bin, ns.ipB, String(port), String(seconds), String(o.cpu), String(flows)], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const r = await exited(child);
  if (r.code !== 0) throw new Error(`flood exited with ${r.code ?? r.signal}: ${err.trim()}`);
  return JSON.parse(out.trim().split('\n').pop() ?? '') as FloodResult;
}

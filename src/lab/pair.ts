/**
 * One throw-away namespace pair: two network namespaces joined by a veth, addressed in
 * 198.18.0.0/15 and fd99::/16 only, so nothing leaves the machine. Shared by the lab, the
 * end-to-end tests, the bench, the kernel matrix and the soak script (through pair-cli.ts).
 *
 * Built with `ip -batch` (three processes for the whole pair: the kernel matrix runs in slow
 * emulated guests, where every process costs). `destroy()` is synchronous and idempotent, so
 * it serves `finally`, signal handlers and process exit alike, and it kills what still runs
 * inside the namespaces first: a namespace with a process in it outlives `ip netns del`.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { DroptraceError } from '../errors.js';

/** An iptables DROP rule in b's INPUT chain: one port, or a range `[first, last]`. */
export interface DropRule {
  proto: 'udp' | 'tcp';
  dport: number | [number, number];
}

export interface PairOptions {
  /** namespace names; default `<prefix><id>a` and `<prefix><id>b` */
  names?: [string, string];
  /** prefix of the default names (default `dtp`) */
  prefix?: string;
  /** veth ends, in a and in b (at most 15 characters); default `dva<id>`, `dvb<id>` */
  devs?: [string, string];
  /** the third byte of the IPv4 /24 and the group of the IPv6 /112 (198.18.<n>.1, fd99::<n>:1); default random */
  subnet?: number;
  /** the IPv4 network of the /24s: 198.18 (default) or 198.19 */
  net4?: '198.18' | '198.19';
  /** explicit addresses (with their prefix lengths) instead of the /24 and /112 from `subnet` */
  addrs?: { ipA: string; ipB: string; len4: number; ip6A: string; ip6B: string; len6: number };
  /** false: IPv6 off in both namespaces (no MLD/ND chatter next to a measured flood) */
  ipv6?: boolean;
  /** fixed MACs for a and b (default: derived from the id, locally administered) */
  macs?: [string, string];
  /**
   * permanent neighbour entries, so no ARP/NDISC runs (its queues drop bursts of their own):
   * 'both' (default), 'a' (a knows b only) or 'none'
   */
  neighbours?: 'both' | 'a' | 'none';
  /** DROP rules in b's INPUT chain */
  drop?: DropRule[];
}

export interface NsPair {
  /** namespace names: a sends, b receives (where DROP rules live) */
  a: string;
  b: string;
  /** veth ends: vethA lives in a, vethB in b */
  vethA: string;
  vethB: string;
  macA: string;
  macB: string;
  ipA: string;
  ipB: string;
  ip6A: string;
  ip6B: string;
  /** the subnet number the addresses were made from */
  subnet: number;
  /** namespace inode numbers (what droptrace reports as `netns`) */
  netnsA: number;
  netnsB: number;
  destroy(): void;
}

/** Everything about a pair that is decided before a single command runs. */
export interface PairPlan extends Omit<NsPair, 'netnsA' | 'netnsB' | 'destroy'> {
  len4: number;
  len6: number;
  ipv6: boolean;
  neighbours: 'both' | 'a' | 'none';
  drop: DropRule[];
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const DEV = /^[A-Za-z0-9_.-]{1,15}$/;

function pairError(message: string): DroptraceError {
  return new DroptraceError('E_PAIR', 'runtime', `namespace pair: ${message}`);
}

export function planPair(o: PairOptions = {}): PairPlan {
  const id = randomBytes(3).toString('hex');
  const prefix = o.prefix ?? 'dtp';
  const [a, b] = o.names ?? [`${prefix}${id}a`, `${prefix}${id}b`];
  const [vethA, vethB] = o.devs ?? [`dva${id}`, `dvb${id}`];
  for (const n of [a, b]) if (!NAME.test(n)) throw pairError(`bad namespace name "${n}"`);
  for (const d of [vethA, vethB]) if (!DEV.test(d)) throw pairError(`bad device name "${d}" (at most 15 letters, digits, _ . -)`);
  const subnet = o.subnet ?? 20 + (randomBytes(1)[0]! % 230);
  if (!Number.isInteger(subnet) || subnet < 0 || subnet > 255) throw pairError(`subnet wants 0..255, got ${subnet}`);
  const net4 = o.net4 ?? '198.18';
  const addrs = o.addrs ?? { ipA: `${net4}.${subnet}.1`, ipB: `${net4}.${subnet}.2`, len4: 24, ip6A: `fd99::${subnet}:1`, ip6B: `fd99::${subnet}:2`, len6: 112 };
  const mac = (x: number) => `02:dd:${id.slice(0, 2)}:${id.slice(2, 4)}:${id.slice(4, 6)}:0${x}`;
  const [macA, macB] = o.macs ?? [mac(1), mac(2)];
  return { a, b, vethA, vethB, macA, macB, ...addrs, subnet, ipv6: o.ipv6 ?? true, neighbours: o.neighbours ?? 'both', drop: o.drop ?? [] };
}

/** One command of the build: `ip` reading a batch on stdin, or a command in a namespace. */
export interface Step {
  cmd: string;
  args: string[];
  input?: string;
}

/** The commands that build a planned pair, in order. */
export function pairSteps(p: PairPlan): Step[] {
  const steps: Step[] = [
    {
      cmd: 'ip',
      args: ['-batch', '-'],
      input: [`netns add ${p.a}`, `netns add ${p.b}`, `link add ${p.vethA} address ${p.macA} netns ${p.a} type veth peer name ${p.vethB} address ${p.macB} netns ${p.b}`].join('\n'),
    },
  ];
  const sides = [
    { ns: p.a, dev: p.vethA, ip: p.ipA, ip6: p.ip6A, peer: p.ipB, peer6: p.ip6B, peerMac: p.macB, neigh: p.neighbours !== 'none' },
    { ns: p.b, dev: p.vethB, ip: p.ipB, ip6: p.ip6B, peer: p.ipA, peer6: p.ip6A, peerMac: p.macA, neigh: p.neighbours === 'both' },
  ];
  for (const s of sides) {
    if (!p.ipv6) steps.push({ cmd: 'ip', args: ['netns', 'exec', s.ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'] });
    const lines = ['link set lo up', `addr add ${s.ip}/${p.len4} dev ${s.dev}`];
    if (p.ipv6) lines.push(`addr add ${s.ip6}/${p.len6} dev ${s.dev} nodad`);
    lines.push(`link set ${s.dev} up`);
    if (s.neigh) {
      lines.push(`neigh replace ${s.peer} lladdr ${s.peerMac} dev ${s.dev} nud permanent`);
      if (p.ipv6) lines.push(`neigh replace ${s.peer6} lladdr ${s.peerMac} dev ${s.dev} nud permanent`);
    }
    steps.push({ cmd: 'ip', args: ['-n', s.ns, '-batch', '-'], input: lines.join('\n') });
  }
  for (const r of p.drop) {
    const port = typeof r.dport === 'number' ? String(r.dport) : `${r.dport[0]}:${r.dport[1]}`;
    // -w: the iptables lock file is shared by every namespace
    steps.push({ cmd: 'ip', args: ['netns', 'exec', p.b, 'iptables', '-w', '5', '-A', 'INPUT', '-p', r.proto, '--dport', port, '-j', 'DROP'] });
  }
  return steps;
}

function firstLine(s: string): string {
  return s.split('\n').find((l) => l.trim() !== '')?.trim() ?? '';
}

function stepFailed(s: Step, stderr: string, fallback: string): DroptraceError {
  return pairError(`${s.cmd} ${s.args.join(' ')} failed: ${firstLine(stderr) || fallback}`);
}

/** Kill what runs in the namespaces, then delete them; safe to call any number of times. */
export function destroyNamespaces(names: string[]): void {
  for (const ns of names) {
    if (!existsSync(`/run/netns/${ns}`)) continue;
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
    for (const pid of pids.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}

/** A failed build deletes what it made: never a namespace that was there before. */
function refuseExisting(p: PairPlan): void {
  for (const ns of [p.a, p.b]) if (existsSync(`/run/netns/${ns}`)) throw pairError(`namespace ${ns} exists already`);
}

function finish(p: PairPlan): NsPair {
  const { len4: _l4, len6: _l6, ipv6: _v6, neighbours: _n, drop: _d, ...rest } = p;
  return { ...rest, netnsA: statSync(`/run/netns/${p.a}`).ino, netnsB: statSync(`/run/netns/${p.b}`).ino, destroy: () => destroyNamespaces([p.a, p.b]) };
}

/** Build a pair now (synchronously); on any failure what was made is deleted and the error thrown. */
export function createPair(o: PairOptions = {}): NsPair {
  const p = planPair(o);
  refuseExisting(p);
  try {
    for (const s of pairSteps(p)) {
      try {
        execFileSync(s.cmd, s.args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000, ...(s.input !== undefined ? { input: s.input } : {}) });
      } catch (e) {
        throw stepFailed(s, String((e as { stderr?: unknown }).stderr ?? ''), (e as Error).message);
      }
    }
    return finish(p);
  } catch (e) {
    destroyNamespaces([p.a, p.b]);
    throw e;
  }
}

function runAsync(s: Step): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(s.cmd, s.args, { encoding: 'utf8', timeout: 30_000 }, (err, _out, stderr) => {
      if (err) reject(stepFailed(s, stderr, (err as NodeJS.ErrnoException).code ?? err.message));
      else resolve();
    });
    child.stdin?.end(s.input ?? '');
  });
}

/**
 * The same without blocking the event loop (the lab may share its process with a tracer).
 * `plan` lets the caller record the names before anything exists, so its own cleanup finds
 * them whatever happens; `stillWanted` is asked between steps (a stopped lab run).
 */
export async function createPairAsync(o: PairOptions, hooks: { plan?: (p: PairPlan) => void; stillWanted?: () => boolean } = {}): Promise<NsPair> {
  const p = planPair(o);
  refuseExisting(p);
  hooks.plan?.(p);
  try {
    for (const s of pairSteps(p)) {
      await runAsync(s);
      if (hooks.stillWanted && !hooks.stillWanted()) throw pairError('stopped while it was being built');
    }
    return finish(p);
  } catch (e) {
    destroyNamespaces([p.a, p.b]);
    throw e;
  }
}

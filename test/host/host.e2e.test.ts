/**
 * The samplers against this machine's kernel, as root: a throw-away netns `dthost-<random>`
 * joined to the host by a veth pair (198.18.x.x and fd99:: only, nothing leaves the machine),
 * conntrack switched on inside it by an iptables rule, a server inside it, a few connections
 * from the host. Global sysctls are never touched; the netns is deleted even when setup fails.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toCountersLine } from '../../src/host/counters-line.js';
import { parseProcStatTable, tableTotals } from '../../src/host/proc-stat.js';
import { HostSampler } from '../../src/host/sampler.js';

function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const canRun =
  process.getuid?.() === 0 && ['ip', 'iptables', 'ip6tables', 'ethtool', 'nsenter'].every(have);

const run = (cmd: string, ...args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' });
const quietly = (cmd: string, ...args: string[]): void => {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
  } catch {
    // cleanup of something that may not exist
  }
};

const tag = randomBytes(3).toString('hex');
const ns = `dthost-${tag}`;
const hostVeth = `dth${tag}h`;
const nsVeth = `dth${tag}n`;
const port = 18000 + randomInt(1000);

/** A /30 in 198.18.0.0/15 that nothing on the host uses yet. */
function pickSubnet(): { host4: string; ns4: string; host6: string; ns6: string } {
  const used = run('ip', '-o', 'addr', 'show') + run('ip', 'route', 'show');
  for (let i = 0; i < 50; i++) {
    const b = randomInt(256);
    const c = randomInt(64) * 4;
    if (used.includes(`198.18.${b}.`)) continue;
    const six = randomBytes(2).toString('hex');
    return { host4: `198.18.${b}.${c + 1}`, ns4: `198.18.${b}.${c + 2}`, host6: `fd99:${six}::1`, ns6: `fd99:${six}::2` };
  }
  throw new Error('no free 198.18.x.x /30 on this host');
}

let server: ChildProcess | null = null;
let addrs: ReturnType<typeof pickSubnet>;

function cleanup(): void {
  if (server !== null && server.exitCode === null) server.kill('SIGKILL');
  server = null;
  quietly('ip', 'netns', 'del', ns);
  quietly('ip', 'link', 'del', hostVeth);
}

const SERVER = `
const net = require('node:net');
const [v4, v6, port] = process.argv.slice(1);
let up = 0;
for (const host of [v4, v6]) {
  net.createServer((s) => s.on('data', (d) => s.end(d)).on('error', () => {}))
    .listen(Number(port), host, () => { if (++up === 2) process.stdout.write('ready\\n'); });
}
`;

async function startServer(): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER, addrs.ns4, addrs.ns6, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  server = child;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server in the netns did not become ready in 10 s')), 10_000);
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`server in the netns exited with ${code}`)));
  });
  return child;
}

function echo(host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port }, () => s.write('ping'));
    s.on('data', () => s.end());
    s.on('close', () => resolve());
    s.on('error', reject);
  });
}

describe.skipIf(!canRun)('host samplers on this machine (root)', () => {
  beforeAll(async () => {
    try {
      addrs = pickSubnet();
      run('ip', 'netns', 'add', ns);
      run('ip', 'link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', nsVeth, 'netns', ns);
      run('ip', 'addr', 'add', `${addrs.host4}/30`, 'dev', hostVeth);
      run('ip', '-6', 'addr', 'add', `${addrs.host6}/64`, 'dev', hostVeth, 'nodad');
      run('ip', 'link', 'set', hostVeth, 'up');
      run('ip', '-n', ns, 'addr', 'add', `${addrs.ns4}/30`, 'dev', nsVeth);
      run('ip', '-n', ns, '-6', 'addr', 'add', `${addrs.ns6}/64`, 'dev', nsVeth, 'nodad');
      run('ip', '-n', ns, 'link', 'set', nsVeth, 'up');
      run('ip', '-n', ns, 'link', 'set', 'lo', 'up');
      // A conntrack match is what makes the kernel track connections in this netns at all.
      run('ip', 'netns', 'exec', ns, 'iptables', '-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'NEW,ESTABLISHED', '-j', 'ACCEPT');
      run('ip', 'netns', 'exec', ns, 'ip6tables', '-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'NEW,ESTABLISHED', '-j', 'ACCEPT');
      // veth counts packets in its ethtool stats only on its NAPI path: GRO on the receiving
      // end, and no TSO on the sending end (a TSO skb bypasses NAPI).
      run('ethtool', '-K', hostVeth, 'gro', 'on');
      run('ip', 'netns', 'exec', ns, 'ethtool', '-K', nsVeth, 'tso', 'off');
      await startServer();
    } catch (err) {
      cleanup();
      throw err;
    }
  });

  afterAll(() => {
    cleanup();
  });

  it('sees the netns, its conntrack count and statistics, and both veth ends', async () => {
    const inode = statSync(`/run/netns/${ns}`).ino;
    const selfInode = Number(/\d+/.exec(run('readlink', '/proc/self/ns/net'))?.[0]);
    // every sample reads the NICs (ethtool -S), not at most every 15 s: the test compares two samples
    const sampler = new HostSampler({ nicNetns: true, nicEveryMs: 0 });

    const s1 = await sampler.sample();
    for (let i = 0; i < 5; i++) await echo(addrs.ns4);
    for (let i = 0; i < 3; i++) await echo(addrs.ns6);
    const s2 = await sampler.sample();

    // What the kernel says, read another way (inside the netns), after the second sample.
    const directCount = Number(run('ip', 'netns', 'exec', ns, 'cat', '/proc/sys/net/netfilter/nf_conntrack_count'));
    const directStats = tableTotals(
      parseProcStatTable(run('ip', 'netns', 'exec', ns, 'cat', '/proc/net/stat/nf_conntrack'), 'nf_conntrack'),
    );
    const max = Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8'));

    const ct1 = s1.conntrack?.netns.find((n) => n.netns === inode);
    const ct2 = s2.conntrack?.netns.find((n) => n.netns === inode);
    expect(ct1).toBeDefined();
    expect(ct2).toMatchObject({ name: ns, pid: server?.pid, comm: 'node', self: false, init: false });
    expect(ct2?.count).toBe(directCount);
    expect((ct2?.count ?? 0) - (ct1?.count ?? 0)).toBeGreaterThanOrEqual(8);
    expect(ct2?.stats).toEqual(directStats);
    expect(Object.keys(ct2?.stats ?? {})).toEqual(Object.keys(directStats));
    expect(ct2?.rates).not.toBeNull();
    expect(s2.conntrack?.max).toBe(max);
    expect(ct2?.fill).toBe(directCount / max);

    const hostIfindex = Number(readFileSync(`/sys/class/net/${hostVeth}/ifindex`, 'utf8'));
    const nsIfindex = Number(run('ip', 'netns', 'exec', ns, 'cat', `/sys/class/net/${nsVeth}/ifindex`));
    const h1 = s1.nics.find((n) => n.ifname === hostVeth);
    const h2 = s2.nics.find((n) => n.ifname === hostVeth);
    expect(h2).toMatchObject({ netns: selfInode, driver: null, virtual: true, allowance: {} });
    expect(h2?.stats.peer_ifindex).toBe(nsIfindex);
    // the replies from the netns went through the host end's NAPI path
    expect((h2?.stats.rx_queue_0_xdp_packets ?? 0) - (h1?.stats.rx_queue_0_xdp_packets ?? 0)).toBeGreaterThanOrEqual(8);
    expect(h2?.rates?.rx_queue_0_xdp_packets).toBeGreaterThan(0);
    const inside = s2.nics.find((n) => n.netns === inode);
    expect(inside?.ifname).toBe(nsVeth);
    expect(inside?.stats.peer_ifindex).toBe(hostIfindex);

    for (const [table, v] of [['arp_cache', 'ipv4'], ['ndisc_cache', 'ipv6']] as const) {
      const t = s2.neigh.find((x) => x.table === table);
      const th = readFileSync(`/proc/sys/net/${v}/neigh/default/gc_thresh3`, 'utf8');
      expect(t?.gcThresh3).toBe(Number(th));
      expect(t?.entries).toBeGreaterThanOrEqual(1); // at least the netns end of the veth
      expect(t?.rates).not.toBeNull();
    }

    expect(s2.warnings.filter((w) => w.includes(String(inode)))).toEqual([]);
    expect(s2.intervalS).toBeGreaterThan(0);
    const line = toCountersLine(s2);
    expect(JSON.parse(JSON.stringify(line))).toEqual(line);
    expect(line.conntrack?.netns.some((n) => n.netns === inode && n.name === ns)).toBe(true);

    const costs: number[] = [];
    for (let i = 0; i < 5; i++) costs.push((await sampler.sample()).costMs);
    const lean = new HostSampler();
    for (let i = 0; i < 5; i++) costs.push((await lean.sample()).costMs);
    console.info(
      `host sample cost: with nicNetns ${costs.slice(0, 5).map((c) => c.toFixed(1)).join(' ')} ms; ` +
        `defaults ${costs.slice(5).map((c) => c.toFixed(1)).join(' ')} ms; ` +
        `${s2.scan.pids} pids, ${s2.scan.netns} netns, ${s2.nics.length} nics`,
    );
  });
});

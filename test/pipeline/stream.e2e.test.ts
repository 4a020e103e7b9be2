/**
 * End to end, as root: real BPF programs, real drops in throw-away namespaces, the real CLI.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inNs, makePair, sendSpoofedUdp, sendUdp } from '../helpers/netns.js';
import type { Pair } from '../helpers/netns.js';
import { schemaErrors } from '../helpers/schema.js';
import { drops, startStream, sumCount } from '../helpers/stream.js';
import type { Line } from '../helpers/stream.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('skipping end-to-end stream tests: they need root (BPF programs, network namespaces)');

/**
 * The BPF programs a droptrace process holds (through its links' fds): by id, so other
 * droptrace processes on the machine (a parallel test file, a soak) never count.
 */
const progIds = (pid: number): number[] => {
  const ids = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      const m = /^prog_id:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      // an fd closed between the listing and the read
    }
  }
  return [...ids];
};

/** The names of the programs with these ids still loaded in the kernel. */
const loaded = (ids: number[]): string[] => {
  const progs = JSON.parse(execFileSync('bpftool', ['prog', 'list', '--json'], { encoding: 'utf8' })) as Array<{ id: number; name?: string }>;
  return progs.filter((p) => ids.includes(p.id)).map((p) => p.name ?? '');
};

/** The kernel frees a released program from a work queue: allow it a moment, then insist. */
const loadedAfterRelease = async (ids: number[]): Promise<string[]> => {
  for (let i = 0; i < 40 && loaded(ids).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  return loaded(ids);
};

describe.skipIf(!isRoot)('droptrace stream, end to end', () => {
  let p: Pair;
  beforeAll(() => {
    p = makePair();
    // Resolve neighbours first so no test depends on ARP timing.
    sendUdp(p.a, p.ipA, 40000, p.ipB, 9, 1);
    sendUdp(p.a, p.ip6A, 40000, p.ip6B, 9, 1);
  });
  afterAll(() => p?.destroy());

  const finalStats = (lines: Line[]) => lines.find((l) => l.type === 'stats' && l.final === true);

  it('reports exactly N NETFILTER_DROP drops of one rule with the exact flow, netns and interface', async () => {
    const N = 37;
    inNs(p.b, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '5301', '-j', 'DROP']);
    const s = startStream(['--netns', String(p.netnsB)]);
    try {
      await s.ready;
      sendUdp(p.a, p.ipA, 40001, p.ipB, 5301, N);
      const mine = (l: Line) => l.kind === 'netfilter_rule' && (l.flow as { dport?: number } | null)?.dport === 5301;
      await s.until((ls) => sumCount(drops(ls).filter(mine)) >= N);
      expect((await s.stop()).code).toBe(0);
      const got = drops(s.lines).filter(mine);
      expect(sumCount(got)).toBe(N);
      for (const d of got) {
        expect(d).toMatchObject({
          type: 'drop',
          family: 'netfilter',
          kind: 'netfilter_rule',
          reason: 'NETFILTER_DROP',
          netns: p.netnsB,
          ifname: p.vethB,
          flow: { proto: 'udp', src: p.ipA, dst: p.ipB, sport: 40001, dport: 5301 },
          pod: null,
        });
        expect(d.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      }
      // the exact kernel counter agrees, and nothing was lost
      const st = finalStats(s.lines)!;
      expect((st.kernel as { by_reason: Record<string, number> }).by_reason.NETFILTER_DROP).toBe(N);
      // Nothing of ours was lost. The netns makes a stray drop now and then (IPv6 link-local
      // traffic, NOT_SPECIFIED); one that sits in the backlog at stop is counted as lost, so
      // userspace loss may only be such drops, never one of the N.
      const lost = st.lost as { ring_buffer: number; userspace: number; stdout: number; total: number };
      const others = (st.kernel as { drops: number }).drops - N;
      expect({ ring_buffer: lost.ring_buffer, stdout: lost.stdout }).toEqual({ ring_buffer: 0, stdout: 0 });
      expect(lost.userspace).toBeLessThanOrEqual(others);
      expect(lost.total).toBe(lost.userspace);
      // every line (start, drops, stats) matches the published JSON Schema
      expect(s.lines[0]!.type).toBe('start');
      expect(schemaErrors(s.lines)).toEqual([]);
    } finally {
      await s.stop();
      inNs(p.b, 'iptables', ['-F', 'INPUT']);
    }
  });

  it('names the DNS query a dropped packet carried', async () => {
    inNs(p.b, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '53', '-j', 'DROP']);
    const s = startStream(['--netns', String(p.netnsB)]);
    try {
      await s.ready;
      // a real resolver query, from Node's own DNS client (c-ares), into the DROP rule
      inNs(p.a, process.execPath, [
        '-e',
        `const r = new (require('node:dns').promises.Resolver)({ timeout: 300, tries: 1 }); r.setServers(['${p.ipB}']);
         r.resolve4('kube-dns.kube-system.svc.cluster.local').catch(() => {});`,
      ]);
      const mine = (l: Line) => (l.flow as { dport?: number } | null)?.dport === 53;
      await s.until((ls) => drops(ls).some(mine));
      await s.stop();
      const d = drops(s.lines).find(mine)!;
      expect(d).toMatchObject({
        kind: 'netfilter_rule',
        dns: { name: 'kube-dns.kube-system.svc.cluster.local.', type: 'A', response: false },
        flow: { proto: 'udp', src: p.ipA, dst: p.ipB, dport: 53 },
      });
      expect(d.explain).toMatch(/^DNS query for kube-dns\.kube-system\.svc\.cluster\.local\. \(A\) dropped: a firewall rule/);
    } finally {
      await s.stop();
      inNs(p.b, 'iptables', ['-F', 'INPUT']);
    }
  });

  it('stays exact past the per-key detail limit: the rest is folded into counted lines', async () => {
    const N = 1500;
    inNs(p.b, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '5310', '-j', 'DROP']);
    const s = startStream(['--netns', String(p.netnsB), '--detail-limit', '10']);
    try {
      await s.ready;
      sendUdp(p.a, p.ipA, 40010, p.ipB, 5310, N);
      const mine = (l: Line) => (l.flow as { dport?: number } | null)?.dport === 5310;
      await s.until((ls) => sumCount(drops(ls).filter(mine)) >= N);
      await s.stop();
      const got = drops(s.lines).filter(mine);
      expect(sumCount(got)).toBe(N);
      const folded = got.filter((l) => l.folded === true);
      expect(folded.length).toBeGreaterThan(0);
      for (const l of folded) expect(l).toMatchObject({ kind: 'netfilter_rule', reason: 'NETFILTER_DROP', netns: p.netnsB, ifname: p.vethB, flow: { src: p.ipA, dport: 5310 } });
      // at most 10 detail events per second per CPU reached userspace
      const st = s.lines.find((l) => l.type === 'stats' && l.final === true)!;
      expect((st.kernel as { by_reason: Record<string, number> }).by_reason.NETFILTER_DROP).toBe(N);
      // delivered + folded = every drop the kernel saw in this netns (the flood and any background)
      expect((st.events as number) + (st.folded as number)).toBe((st.kernel as { drops: number }).drops);
      expect(st.events as number).toBeLessThan(N);
      expect(schemaErrors(s.lines)).toEqual([]);
    } finally {
      await s.stop();
      inNs(p.b, 'iptables', ['-F', 'INPUT']);
    }
  });

  it('gives a key its detail events again in the next window, and never more than the limit per window', async () => {
    const N = 40;
    const LIMIT = 5;
    const cpus = availableParallelism();
    inNs(p.b, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '5311', '-j', 'DROP']);
    const s = startStream(['--netns', String(p.netnsB), '--detail-limit', String(LIMIT)]);
    try {
      await s.ready;
      const mine = (l: Line) => (l.flow as { dport?: number } | null)?.dport === 5311;
      const detail = () => sumCount(drops(s.lines).filter((l) => mine(l) && l.folded !== true));
      // three bursts 1.3 s apart: the kernel's window clock (jiffies, measured against the
      // precise clock over each CPU's first half second) must let each burst through again
      for (let burst = 1; burst <= 3; burst++) {
        sendUdp(p.a, p.ipA, 40011, p.ipB, 5311, N);
        await s.until((ls) => sumCount(drops(ls).filter(mine)) >= burst * N || detail() >= burst * LIMIT * cpus);
        const d = detail();
        expect(d).toBeGreaterThanOrEqual(burst * LIMIT);
        // one window restart when a CPU's clock switches to jiffies: at most one extra window
        expect(d).toBeLessThanOrEqual((burst + 1) * LIMIT * cpus);
        if (burst < 3) await new Promise((r) => setTimeout(r, 1300));
      }
      await s.until((ls) => sumCount(drops(ls).filter(mine)) >= 3 * N);
      await s.stop();
      expect(sumCount(drops(s.lines).filter(mine))).toBe(3 * N);
    } finally {
      await s.stop();
      inNs(p.b, 'iptables', ['-F', 'INPUT']);
    }
  });

  const tshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!tshark) console.warn('skipping --pcap check: tshark (Debian package tshark) is not installed');
  it.skipIf(!tshark)('writes dropped packets as pcapng that tshark reads, the kind in each comment', async () => {
    const N = 6;
    inNs(p.b, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '5320', '-j', 'DROP']);
    const dir = mkdtempSync(join(tmpdir(), 'droptrace-pcap-'));
    const file = join(dir, 'drops.pcapng');
    const s = startStream(['--netns', String(p.netnsB), '--pcap', file]);
    try {
      await s.ready;
      sendUdp(p.a, p.ipA, 40020, p.ipB, 5320, N);
      const mine = (l: Line) => (l.flow as { dport?: number } | null)?.dport === 5320;
      await s.until((ls) => sumCount(drops(ls).filter(mine)) >= N);
      await s.stop();
      const out = execFileSync('tshark', ['-r', file, '-Y', 'udp.dstport == 5320', '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'udp.srcport', '-e', 'frame.comment'], {
        encoding: 'utf8',
      });
      const rows = out.trim().split('\n');
      expect(rows).toHaveLength(N);
      for (const r of rows) {
        expect(r).toBe(`${p.ipA}\t${p.ipB}\t40020\tdroptrace: netfilter_rule (netfilter) reason=NETFILTER_DROP location=nft_do_chain netns=${p.netnsB} dev=${p.vethB}`);
      }
    } finally {
      await s.stop();
      inNs(p.b, 'iptables', ['-F', 'INPUT']);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--pcap on a full disk (a 64 KiB tmpfs): one line on stderr, the final stats line last, exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'droptrace-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'droptrace-test', dir]);
    inNs(p.b, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '5321', '-j', 'DROP']);
    const file = join(dir, 'drops.pcapng');
    const s = startStream(['--netns', String(p.netnsB), '--pcap', file, '--pcap-payload', '--detail-limit', '0', '--counters-interval', '0']);
    try {
      await s.ready;
      // about 250 bytes a packet in the file: 64 KiB are full long before 2000
      sendUdp(p.a, p.ipA, 40021, p.ipB, 5321, 2000);
      const { code } = await s.exited;
      expect(code).toBe(1);
      expect(s.stderr()).toMatch(new RegExp(`^droptrace: cannot write --pcap file ${file}: ENOSPC after \\d+ bytes\n$`));
      const st = finalStats(s.lines)!;
      expect(st).toMatchObject({ type: 'stats', final: true, failures: 1 });
      // the bytes written before the disk was full are all in the file, and said so
      expect((st.pcap as { bytes: number }).bytes).toBe(statSync(file).size);
      expect(statSync(file).size).toBeGreaterThan(60 * 1024);
      // the last line; the tracer's close() on this path is asserted in test/sinks/pcap.test.ts
      expect(s.lines.at(-1)).toBe(st);
    } finally {
      await s.stop();
      inNs(p.b, 'iptables', ['-F', 'INPUT']);
      execFileSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('counts a DNS message that does not parse once as an enrichment failure, with --pcap too', async () => {
    // 'droptrace' (9 bytes) to port 53 is no DNS message: one failure per drop, whether or not
    // the drop is also written to a pcap file (which describes it a second time)
    const N = 3;
    inNs(p.b, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '53', '-j', 'DROP']);
    const dir = mkdtempSync(join(tmpdir(), 'droptrace-pcap-'));
    try {
      for (const extra of [[], ['--pcap', join(dir, 'drops.pcapng')]]) {
        const s = startStream(['--netns', String(p.netnsB), '--counters-interval', '0', ...extra]);
        try {
          await s.ready;
          sendUdp(p.a, p.ipA, 40030, p.ipB, 53, N);
          const mine = (l: Line) => (l.flow as { dport?: number } | null)?.dport === 53;
          await s.until((ls) => sumCount(drops(ls).filter(mine)) >= N);
          await s.stop();
          for (const d of drops(s.lines).filter(mine)) expect(d.dns).toBeNull();
          const st = s.lines.find((l) => l.type === 'stats' && l.final === true)!;
          expect(st.enrichment_failures).toBe(N);
        } finally {
          await s.stop();
        }
      }
    } finally {
      inNs(p.b, 'iptables', ['-F', 'INPUT']);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports NO_SOCKET for a closed UDP port with the exact flow', async () => {
    const N = 5;
    const s = startStream(['--netns', String(p.netnsB)]);
    try {
      await s.ready;
      sendUdp(p.a, p.ipA, 40002, p.ipB, 5302, N);
      const mine = (l: Line) => l.reason === 'NO_SOCKET' && (l.flow as { dport?: number } | null)?.dport === 5302;
      await s.until((ls) => sumCount(drops(ls).filter(mine)) >= N);
      await s.stop();
      const got = drops(s.lines).filter(mine);
      expect(sumCount(got)).toBe(N);
      expect(got[0]).toMatchObject({
        family: 'other',
        kind: 'no_socket',
        location: '__udp4_lib_rcv',
        netns: p.netnsB,
        ifname: p.vethB,
        flow: { proto: 'udp', src: p.ipA, dst: p.ipB, sport: 40002, dport: 5302 },
      });
    } finally {
      await s.stop();
    }
  });

  it('reports IPv6 flows in RFC 5952 form', async () => {
    const N = 3;
    const s = startStream(['--netns', String(p.netnsB)]);
    try {
      await s.ready;
      sendUdp(p.a, p.ip6A, 40006, p.ip6B, 5306, N);
      const mine = (l: Line) => l.reason === 'NO_SOCKET' && (l.flow as { dport?: number } | null)?.dport === 5306;
      await s.until((ls) => sumCount(drops(ls).filter(mine)) >= N);
      await s.stop();
      const got = drops(s.lines).filter(mine);
      expect(sumCount(got)).toBe(N);
      expect(got[0]).toMatchObject({
        location: '__udp6_lib_rcv',
        flow: { proto: 'udp', src: p.ip6A, dst: p.ip6B, sport: 40006, dport: 5306 },
      });
    } finally {
      await s.stop();
    }
  });

  it.each([
    ['a 127.x source', '127.0.0.9', 'IP_LOCALNET'],
    ["the receiver's own address as source", 'own', 'IP_LOCAL_SOURCE'],
  ])('classifies %s as martian_source', async (_what, src, reason) => {
    const N = 4;
    const source = src === 'own' ? p.ipB : src;
    const s = startStream(['--netns', String(p.netnsB)]);
    try {
      await s.ready;
      sendSpoofedUdp(p.a, source, p.ipB, 40003, 5303, N);
      const mine = (l: Line) => l.kind === 'martian_source' && (l.flow as { dport?: number } | null)?.dport === 5303;
      await s.until((ls) => sumCount(drops(ls).filter(mine)) >= N);
      await s.stop();
      const got = drops(s.lines).filter(mine);
      expect(sumCount(got)).toBe(N);
      expect(got[0]).toMatchObject({
        family: 'martian',
        kind: 'martian_source',
        reason,
        location: 'ip_rcv_finish_core',
        netns: p.netnsB,
        ifname: p.vethB,
        flow: { proto: 'udp', src: source, dst: p.ipB, sport: 40003, dport: 5303 },
      });
    } finally {
      await s.stop();
    }
  });

  it.each(['SIGINT', 'SIGTERM'] as const)('leaves no BPF program attached after %s, exit 0', async (sig) => {
    const s = startStream([]);
    await s.ready;
    const ids = progIds(s.child.pid!);
    // the drop program and the neigh_create hook (fexit/kprobe are refused on this kernel)
    expect(loaded(ids).sort()).toEqual(['dt_kfree_skb_btf', 'dt_neigh_create_btf']);
    const { code } = await s.stop(sig);
    expect(code).toBe(0);
    expect(await loadedAfterRelease(ids)).toEqual([]);
    expect(s.lines.at(-1)).toMatchObject({ type: 'stats', final: true });
  });

  it('leaves nothing attached when killed outright (links are never pinned)', async () => {
    const s = startStream([]);
    await s.ready;
    const ids = progIds(s.child.pid!);
    expect(loaded(ids).length).toBe(2);
    expect(await s.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await loadedAfterRelease(ids)).toEqual([]);
  });

  it('stops by itself after --duration and leaves nothing attached', async () => {
    const s = startStream(['--duration', '0.5', '--netns', String(p.netnsB)]);
    await s.ready;
    const ids = progIds(s.child.pid!);
    expect(ids.length).toBe(2);
    const { code } = await s.exited;
    expect(code).toBe(0);
    expect(await loadedAfterRelease(ids)).toEqual([]);
  });

  it('falls back to the classic tracepoint when asked, with the same event', async () => {
    const N = 2;
    const s = startStream(['--netns', String(p.netnsB), '--hook', 'tracepoint/skb/kfree_skb']);
    try {
      const start = await s.ready;
      const kfree = (start.probes as Array<{ probe: string }>).filter((p) => p.probe === 'kfree_skb');
      expect(kfree).toEqual([{ probe: 'kfree_skb', hook: 'tracepoint/skb/kfree_skb', state: 'attached' }]);
      sendUdp(p.a, p.ipA, 40004, p.ipB, 5304, N);
      const mine = (l: Line) => l.reason === 'NO_SOCKET' && (l.flow as { dport?: number } | null)?.dport === 5304;
      await s.until((ls) => sumCount(drops(ls).filter(mine)) >= N);
      await s.stop();
      expect(drops(s.lines).filter(mine)[0]).toMatchObject({
        netns: p.netnsB,
        ifname: p.vethB,
        flow: { proto: 'udp', src: p.ipA, dst: p.ipB, sport: 40004, dport: 5304 },
      });
    } finally {
      await s.stop();
    }
  });
});

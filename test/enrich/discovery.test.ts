import { describe, expect, it } from 'vitest';
import { NodeDiscovery, parseFibTrieLocal, parseIfInet6, parsePodLogDir, parseStatStartTicks } from '../../src/enrich/discovery.js';
import { PodIndex } from '../../src/enrich/pod-index.js';
import { FakeIo } from '../host/fake-io.js';

async function waitFor(pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const HOST = 4026531840;
const WEB = 4026532300;
const DB = 4026532400;
const DEBUG = 4026532500;
const WEB_UID = '8d5c1f2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f';
const DB_UID = '1f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b';
const NEXT_UID = '99999999-aaaa-4bbb-8ccc-dddddddddddd';
const CID = (n: number) => String(n).repeat(64).slice(0, 64);
const BOOT_S = 1_772_000_000;
/** the first scan; the pods' processes started 100 s before */
const T0 = BOOT_S * 1000 + 3_700_000;

/** /proc/<pid>/stat with `ticks` as field 22 (start time), and a comm that tries to confuse. */
const stat = (pid: number, ticks: number) => `${pid} (we) (ird) S ${Array.from({ length: 18 }, () => '0').join(' ')} ${ticks} 0 0 0\n`;

/** The real layout of /proc/<pid>/net/fib_trie (recorded in a lab netns). */
const fibTrie = (ip: string) => `Main:
  +-- 0.0.0.0/0 2 0 2
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- ${ip.replace(/\.\d+$/, '.0')}/24 2 0 2
        |-- ${ip}
           /32 host LOCAL
        |-- ${ip.replace(/\.\d+$/, '.255')}
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 2 0 2
        |-- ${ip}
           /32 host LOCAL
`;
const IF_INET6 = `00000000000000000000000000000001 01 80 10 80       lo
fd990000000000000000000000770002 02 70 00 82     eth0
fe80000000000000a8bbccfffedd0011 02 40 20 80     eth0
`;

function machine(): FakeIo {
  const io = new FakeIo();
  io.dirs.set('/proc', ['1', '77', '300', '301', '400', '500', '555', 'self', 'stat']);
  io.files.set('/proc/stat', `cpu  1 2 3\nbtime ${BOOT_S}\nprocesses 9\n`);
  for (const [pid, ns] of [
    ['self', HOST],
    ['1', HOST],
    ['77', HOST],
    ['300', WEB],
    ['301', WEB],
    ['400', DB],
    ['500', DEBUG],
  ] as const) {
    io.links.set(`/proc/${pid}/ns/net`, `net:[${ns}]`);
  }
  // web: systemd driver, containerd; pause (300) and the app (301)
  const webSlice = `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${WEB_UID.replaceAll('-', '_')}.slice`;
  io.files.set('/proc/300/cgroup', `0::${webSlice}/cri-containerd-${CID(1)}.scope\n`);
  io.files.set('/proc/301/cgroup', `0::${webSlice}/cri-containerd-${CID(2)}.scope\n`);
  io.files.set('/proc/300/stat', stat(300, 360_000)); // boot + 3600 s
  io.files.set('/proc/301/stat', stat(301, 360_050));
  io.files.set('/proc/300/net/fib_trie', fibTrie('10.244.1.7'));
  io.files.set('/proc/300/net/if_inet6', IF_INET6);
  // db: cgroupfs driver, no /var/log/pods entry
  io.files.set('/proc/400/cgroup', `12:pids:/kubepods/burstable/pod${DB_UID}/${CID(4)}\n0::/\n`);
  io.files.set('/proc/400/stat', stat(400, 360_100));
  io.files.set('/proc/400/net/fib_trie', fibTrie('10.244.1.9'));
  // a shell someone started with `ip netns exec`: a netns, but no pod's
  io.files.set('/proc/500/cgroup', '0::/user.slice/user-0.slice/session-1.scope\n');
  // the host's processes are never read; 555 exited before its link was read
  io.dirs.set('/var/log/pods', [`shop_web-0_${WEB_UID}`, 'not-a-pod-dir', `kube-system_etcd-node1_5b1d3fbe0c81c2aec63a48e2a89f3d57`]);
  return io;
}

describe('discovery parsers', () => {
  it('reads local IPv4 addresses from fib_trie, without loopback or broadcast', () => {
    expect(parseFibTrieLocal(fibTrie('10.244.1.7'))).toEqual(['10.244.1.7']);
  });
  it('reads global IPv6 addresses from if_inet6, without loopback or link-local', () => {
    expect(parseIfInet6(IF_INET6)).toEqual(['fd99::77:2']);
  });
  it('splits /var/log/pods directory names', () => {
    expect(['shop_web-0_' + WEB_UID, 'a_b', 'a__c', 'ns_name_uid_x'].map(parsePodLogDir)).toEqual([
      { namespace: 'shop', name: 'web-0', uid: WEB_UID },
      null,
      null,
      null,
    ]);
  });
  it('reads the start time from /proc/<pid>/stat even with parentheses in comm', () => {
    expect(parseStatStartTicks(stat(300, 4242))).toBe(4242);
  });
});

describe('NodeDiscovery', () => {
  it('maps each pod netns to its pod, names from /var/log/pods, IPs from the netns, host netns never', async () => {
    const io = machine();
    const clock = { t: T0 };
    const idx = new PodIndex({ now: () => clock.t });
    const d = new NodeDiscovery(idx, { io, intervalMs: 0, now: () => clock.t });
    const scan = await d.scan();
    expect(scan).toEqual({
      pods: [
        {
          uid: WEB_UID,
          namespace: 'shop',
          name: 'web-0',
          netns: WEB,
          ips: ['10.244.1.7', 'fd99::77:2'],
          containerIds: [CID(1), CID(2)],
          pids: [300, 301],
          start: T0 - 100_000,
          cgroup: { qos: 'besteffort', driver: 'systemd', runtime: 'containerd' },
        },
        {
          uid: DB_UID,
          namespace: '',
          name: '',
          netns: DB,
          ips: ['10.244.1.9'],
          containerIds: [CID(4)],
          pids: [400],
          start: T0 - 99_000,
          cgroup: { qos: 'burstable', driver: 'cgroupfs', runtime: null },
        },
      ],
      pids: 7,
      vanished: 1,
      denied: 0,
      netns: 4,
      hostNetns: HOST,
    });
    expect(io.files.has('/proc/77/cgroup')).toBe(false);
    expect(idx.byNetns(WEB, T0)?.pod).toEqual({ namespace: 'shop', name: 'web-0', uid: WEB_UID });
    expect(idx.byIp('fd99::77:2', T0)?.uid).toBe(WEB_UID);
    expect(idx.byNetns(DB, T0)?.pod).toEqual({ namespace: '', name: '', uid: DB_UID });
    expect(idx.byNetns(HOST, T0)).toBeUndefined();
    expect(idx.byNetns(DEBUG, T0)).toBeUndefined();
    expect(d.stats).toEqual({ scans: 1, onDemandScans: 0, failures: 0, lastError: null, pods: 2 });
  });

  it('ends pods whose processes are gone; a new pod on the same IP owns it from after the previous scan', async () => {
    const io = machine();
    const clock = { t: T0 };
    const idx = new PodIndex({ now: () => clock.t });
    const d = new NodeDiscovery(idx, { io, intervalMs: 0, now: () => clock.t });
    await d.scan();
    // db goes away; 10 s later a new pod has its IP (and, as inodes are reused, its netns number)
    clock.t = T0 + 10_000;
    io.dirs.set('/proc', ['1', '77', '300', '301', '600', 'self']);
    io.links.set('/proc/600/ns/net', `net:[${DB}]`);
    io.files.set('/proc/600/cgroup', `0::/kubepods.slice/kubepods-pod${NEXT_UID.replaceAll('-', '_')}.slice/crio-${CID(6)}.scope\n`);
    io.files.set('/proc/600/stat', stat(600, 369_800)); // started at T0 - 2 s, yet the scan at T0 did not see it
    io.files.set('/proc/600/net/fib_trie', fibTrie('10.244.1.9'));
    io.dirs.set('/var/log/pods', [`shop_web-0_${WEB_UID}`, `shop_db-1_${NEXT_UID}`]);
    const scan = await d.scan();
    expect(scan.pods.map((p) => [p.name, p.start])).toEqual([
      ['web-0', T0 - 100_000],
      ['db-1', T0], // clamped to the previous scan, which saw no such pod
    ]);
    expect(idx.get(DB_UID)?.end).toBe(T0 + 10_000);
    expect([T0 - 1, T0 + 1, T0 + 9_999].map((t) => idx.byIp('10.244.1.9', t)?.pod.name ?? null)).toEqual(['', 'db-1', 'db-1']);
    expect(idx.byIp('10.244.1.9', T0 - 1)?.uid).toBe(DB_UID);
    expect(idx.byNetns(DB, T0 + 20_000)?.pod.name).toBe('db-1');
  });

  it('reuses what it learnt about a netns while its process lives, and rereads IPs the CNI had not set yet', async () => {
    const io = machine();
    io.files.delete('/proc/300/net/fib_trie');
    io.files.delete('/proc/300/net/if_inet6');
    const idx = new PodIndex();
    const d = new NodeDiscovery(idx, { io, intervalMs: 0 });
    expect((await d.scan()).pods[0]?.ips).toEqual([]);
    io.files.set('/proc/300/net/fib_trie', fibTrie('10.244.1.7'));
    io.files.delete('/proc/300/cgroup'); // not read again
    expect((await d.scan()).pods[0]).toMatchObject({ uid: WEB_UID, ips: ['10.244.1.7'] });
    expect(idx.byIp('10.244.1.7', Date.now())?.uid).toBe(WEB_UID);
  });

  it('counts a failed scan and keeps the index as it was', async () => {
    const io = machine();
    const idx = new PodIndex();
    const d = new NodeDiscovery(idx, { io, intervalMs: 0 });
    await d.scan();
    io.dirs.delete('/proc');
    await expect(d.scan()).rejects.toThrow('ENOENT: /proc');
    expect(d.stats).toMatchObject({ scans: 1, failures: 1, lastError: 'ENOENT: /proc' });
    expect(idx.get(WEB_UID)?.end).toBe(Infinity);
  });

  it('rescans soon after a drop from an unknown netns, at most once per interval, never for known ones', async () => {
    const io = machine();
    const idx = new PodIndex();
    const d = new NodeDiscovery(idx, { io, intervalMs: 0, missRescanMs: 40 });
    await d.start();
    expect(d.stats.scans).toBe(1);
    // known netns (host, a non-pod one, a pod's): nothing to do
    idx.netnsMiss(HOST);
    idx.netnsMiss(DEBUG);
    await new Promise((r) => setTimeout(r, 80));
    expect(d.stats.scans).toBe(1);
    // a pod started after the scan; many of its drops ask at once
    io.dirs.set('/proc', [...io.dirs.get('/proc')!, '700']);
    io.links.set('/proc/700/ns/net', 'net:[4026532700]');
    io.files.set('/proc/700/cgroup', `0::/kubepods.slice/kubepods-pod${NEXT_UID.replaceAll('-', '_')}.slice/cri-containerd-${CID(7)}.scope\n`);
    for (let i = 0; i < 50; i++) idx.netnsMiss(4026532700);
    await waitFor(() => d.stats.scans === 2);
    expect(d.stats).toMatchObject({ scans: 2, onDemandScans: 1 });
    expect(idx.byNetns(4026532700, Date.now())?.uid).toBe(NEXT_UID);
    // a netns without processes (found by no scan): asked once, then left alone until the next periodic scan
    idx.netnsMiss(4026532999);
    await waitFor(() => d.stats.scans === 3);
    idx.netnsMiss(4026532999);
    await new Promise((r) => setTimeout(r, 80));
    expect(d.stats).toMatchObject({ scans: 3, onDemandScans: 2 });
    d.close();
  });

  it('reads the cgroups of a netns that is no pod\'s again only when its processes change, or a minute later', async () => {
    const io = machine();
    const reads: string[] = [];
    const readFile = io.readFile.bind(io);
    io.readFile = async (path: string) => {
      if (path.endsWith('/cgroup')) reads.push(path);
      return readFile(path);
    };
    const clock = { t: T0 };
    const d = new NodeDiscovery(new PodIndex({ now: () => clock.t }), { io, intervalMs: 0, now: () => clock.t });
    await d.scan();
    const debugReads = () => reads.filter((p) => p === '/proc/500/cgroup').length;
    expect(debugReads()).toBe(1);
    clock.t += 10_000;
    await d.scan();
    expect(debugReads()).toBe(1);
    // a second process in the netns: looked at again
    io.dirs.set('/proc', [...io.dirs.get('/proc')!, '501']);
    io.links.set('/proc/501/ns/net', `net:[${DEBUG}]`);
    io.files.set('/proc/501/cgroup', '0::/user.slice/user-0.slice/session-1.scope\n');
    clock.t += 10_000;
    expect((await d.scan()).pods.map((p) => p.netns)).toEqual([WEB, DB]);
    expect(debugReads()).toBe(2);
    // the same processes, but the shell moved into a pod's cgroup: seen once a minute has passed
    io.files.set('/proc/500/cgroup', `0::/kubepods.slice/kubepods-pod${NEXT_UID.replaceAll('-', '_')}.slice/cri-containerd-${CID(5)}.scope\n`);
    clock.t += 59_999;
    expect((await d.scan()).pods.map((p) => p.netns)).toEqual([WEB, DB]);
    clock.t += 1;
    expect((await d.scan()).pods.map((p) => p.netns)).toEqual([WEB, DB, DEBUG]);
    expect(debugReads()).toBe(3);
  });
});

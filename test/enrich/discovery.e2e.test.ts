/**
 * End to end, as root, no Kubernetes API: lab pods (a netns, a process in a kubelet-style
 * cgroup, a /var/log/pods directory) are found by node-local discovery, and real drops traced
 * by the real BPF programs are attributed to them by name — by netns, by source IP and by
 * destination IP.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeDiscovery } from '../../src/enrich/discovery.js';
import type { Enricher } from '../../src/enrich/types.js';
import { startPodAttribution } from '../../src/enrich/pods.js';
import { podEnricher } from '../../src/enrich/pod-enricher.js';
import { PodIndex } from '../../src/enrich/pod-index.js';
import type { DropEvent, StreamLine } from '../../src/pipeline/events.js';
import { liveStream } from '../../src/pipeline/live.js';
import { inNs, sendUdp } from '../helpers/netns.js';
import { FakeApiServer, makeTls } from './fake-apiserver.js';
import { cgroupRoots, makeLab } from './lab-pod.js';
import { podObject } from './pod-objects.js';
import type { Lab, LabPod } from './lab-pod.js';

const isRoot = process.getuid?.() === 0;

/** Like sendUdp, for datagrams the sender's own OUTPUT chain drops (send fails with EPERM). */
function sendUdpDroppedOnOutput(ns: string, src: string, sport: number, dst: string, dport: number, count: number): void {
  const js = `
    const s = require('node:dgram').createSocket('udp4');
    s.bind(${sport}, ${JSON.stringify(src)}, async () => {
      for (let i = 0; i < ${count}; i++) await new Promise((r) => s.send('droptrace', ${dport}, ${JSON.stringify(dst)}, () => r()));
      s.close();
    });`;
  inNs(ns, process.execPath, ['-e', js]);
}
const roots = cgroupRoots();
const canRun = isRoot && roots.v2 !== null;
if (!canRun) console.warn('skipping pod discovery end-to-end tests: they need root and a cgroup v2 mount');

interface Udp {
  src: string;
  sport: number;
  dst: string;
  dport: number;
}

/** Drops of exactly this flow: other tests on the machine use 198.18.0.0/15 too. */
function dropsOf(lines: StreamLine[], f: Udp): DropEvent[] {
  return lines.filter(
    (l): l is DropEvent => l.type === 'drop' && l.flow?.src === f.src && l.flow.sport === f.sport && l.flow.dst === f.dst && l.flow.dport === f.dport,
  );
}

/** Traces with the real BPF programs and `enrichers` while `send` runs, until a drop of each flow was seen. */
async function traceWhile(enrichers: Enricher[], flows: Udp[], send: () => void): Promise<StreamLine[]> {
  const lines: StreamLine[] = [];
  const ac = new AbortController();
  let ready!: () => void;
  const started = new Promise<void>((r) => (ready = r));
  const run = liveStream(
    { statsIntervalMs: 60_000, ringBytes: 4 * 1024 * 1024, countersIntervalMs: 0, nics: 'none', enrichers },
    (l) => {
      lines.push(l);
      if (l.type === 'start') ready();
    },
    ac.signal,
  );
  try {
    await Promise.race([started, run.then(() => Promise.reject(new Error('stream ended before its start line')))]);
    send();
    const until = Date.now() + 15_000;
    while (!flows.every((f) => dropsOf(lines, f).length > 0)) {
      if (Date.now() > until) throw new Error(`drops not seen: ${JSON.stringify(lines.filter((l) => l.type === 'drop').slice(-5))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    ac.abort();
    await run.catch(() => undefined);
  }
  return lines;
}

describe.skipIf(!canRun)('node-local pod discovery, end to end', () => {
  let lab: Lab;
  let logs: string;
  let web: LabPod;
  let db: LabPod;

  beforeAll(async () => {
    logs = mkdtempSync(join(tmpdir(), 'dt-var-log-pods-'));
    lab = makeLab(logs);
    const subnet = 100 + Math.floor(Math.random() * 90);
    // systemd driver naming on cgroup v2
    web = await lab.addPod({
      namespace: 'shop',
      name: 'web-6b7f9c8d4d-x2x9q',
      subnet,
      cgroupPath: (uid, id) =>
        join(roots.v2!, 'kubepods.slice', 'kubepods-besteffort.slice', `kubepods-besteffort-pod${uid.replaceAll('-', '_')}.slice`, `cri-containerd-${id}.scope`),
    });
    // cgroupfs driver naming, on a v1 hierarchy when the host has one
    db = await lab.addPod({
      namespace: 'shop',
      name: 'db-0',
      subnet: subnet + 1,
      cgroupPath: (uid, id) => join(roots.v1 ?? roots.v2!, 'kubepods', 'burstable', `pod${uid}`, id),
    });
  });
  afterAll(async () => {
    await lab?.destroy();
    rmSync(logs, { recursive: true, force: true });
  });

  it('finds each lab pod by its netns, with names, IPs and container ids', async () => {
    const idx = new PodIndex();
    const d = new NodeDiscovery(idx, { podLogsRoot: logs, intervalMs: 0 });
    const scan = await d.scan();
    const mine = scan.pods.filter((p) => p.netns === web.netns || p.netns === db.netns).sort((a, b) => a.name.localeCompare(b.name));
    expect(mine.map((p) => ({ ...p, start: typeof p.start }))).toEqual([
      {
        uid: db.uid,
        namespace: 'shop',
        name: 'db-0',
        netns: db.netns,
        ips: [db.ip, db.ip6],
        containerIds: [db.containerId],
        pids: [db.pid],
        start: 'number',
        cgroup: { qos: 'burstable', driver: 'cgroupfs', runtime: null },
      },
      {
        uid: web.uid,
        namespace: 'shop',
        name: 'web-6b7f9c8d4d-x2x9q',
        netns: web.netns,
        ips: [web.ip, web.ip6],
        containerIds: [web.containerId],
        pids: [web.pid],
        start: 'number',
        cgroup: { qos: 'besteffort', driver: 'systemd', runtime: 'containerd' },
      },
    ]);
    // the process started moments ago
    expect(Math.abs(mine[1]!.start! - Date.now())).toBeLessThan(60_000);
    expect(idx.byNetns(web.netns, Date.now())?.pod).toEqual({ namespace: 'shop', name: 'web-6b7f9c8d4d-x2x9q', uid: web.uid });
    expect(scan.hostNetns).not.toBeNull();
    expect(idx.byNetns(scan.hostNetns!, Date.now())).toBeUndefined();
  });

  it('attributes real drops by netns, source IP and destination IP, by pod name', async () => {
    // neighbours first, so no drop depends on ARP timing
    sendUdp(lab.peer, web.peerIp, 40000, web.ip, 9, 1);
    sendUdp(lab.peer, db.peerIp, 40000, db.ip, 9, 1);
    inNs(web.ns, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '47301', '-j', 'DROP']);
    inNs(lab.peer, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '47302', '-j', 'DROP']);
    inNs(lab.peer, 'iptables', ['-A', 'OUTPUT', '-p', 'udp', '--dport', '47303', '-j', 'DROP']);
    const peerNetns = statSync(`/run/netns/${lab.peer}`).ino;

    const idx = new PodIndex();
    const d = new NodeDiscovery(idx, { podLogsRoot: logs, intervalMs: 0, missRescanMs: 200 });
    await d.start();
    const toWeb: Udp = { src: web.peerIp, sport: 47301, dst: web.ip, dport: 47301 };
    const fromDb: Udp = { src: db.ip, sport: 47302, dst: db.peerIp, dport: 47302 };
    const toWebOut: Udp = { src: web.peerIp, sport: 47303, dst: web.ip, dport: 47303 };
    let lines: StreamLine[] = [];
    try {
      lines = await traceWhile([podEnricher(idx)], [toWeb, fromDb, toWebOut], () => {
        sendUdp(lab.peer, toWeb.src, toWeb.sport, toWeb.dst, toWeb.dport, 3); // dropped inside web's netns
        sendUdp(db.ns, fromDb.src, fromDb.sport, fromDb.dst, fromDb.dport, 3); // from db, dropped in the peer (no pod's) netns
        sendUdpDroppedOnOutput(lab.peer, toWebOut.src, toWebOut.sport, toWebOut.dst, toWebOut.dport, 3); // to web, dropped on the way out of the peer
      });
    } finally {
      d.close();
    }
    const where = (n: number) => (n === web.netns ? 'web netns' : n === db.netns ? 'db netns' : n === peerNetns ? 'peer netns' : `netns ${n}`);
    const summary = (f: Udp) => [...new Set(dropsOf(lines, f).map((l) => `${where(l.netns)} ${l.pod?.namespace}/${l.pod?.name} ${l.pod_match}`))];
    expect([summary(toWeb), summary(fromDb), summary(toWebOut)]).toEqual([
      ['web netns shop/web-6b7f9c8d4d-x2x9q netns'],
      ['peer netns shop/db-0 src'],
      ['peer netns shop/web-6b7f9c8d4d-x2x9q dst'],
    ]);
    expect(dropsOf(lines, toWeb)[0]!.pod).toEqual({ namespace: 'shop', name: 'web-6b7f9c8d4d-x2x9q', uid: web.uid });
    // the peer's netns is no pod's: asking about it cost one rescan, not one per drop
    expect(d.stats.onDemandScans).toBeLessThanOrEqual(1);
  });

  it('attributes the same drops through a stand-in API server, with discovery off', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dt-e2e-api-'));
    const tls = makeTls(dir);
    const api = new FakeApiServer(tls, 'e2e-token');
    await api.listen(0);
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z');
    api.put(podObject({ name: 'web-6b7f9c8d4d-x2x9q', uid: web.uid, ips: [web.ip, web.ip6], networkReady: hourAgo }));
    api.put(podObject({ name: 'db-0', uid: db.uid, ips: [db.ip, db.ip6], networkReady: hourAgo }));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'lab', cluster: { server: api.url, 'certificate-authority': tls.caPath } }],
        users: [{ name: 'lab', user: { token: 'e2e-token' } }],
        contexts: [{ name: 'lab', context: { cluster: 'lab', user: 'lab' } }],
        'current-context': 'lab',
      }),
    );
    const pods = await startPodAttribution({ kubeconfig, node: 'dt-node1', discovery: false, syncTimeoutMs: 5000 });
    try {
      expect(pods.index.size).toBe(2);
      const toWeb: Udp = { src: web.peerIp, sport: 47311, dst: web.ip, dport: 47301 };
      const fromDb: Udp = { src: db.ip, sport: 47312, dst: db.peerIp, dport: 47302 };
      const lines = await traceWhile([pods.enricher], [toWeb, fromDb], () => {
        sendUdp(lab.peer, toWeb.src, toWeb.sport, toWeb.dst, toWeb.dport, 3); // dropped in web's netns, which the API does not know
        sendUdp(db.ns, fromDb.src, fromDb.sport, fromDb.dst, fromDb.dport, 3); // from db, dropped in the peer
      });
      const summary = (f: Udp) => [...new Set(dropsOf(lines, f).map((l) => `${l.pod?.namespace}/${l.pod?.name} ${l.pod_match}`))];
      expect([summary(toWeb), summary(fromDb)]).toEqual([['shop/web-6b7f9c8d4d-x2x9q dst'], ['shop/db-0 src']]);
      expect(pods.failures()).toBe(0);
    } finally {
      await pods.close();
      await api.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("ends a pod when its sandbox's processes are gone: its IP names nobody from then on", async () => {
    const idx = new PodIndex();
    const d = new NodeDiscovery(idx, { podLogsRoot: logs, intervalMs: 0 });
    await d.scan();
    const before = Date.now();
    expect(idx.byIp(db.ip, before)?.pod.name).toBe('db-0');
    // the end the next scan records must fall after `before`, not in the same millisecond
    await new Promise((r) => setTimeout(r, 5));
    await db.stop();
    await d.scan();
    const after = Date.now();
    expect(idx.byIp(db.ip, after)).toBeUndefined();
    expect(idx.byIp(db.ip, before)?.pod.name).toBe('db-0');
    expect(idx.get(db.uid)?.end).toBeGreaterThanOrEqual(before);
  });
});

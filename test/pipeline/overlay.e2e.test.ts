/**
 * End to end, as root: drops of tunnelled traffic carry the flow inside the tunnel. Real VXLAN
 * devices between two namespaces (the "nodes"), traffic between their inner addresses (the
 * "pods"), dropped on the receiving node before it is decapsulated; a hand-made Geneve
 * datagram where the kernel has no geneve module. Pods come from a --pods file that knows
 * only the inner addresses.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addVxlan, sendGeneve } from '../../src/lab/overlay.js';
import type { Vxlan } from '../../src/lab/overlay.js';
import { inNs, makePair, sendUdp } from '../helpers/netns.js';
import type { Pair } from '../helpers/netns.js';
import { schemaErrors } from '../helpers/schema.js';
import { drops, startStream, sumCount } from '../helpers/stream.js';
import type { Line } from '../helpers/stream.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('skipping overlay end-to-end tests: they need root (BPF programs, network namespaces)');

interface Inner {
  proto?: string;
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  vni: number;
  encap: string;
}
const inner = (l: Line) => l.inner as Inner | undefined;

describe.skipIf(!isRoot)('overlay inner headers, end to end', () => {
  let p: Pair;
  let vx42: Vxlan;
  let vx72: Vxlan;
  let dir: string;
  let pods: string;
  beforeAll(() => {
    p = makePair();
    // flannel's layout: node a and node b, pods inside VXLAN 42 on 4789 ...
    vx42 = addVxlan(p, { vni: 42, dstport: 4789 });
    // ... and a node whose VTEP says 8472 where its peer listens on 4789 only (nothing on 8472 in b)
    vx72 = addVxlan(p, { vni: 72, dstport: 8472, onlyA: true, ipv6: true });
    inNs(p.b, 'iptables', ['-w', '5', '-A', 'INPUT', '-p', 'udp', '--dport', '4789', '-j', 'DROP']);
    dir = mkdtempSync(join(tmpdir(), 'dt-overlay-'));
    pods = join(dir, 'pods.json');
    writeFileSync(
      pods,
      JSON.stringify([
        { namespace: 'shop', name: 'web-1', uid: 'uid-web-1', ips: [vx42.innerA, vx72.inner6A] },
        { namespace: 'shop', name: 'db-1', uid: 'uid-db-1', ips: [vx42.innerB] },
        { namespace: 'shop', name: 'ping-1', uid: 'uid-ping-1', ips: ['198.19.66.1'] },
      ]),
    );
  });
  afterAll(() => {
    p?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const mine = (want: Partial<Inner>) => (l: Line) => {
    const i = inner(l);
    return i !== undefined && Object.entries(want).every(([k, v]) => i[k as keyof Inner] === v);
  };

  // both ways of reaching kfree_skb: the parser reads the packet the same way under each
  it.each(['tp_btf/kfree_skb', 'tracepoint/skb/kfree_skb'])('VXLAN 4789 (%s): each inner flow counted exactly, its pod found by its inner address', async (hook) => {
    const s = startStream(['--netns', String(p.netnsB), '--pods', pods, '--hook', hook, '--no-rules'] /* the drop's own sentence; rules: test/host/rules */);
    try {
      const start = await s.ready;
      expect((start.probes as Array<{ hook: string; state: string }>).find((x) => x.hook === hook)?.state).toBe('attached');
      // two pod flows between the same two nodes
      sendUdp(p.a, vx42.innerA, 5555, vx42.innerB, 7777, 5);
      sendUdp(p.a, vx42.innerA, 5556, vx42.innerB, 7777, 3);
      const one = mine({ src: vx42.innerA, sport: 5555 });
      const two = mine({ src: vx42.innerA, sport: 5556 });
      await s.until((ls) => sumCount(drops(ls).filter(one)) >= 5 && sumCount(drops(ls).filter(two)) >= 3);
      expect((await s.stop()).code).toBe(0);
      const all = drops(s.lines);
      expect([sumCount(all.filter(one)), sumCount(all.filter(two))]).toEqual([5, 3]);
      for (const [sel, sport] of [
        [one, 5555],
        [two, 5556],
      ] as const) {
        for (const d of all.filter(sel)) {
          expect(d).toMatchObject({
            kind: 'netfilter_rule',
            reason: 'NETFILTER_DROP',
            netns: p.netnsB,
            ifname: p.vethB,
            flow: { proto: 'udp', src: p.ipA, dst: p.ipB, dport: 4789 },
            pod: { namespace: 'shop', name: 'web-1', uid: 'uid-web-1' },
            pod_match: 'inner_src',
          });
          expect(d.inner).toEqual({ proto: 'udp', src: vx42.innerA, dst: vx42.innerB, sport, dport: 7777, vni: 42, encap: 'vxlan' });
          expect(d.explain).toMatch(new RegExp(`^udp ${vx42.innerA}:${sport} → ${vx42.innerB}:7777 inside VXLAN 42 from node ${p.ipA} to ${p.ipB} dropped: a firewall rule`));
          expect(schemaErrors([d])).toEqual([]);
        }
      }
    } finally {
      if (s.child.exitCode === null) await s.stop();
    }
  });

  it('VXLAN 8472 to a node listening on 4789: IPv6 pods inside, dropped as NO_SOCKET', async () => {
    const s = startStream(['--netns', String(p.netnsB), '--pods', pods]);
    try {
      await s.ready;
      sendUdp(p.a, vx72.inner6A!, 6000, vx72.inner6B!, 7000, 4);
      const sel = mine({ src: vx72.inner6A!, sport: 6000, dport: 7000 });
      await s.until((ls) => sumCount(drops(ls).filter(sel)) >= 4);
      expect((await s.stop()).code).toBe(0);
      const got = drops(s.lines).filter(sel);
      expect(sumCount(got)).toBe(4);
      for (const d of got) {
        expect(d).toMatchObject({
          reason: 'NO_SOCKET',
          netns: p.netnsB,
          flow: { proto: 'udp', src: p.ipA, dst: p.ipB, dport: 8472 },
          pod: { name: 'web-1' },
          pod_match: 'inner_src',
        });
        expect(d.inner).toEqual({ proto: 'udp', src: vx72.inner6A, dst: vx72.inner6B, sport: 6000, dport: 7000, vni: 72, encap: 'vxlan' });
        expect(schemaErrors([d])).toEqual([]);
      }
    } finally {
      if (s.child.exitCode === null) await s.stop();
    }
  });

  it('Geneve over IPv6 with options: the inner ICMP echo and its VNI', async () => {
    const s = startStream(['--netns', String(p.netnsB), '--pods', pods]);
    try {
      await s.ready;
      sendGeneve(p.a, { src: p.ip6A, sport: 40066, dst: p.ip6B, vni: 0xabcdef, optionBytes: 8, innerSrc: '198.19.66.1', innerDst: '198.19.66.2', count: 2 });
      const sel = mine({ encap: 'geneve', src: '198.19.66.1' });
      await s.until((ls) => sumCount(drops(ls).filter(sel)) >= 2);
      expect((await s.stop()).code).toBe(0);
      const got = drops(s.lines).filter(sel);
      expect(sumCount(got)).toBe(2);
      for (const d of got) {
        expect(d).toMatchObject({
          reason: 'NO_SOCKET',
          flow: { proto: 'udp', src: p.ip6A, dst: p.ip6B, sport: 40066, dport: 6081 },
          inner: { proto: 'icmp', src: '198.19.66.1', dst: '198.19.66.2', type: 8, code: 0, vni: 0xabcdef, encap: 'geneve' },
          pod: { name: 'ping-1' },
          pod_match: 'inner_src',
        });
        expect(d.explain).toMatch(new RegExp(`^icmp 198\\.19\\.66\\.1 → 198\\.19\\.66\\.2 type 8/0 inside Geneve ${0xabcdef} from node ${p.ip6A} to ${p.ip6B} dropped: `));
        expect(schemaErrors([d])).toEqual([]);
      }
    } finally {
      if (s.child.exitCode === null) await s.stop();
    }
  });

  it('a plain UDP drop next to them has no inner object', async () => {
    const s = startStream(['--netns', String(p.netnsB)]);
    try {
      await s.ready;
      sendUdp(p.a, p.ipA, 40100, p.ipB, 4790, 2);
      const sel = (l: Line) => (l.flow as { dport?: number } | null)?.dport === 4790;
      await s.until((ls) => sumCount(drops(ls).filter(sel)) >= 2);
      expect((await s.stop()).code).toBe(0);
      const got = drops(s.lines).filter(sel);
      expect(sumCount(got)).toBe(2);
      for (const d of got) expect('inner' in d).toBe(false);
    } finally {
      if (s.child.exitCode === null) await s.stop();
    }
  });
});

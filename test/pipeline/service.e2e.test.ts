/**
 * Services, end to end as root: a DNAT rule in a throw-away namespace stands for kube-proxy's
 * ClusterIP rule, and a DROP rule on the translated port drops the packets after translation.
 * Every such drop carries the original destination (`service`) next to the translated one
 * (`flow`), with the exact count; a drop of the same rule without DNAT carries none.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inNs, makePair, sendUdp } from '../helpers/netns.js';
import type { Pair } from '../helpers/netns.js';
import { schemaErrors } from '../helpers/schema.js';
import { drops, startStream, sumCount } from '../helpers/stream.js';
import type { Line } from '../helpers/stream.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('skipping the Services end-to-end test: it needs root (BPF programs, network namespaces)');

type Flow = { proto: string; src: string; dst: string; sport: number; dport: number };

describe.skipIf(!isRoot)('drops after DNAT name the service, end to end', () => {
  let p: Pair;
  // the "ClusterIPs": outside the pair's /24 and /112, routed to b, where a DNAT rule sends
  // port 53 on to b's own address, port 5353, which a DROP rule closes
  let vip4: string;
  let vip6: string;
  beforeAll(() => {
    p = makePair();
    vip4 = `198.19.${p.subnet}.10`;
    vip6 = `fd99:53::${p.subnet}:10`;
    inNs(p.a, 'ip', ['route', 'add', `${vip4}/32`, 'via', p.ipB]);
    inNs(p.a, 'ip', ['-6', 'route', 'add', `${vip6}/128`, 'via', p.ip6B]);
    inNs(p.b, 'iptables', ['-w', '5', '-t', 'nat', '-A', 'PREROUTING', '-d', vip4, '-p', 'udp', '--dport', '53', '-j', 'DNAT', '--to-destination', `${p.ipB}:5353`]);
    inNs(p.b, 'ip6tables', ['-w', '5', '-t', 'nat', '-A', 'PREROUTING', '-d', vip6, '-p', 'udp', '--dport', '53', '-j', 'DNAT', '--to-destination', `[${p.ip6B}]:5353`]);
    inNs(p.b, 'iptables', ['-w', '5', '-A', 'INPUT', '-p', 'udp', '--dport', '5353', '-j', 'DROP']);
    inNs(p.b, 'ip6tables', ['-w', '5', '-A', 'INPUT', '-p', 'udp', '--dport', '5353', '-j', 'DROP']);
  });
  afterAll(() => p?.destroy());

  it('carries the original and the translated destination of each drop, with the exact count', async () => {
    const N4 = 7;
    const N6 = 5;
    const NDIRECT = 3;
    const s = startStream(['--netns', String(p.netnsB), '--detail-limit', '0', '--no-rules'] /* the drop's own sentence; rules: test/host/rules */);
    try {
      await s.ready;
      sendUdp(p.a, p.ipA, 41053, vip4, 53, N4);
      sendUdp(p.a, p.ip6A, 41054, vip6, 53, N6);
      // the same DROP rule, reached without DNAT
      sendUdp(p.a, p.ipA, 41055, p.ipB, 5353, NDIRECT);
      const to5353 = (sport: number) => (l: Line) => l.kind === 'netfilter_rule' && (l.flow as Flow | null)?.sport === sport;
      await s.until((ls) => sumCount(drops(ls).filter(to5353(41053))) >= N4 && sumCount(drops(ls).filter(to5353(41054))) >= N6 && sumCount(drops(ls).filter(to5353(41055))) >= NDIRECT);
      expect((await s.stop()).code).toBe(0);

      const v4 = drops(s.lines).filter(to5353(41053));
      expect(sumCount(v4)).toBe(N4);
      for (const d of v4) {
        expect(d.flow).toEqual({ proto: 'udp', src: p.ipA, dst: p.ipB, sport: 41053, dport: 5353 });
        expect(d.service).toEqual({ ip: vip4, port: 53 });
        expect(d.explain).toBe(`packet to service ${vip4}:53 (pod ${p.ipB}:5353) dropped: a firewall rule (iptables/nftables) returned DROP for this packet (freed in ${d.location})`);
      }
      const v6 = drops(s.lines).filter(to5353(41054));
      expect(sumCount(v6)).toBe(N6);
      for (const d of v6) {
        expect(d.flow).toEqual({ proto: 'udp', src: p.ip6A, dst: p.ip6B, sport: 41054, dport: 5353 });
        expect(d.service).toEqual({ ip: vip6, port: 53 });
        expect(d.explain).toMatch(new RegExp(`^packet to service \\[${vip6}\\]:53 \\(pod \\[${p.ip6B}\\]:5353\\) dropped: `));
      }
      const direct = drops(s.lines).filter(to5353(41055));
      expect(sumCount(direct)).toBe(NDIRECT);
      for (const d of direct) {
        expect(d.flow).toEqual({ proto: 'udp', src: p.ipA, dst: p.ipB, sport: 41055, dport: 5353 });
        expect(d).not.toHaveProperty('service');
        expect(d.explain).toMatch(/^a firewall rule/);
      }
      expect(schemaErrors(s.lines)).toEqual([]);
    } finally {
      await s.stop();
    }
  });
});

import { describe, expect, it } from 'vitest';
import { podEnricher } from '../../src/enrich/pod-enricher.js';
import { PodIndex } from '../../src/enrich/pod-index.js';
import { DropTime } from '../../src/pipeline/clock.js';
import type { LineTime } from '../../src/pipeline/clock.js';
import type { DropEvent, Flow } from '../../src/pipeline/events.js';

const T0 = Date.parse('2026-03-01T10:00:00Z');
const HOST_NETNS = 4026531840;
const WEB_NETNS = 4026532300;

function drop(time: LineTime, netns: number, flow: Flow | null): DropEvent {
  return {
    type: 'drop',
    time,
    family: 'netfilter',
    kind: 'conntrack_table_full',
    reason: 'NF_CONNTRACK_FULL',
    location: 'nf_conntrack_in+0x5d6',
    netns,
    ifname: 'eth0',
    ifindex: 2,
    flow,
    pod: null,
    count: 1,
    explain: '',
    hint: '',
  };
}

const udp = (src: string, dst: string): Flow => ({ proto: 'udp', src, dst, sport: 40000, dport: 53 });

function lab(): PodIndex {
  const idx = new PodIndex({ now: () => T0 + 120_000 });
  idx.upsert({ uid: 'web', namespace: 'shop', name: 'web-0', ips: ['10.244.1.7'], netns: [WEB_NETNS], start: T0 }, 'api');
  idx.upsert({ uid: 'dns', namespace: 'kube-system', name: 'coredns-1', ips: ['10.244.1.3'], start: T0 }, 'api');
  // the IP 10.244.1.9 went from job-a to job-b at T0+60s
  idx.upsert({ uid: 'job-a', namespace: 'batch', name: 'job-a', ips: ['10.244.1.9'], start: T0 }, 'api');
  idx.end('job-a', T0 + 55_000, 'api');
  idx.upsert({ uid: 'job-b', namespace: 'batch', name: 'job-b', ips: ['10.244.1.9'], start: T0 + 60_000 }, 'api');
  idx.upsert({ uid: 'kp', namespace: 'kube-system', name: 'kube-proxy-x', ips: ['10.0.0.5'], hostNetwork: true, start: T0 }, 'api');
  return idx;
}

describe('podEnricher', () => {
  it('netns first, then source IP, then destination IP; pod_match says which', () => {
    const idx = lab();
    const e = podEnricher(idx);
    const at = '2026-03-01T10:00:30.000000000Z';
    const cases = [
      drop(at, WEB_NETNS, udp('10.244.1.3', '10.244.1.9')), // in web's netns, whatever the addresses
      drop(at, HOST_NETNS, udp('10.244.1.7', '10.244.1.3')), // on the host: the source's pod
      drop(at, HOST_NETNS, udp('192.0.2.1', '10.244.1.3')), // from outside: the destination's pod
      drop(at, HOST_NETNS, udp('192.0.2.1', '192.0.2.2')), // nobody's
      drop(at, HOST_NETNS, null), // no flow (not IP)
    ];
    for (const ev of cases) e.enrich(ev);
    expect(cases.map((ev) => [ev.pod?.name ?? null, ev.pod_match ?? null])).toEqual([
      ['web-0', 'netns'],
      ['web-0', 'src'],
      ['coredns-1', 'dst'],
      [null, null],
      [null, null],
    ]);
    expect(e.matches).toEqual({ netns: 1, src: 1, dst: 1, none: 2 });
  });

  it('attributes by the time of the drop: a reused IP names the pod that had it then', () => {
    const e = podEnricher(lab());
    // as the pipeline hands them (numbers), and as a recording has them (text)
    const at = (sec: number, nsec: number) => new DropTime(T0 / 1000 + sec, nsec);
    const evs = [at(10, 0), at(54, 999_999_999), at(55, 0), at(57, 0), at(65, 1), '2026-03-01T10:00:54.999999999Z', '2026-03-01T10:00:55.000Z'].map((t) =>
      drop(t, HOST_NETNS, udp('10.244.1.9', '192.0.2.1')),
    );
    for (const ev of evs) e.enrich(ev);
    expect(evs.map((ev) => ev.pod?.name ?? null)).toEqual(['job-a', 'job-a', null, null, 'job-b', 'job-a', null]);
  });

  it('never matches a host-network pod by IP', () => {
    const e = podEnricher(lab());
    const ev = drop('2026-03-01T10:00:30.000000000Z', HOST_NETNS, udp('10.0.0.5', '192.0.2.1'));
    e.enrich(ev);
    expect(ev.pod).toBeNull();
  });

  it('tells the index about a netns nobody owns (discovery listens), not about known ones', () => {
    const idx = lab();
    const missed: number[] = [];
    idx.onNetnsMiss((n) => missed.push(n));
    const e = podEnricher(idx);
    e.enrich(drop('2026-03-01T10:00:30.000000000Z', WEB_NETNS, null));
    e.enrich(drop('2026-03-01T10:00:30.000000000Z', 4026533333, null));
    expect(missed).toEqual([4026533333]);
  });

  it('uses now for a time that does not parse, and shares one frozen pod object', () => {
    const e = podEnricher(lab(), { now: () => T0 + 65_000 });
    const a = drop('garbage', HOST_NETNS, udp('10.244.1.9', '192.0.2.1'));
    const b = drop('garbage', HOST_NETNS, udp('10.244.1.9', '192.0.2.1'));
    e.enrich(a);
    e.enrich(b);
    expect(a.pod).toEqual({ namespace: 'batch', name: 'job-b', uid: 'job-b' });
    expect(a.pod).toBe(b.pod);
  });
});

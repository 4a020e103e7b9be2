/**
 * The pod behind a Service, named in the explain line by the pod enricher from the translated
 * address at the time of the drop; the drop's own `pod` stays the one it hit.
 */
import { describe, expect, it } from 'vitest';
import { podEnricher } from '../../src/enrich/pod-enricher.js';
import { PodIndex } from '../../src/enrich/pod-index.js';
import type { DropEvent, Flow } from '../../src/pipeline/events.js';
import { serviceClause } from '../../src/pipeline/service.js';
import type { ServiceRef } from '../../src/pipeline/service.js';

const T0 = Date.parse('2026-03-01T10:00:00Z');
const HOST_NETNS = 4026531840;

function drop(flow: Flow, service?: ServiceRef): DropEvent {
  const d = { src: flow.src, dst: flow.dst, sport: flow.sport ?? null, dport: flow.dport ?? null };
  return {
    type: 'drop',
    time: '2026-03-01T10:00:30.000000000Z',
    family: 'netfilter',
    kind: 'netfilter_rule',
    reason: 'NETFILTER_DROP',
    location: 'nft_do_chain',
    netns: HOST_NETNS,
    ifname: 'eth0',
    ifindex: 2,
    flow,
    pod: null,
    count: 1,
    explain: `${service ? `packet ${serviceClause({ ...service, port: service.port ?? null, reply: service.reply === true }, d)} ` : 'packet '}dropped: a firewall rule returned DROP`,
    hint: '',
    ...(service ? { service } : {}),
  };
}

function lab(): PodIndex {
  const idx = new PodIndex({ now: () => T0 + 120_000 });
  idx.upsert({ uid: 'client', namespace: 'shop', name: 'web-0', ips: ['10.244.2.7'], start: T0 }, 'api');
  idx.upsert({ uid: 'dns', namespace: 'kube-system', name: 'coredns-1', ips: ['10.244.1.5'], start: T0 }, 'api');
  idx.upsert({ uid: 'nld', namespace: 'kube-system', name: 'node-local-dns-x', ips: ['10.0.0.5'], hostNetwork: true, start: T0 }, 'api');
  return idx;
}

describe('the pod behind a Service in the explain line', () => {
  it('names the translated destination, or for a reply the source, and leaves `pod` to the pod enricher', () => {
    const e = podEnricher(lab());
    const to = drop({ proto: 'udp', src: '10.244.2.7', dst: '10.244.1.5', sport: 41000, dport: 53 }, { ip: '10.96.0.10', port: 53 });
    const back = drop({ proto: 'udp', src: '10.244.1.5', dst: '10.244.2.7', sport: 53, dport: 41000 }, { ip: '10.96.0.10', port: 53, reply: true });
    e.enrich(to);
    e.enrich(back);
    expect(to.explain).toBe('packet to service 10.96.0.10:53 (pod kube-system/coredns-1) dropped: a firewall rule returned DROP');
    expect(back.explain).toBe('packet from service 10.96.0.10:53 (pod kube-system/coredns-1) dropped: a firewall rule returned DROP');
    // `pod` stays the pod enricher's (here the source's pod, each way)
    expect([to.pod?.name, to.pod_match, back.pod?.name, back.pod_match]).toEqual(['web-0', 'src', 'coredns-1', 'src']);
  });

  it('keeps the address for an unknown pod, a host-network one, and a drop without DNAT', () => {
    const e = podEnricher(lab());
    const unknown = drop({ proto: 'udp', src: '10.244.2.7', dst: '10.244.9.9', sport: 41000, dport: 53 }, { ip: '10.96.0.10', port: 53 });
    const host = drop({ proto: 'udp', src: '10.244.2.7', dst: '10.0.0.5', sport: 41000, dport: 53 }, { ip: '10.96.0.10', port: 53 });
    const plain = drop({ proto: 'udp', src: '10.244.2.7', dst: '10.244.1.5', sport: 41000, dport: 53 });
    for (const ev of [unknown, host, plain]) e.enrich(ev);
    expect([unknown.explain, host.explain, plain.explain]).toEqual([
      'packet to service 10.96.0.10:53 (pod 10.244.9.9:53) dropped: a firewall rule returned DROP',
      'packet to service 10.96.0.10:53 (pod 10.0.0.5:53) dropped: a firewall rule returned DROP',
      'packet dropped: a firewall rule returned DROP',
    ]);
  });
});

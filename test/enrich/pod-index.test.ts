import { describe, expect, it } from 'vitest';
import { canonicalIp } from '../../src/enrich/ip.js';
import { PodIndex } from '../../src/enrich/pod-index.js';
import type { PodInfo } from '../../src/enrich/pod-index.js';

const T0 = Date.parse('2026-03-01T10:00:00Z');
const s = (sec: number) => T0 + sec * 1000;

const OLD: PodInfo = { uid: 'uid-old', namespace: 'shop', name: 'web-6b7f-old', ips: ['10.244.1.7'], netns: [4026532300], start: s(0) };
const NEW: PodInfo = { uid: 'uid-new', namespace: 'shop', name: 'web-6b7f-new', ips: ['10.244.1.7'], netns: [4026532300], start: s(60) };

function clockAt(sec: number) {
  const c = { t: s(sec) };
  return { c, now: () => c.t };
}

const nameAt = (idx: PodIndex, ip: string, sec: number) => idx.byIp(ip, s(sec))?.pod.name ?? null;

describe('PodIndex: IP reuse during a rolling update', () => {
  it('old drops go to the old pod, new drops to the new one, none in between', () => {
    const { c, now } = clockAt(0);
    const idx = new PodIndex({ now });
    idx.upsert(OLD, 'api');
    c.t = s(50);
    idx.end('uid-old', s(50), 'api');
    c.t = s(61);
    idx.upsert(NEW, 'api');
    expect([-1, 0, 49, 50, 59, 60, 120].map((t) => nameAt(idx, '10.244.1.7', t))).toEqual([
      null,
      'web-6b7f-old',
      'web-6b7f-old',
      null,
      null,
      'web-6b7f-new',
      'web-6b7f-new',
    ]);
  });

  it('a newer pod supersedes one whose end was never seen (a completed Job keeps podIP)', () => {
    const idx = new PodIndex({ now: () => s(61) });
    idx.upsert(OLD, 'api');
    idx.upsert(NEW, 'api');
    expect([30, 59, 60, 300].map((t) => nameAt(idx, '10.244.1.7', t))).toEqual(['web-6b7f-old', 'web-6b7f-old', 'web-6b7f-new', 'web-6b7f-new']);
  });

  it('gives the same answers whatever order the pods arrive in (a relist is unordered)', () => {
    const a = new PodIndex({ now: () => s(61) });
    const b = new PodIndex({ now: () => s(61) });
    a.upsert(OLD, 'api');
    a.upsert(NEW, 'api');
    b.upsert(NEW, 'api');
    b.upsert(OLD, 'api');
    const times = [-5, 0, 30, 59.999, 60, 90];
    expect(times.map((t) => nameAt(b, '10.244.1.7', t))).toEqual(times.map((t) => nameAt(a, '10.244.1.7', t)));
  });

  it('reuses netns inode numbers by lifetime too', () => {
    const idx = new PodIndex({ now: () => s(61) });
    idx.upsert(OLD, 'discovery');
    idx.end('uid-old', s(50), 'discovery');
    idx.upsert(NEW, 'discovery');
    expect([10, 55, 70].map((t) => idx.byNetns(4026532300, s(t))?.uid ?? null)).toEqual(['uid-old', null, 'uid-new']);
  });

  it('a claim without a start owns its IP since forever only when it is the first one', () => {
    const { c, now } = clockAt(0);
    const idx = new PodIndex({ now });
    idx.upsert({ uid: 'a', namespace: 'lab', name: 'a', ips: ['198.18.0.9'] }, 'file');
    idx.end('a', s(10), 'file');
    c.t = s(20);
    idx.upsert({ uid: 'b', namespace: 'lab', name: 'b', ips: ['198.18.0.9'] }, 'file');
    expect([-1e6, 5, 15, 19, 20, 30].map((t) => nameAt(idx, '198.18.0.9', t))).toEqual(['a', 'a', null, null, 'b', 'b']);
  });
});

describe('PodIndex: host network', () => {
  it('never matches a host-network pod by IP, nor by the host netns', () => {
    const idx = new PodIndex();
    idx.upsert({ uid: 'kp', namespace: 'kube-system', name: 'kube-proxy-x', ips: ['10.0.0.5'], netns: [4026531840], hostNetwork: true, start: s(0) }, 'api');
    expect(idx.byIp('10.0.0.5', s(10))).toBeUndefined();
    expect(idx.byNetns(4026531840, s(10))).toBeUndefined();
    expect(idx.get('kp')?.pod).toEqual({ namespace: 'kube-system', name: 'kube-proxy-x', uid: 'kp' });
  });

  it('drops the IP mappings of a pod another source says is on the host network', () => {
    const idx = new PodIndex();
    idx.upsert({ uid: 'kp', namespace: 'kube-system', name: 'kube-proxy-x', ips: ['10.0.0.5'], start: s(0) }, 'file');
    expect(idx.byIp('10.0.0.5', s(10))?.uid).toBe('kp');
    idx.upsert({ uid: 'kp', namespace: 'kube-system', name: 'kube-proxy-x', ips: ['10.0.0.5'], hostNetwork: true }, 'api');
    expect(idx.byIp('10.0.0.5', s(10))).toBeUndefined();
  });
});

describe('PodIndex: several sources', () => {
  it('ends a pod only when every source that saw it has seen it end, at the latest time given', () => {
    const idx = new PodIndex({ now: () => s(100) });
    idx.upsert({ ...OLD, netns: [] }, 'api');
    idx.upsert({ uid: 'uid-old', namespace: '', name: '', netns: [4026532300], ips: ['10.244.1.7'], start: s(1) }, 'discovery');
    idx.end('uid-old', s(50), 'api');
    expect(idx.get('uid-old')?.end).toBe(Infinity);
    expect(nameAt(idx, '10.244.1.7', 52)).toBe('web-6b7f-old');
    idx.endMissing('discovery', new Set(), s(55));
    expect(idx.get('uid-old')?.end).toBe(s(55));
    expect(idx.get('uid-old')?.start).toBe(s(0));
    expect(nameAt(idx, '10.244.1.7', 56)).toBeNull();
  });

  it('keeps the names a source knew when another one does not (discovery without /var/log/pods)', () => {
    const idx = new PodIndex();
    const first = idx.upsert({ uid: 'u1', namespace: '', name: '', netns: [7] }, 'discovery');
    expect(first.pod).toEqual({ namespace: '', name: '', uid: 'u1' });
    idx.upsert({ uid: 'u1', namespace: 'shop', name: 'cart-0', ips: ['10.1.1.1'] }, 'api');
    idx.upsert({ uid: 'u1', namespace: '', name: '', netns: [7] }, 'discovery');
    expect(idx.byNetns(7, s(0))?.pod).toEqual({ namespace: 'shop', name: 'cart-0', uid: 'u1' });
    expect(Object.isFrozen(idx.byNetns(7, s(0))?.pod)).toBe(true);
  });

  it('folds a static pod found by its config hash into its mirror pod from the API', () => {
    const idx = new PodIndex();
    const hash = '5b1d3fbe0c81c2aec63a48e2a89f3d57';
    idx.upsert({ uid: hash, namespace: 'kube-system', name: 'etcd-node1', netns: [4026532999], ips: ['10.244.0.2'], start: s(0) }, 'discovery');
    idx.upsert({ uid: 'mirror-uid', namespace: 'kube-system', name: 'etcd-node1', ips: ['10.244.0.2'], aliases: [hash], start: s(1) }, 'api');
    expect(idx.size).toBe(1);
    expect(idx.byNetns(4026532999, s(5))?.pod).toEqual({ namespace: 'kube-system', name: 'etcd-node1', uid: 'mirror-uid' });
    expect(idx.byIp('10.244.0.2', s(5))?.uid).toBe('mirror-uid');
    // discovery keeps reporting the hash: same record, and its absence ends it
    idx.upsert({ uid: hash, namespace: 'kube-system', name: 'etcd-node1', netns: [4026532999] }, 'discovery');
    expect(idx.size).toBe(1);
    idx.end('mirror-uid', s(9), 'api');
    idx.endMissing('discovery', new Set(), s(10));
    expect(idx.get(hash)?.end).toBe(s(10));
  });

  it('endMissing ends only what the listing source vouched for', () => {
    const idx = new PodIndex();
    idx.upsert({ uid: 'f', namespace: 'lab', name: 'f', ips: ['198.18.1.1'] }, 'file');
    idx.upsert({ uid: 'a', namespace: 'lab', name: 'a', ips: ['198.18.1.2'] }, 'api');
    idx.upsert({ uid: 'b', namespace: 'lab', name: 'b', ips: ['198.18.1.3'] }, 'api');
    expect(idx.endMissing('api', new Set(['b']), s(3))).toBe(1);
    expect([...idx.pods()].map((p) => [p.uid, p.end])).toEqual([
      ['f', Infinity],
      ['a', s(3)],
      ['b', Infinity],
    ]);
  });
});

describe('PodIndex: housekeeping and keys', () => {
  it('forgets ended pods after the retention time, not before', () => {
    const { c, now } = clockAt(0);
    const idx = new PodIndex({ now, retentionMs: 600_000 });
    idx.upsert(OLD, 'api');
    idx.end('uid-old', s(50), 'api');
    expect(idx.gc(s(50 + 600))).toBe(0);
    expect(nameAt(idx, '10.244.1.7', 10)).toBe('web-6b7f-old');
    c.t = s(50 + 601);
    expect(idx.gc()).toBe(1);
    expect(nameAt(idx, '10.244.1.7', 10)).toBeNull();
    expect(idx.size).toBe(0);
  });

  it('keys IPs by the text drop events use: RFC 5952 IPv6, and IPv4-mapped peers', () => {
    const idx = new PodIndex();
    idx.upsert({ uid: 'v6', namespace: 'lab', name: 'v6', ips: ['FD99:0:0:0::12:0002', '198.18.5.5'] }, 'file');
    expect(idx.byIp('fd99::12:2', 0)?.uid).toBe('v6');
    expect(idx.byIp('::ffff:198.18.5.5', 0)?.uid).toBe('v6');
    expect(idx.byIp('198.18.5.6', 0)).toBeUndefined();
  });

  it('canonicalIp', () => {
    expect(['10.0.0.1', 'FD99::1', '2001:db8:0:0:1:0:0:1', '::ffff:10.1.2.3', '0:0:0:0:0:0:0:1', 'fe80::1%eth0', '10.0.0.256', 'x'].map(canonicalIp)).toEqual([
      '10.0.0.1',
      'fd99::1',
      '2001:db8::1:0:0:1',
      '::ffff:10.1.2.3',
      '::1',
      null,
      null,
      null,
    ]);
  });
});

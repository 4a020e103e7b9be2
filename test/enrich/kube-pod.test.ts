import { describe, expect, it } from 'vitest';
import { podInfo } from '../../src/enrich/kube-pod.js';
import { podObject } from './pod-objects.js';

const ms = Date.parse;

describe('podInfo', () => {
  it('takes IPs (dual stack) and the time the sandbox got its network', () => {
    const o = podObject({
      name: 'web-6b7f9c8d4d-x2x9q',
      uid: 'u1',
      ips: ['10.244.1.7', 'fd00:10:244:1::7'],
      created: '2026-03-01T10:00:00Z',
      started: '2026-03-01T10:00:01Z',
      networkReady: '2026-03-01T10:00:03Z',
    });
    expect(podInfo(o, 0)).toEqual({
      uid: 'u1',
      namespace: 'shop',
      name: 'web-6b7f9c8d4d-x2x9q',
      ips: ['10.244.1.7', 'fd00:10:244:1::7'],
      start: ms('2026-03-01T10:00:03Z'),
    });
  });

  it('falls back to startTime before PodReadyToStartContainers existed; a pending pod has no IPs', () => {
    expect(podInfo(podObject({ name: 'p', uid: 'u', started: '2026-03-01T10:00:01Z' }), 0)).toEqual({
      uid: 'u',
      namespace: 'shop',
      name: 'p',
      ips: [],
      start: ms('2026-03-01T10:00:01Z'),
    });
  });

  it('ends a finished pod when its last container finished (the object keeps podIP)', () => {
    const o = podObject({ name: 'job-x', uid: 'u', ips: ['10.244.1.9'], phase: 'Succeeded', networkReady: '2026-03-01T10:00:02Z', finished: '2026-03-01T10:05:00Z' });
    expect(podInfo(o, 42)).toMatchObject({ ips: ['10.244.1.9'], start: ms('2026-03-01T10:00:02Z'), end: ms('2026-03-01T10:05:00Z') });
    const noTimes = podObject({ name: 'job-y', uid: 'v', ips: ['10.244.1.9'], phase: 'Failed' });
    (noTimes.status as { containerStatuses: unknown[] }).containerStatuses = [];
    expect(podInfo(noTimes, 42)?.end).toBe(42);
  });

  it('marks host-network pods and static pods (mirror UID + config hash)', () => {
    expect(podInfo(podObject({ name: 'kube-proxy-abcde', namespace: 'kube-system', uid: 'kp', hostNetwork: true }), 0)).toMatchObject({
      hostNetwork: true,
      ips: ['10.0.0.11'],
    });
    expect(podInfo(podObject({ name: 'etcd-dt-node1', namespace: 'kube-system', uid: 'mirror', mirrorOf: '5b1d3fbe0c81c2aec63a48e2a89f3d57' }), 0)?.aliases).toEqual([
      '5b1d3fbe0c81c2aec63a48e2a89f3d57',
    ]);
  });

  it('is null for anything that is not a pod', () => {
    expect([null, {}, { metadata: { name: 'x' } }, { kind: 'Status', code: 410 }].map((o) => podInfo(o, 0))).toEqual([null, null, null, null]);
  });
});

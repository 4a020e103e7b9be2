/**
 * A Kubernetes Pod object (core/v1) → what the index needs: names, IPs, host network, and the
 * lifetime of its network. Its IPs are its own from the moment its sandbox got a network — the
 * `PodReadyToStartContainers` condition (`PodHasNetwork` before 1.28); `status.startTime` and
 * `creationTimestamp` are earlier fallbacks. A Succeeded or Failed pod's sandbox is gone
 * (its IP is free for the next pod) even while the object stays with `podIP` still set.
 */
import type { PodInfo } from './pod-index.js';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const time = (v: unknown): number | undefined => {
  const s = str(v);
  if (s === undefined) return undefined;
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? undefined : ms;
};

/** Network conditions, newest name first. */
const NETWORK_CONDITIONS = ['PodReadyToStartContainers', 'PodHasNetwork'];

export interface PodMeta {
  uid: string;
  namespace: string;
  name: string;
  resourceVersion: string | undefined;
}

export function podMeta(o: unknown): PodMeta | null {
  const m = obj(obj(o)?.metadata);
  const uid = str(m?.uid);
  const namespace = str(m?.namespace);
  const name = str(m?.name);
  if (!uid || !namespace || !name) return null;
  return { uid, namespace, name, resourceVersion: str(m?.resourceVersion) };
}

/** The index's view of a Pod object, or null when it is not one. `now` ends a finished pod whose end time is not recorded. */
export function podInfo(o: unknown, now: number): PodInfo | null {
  const meta = podMeta(o);
  if (meta === null) return null;
  const pod = obj(o)!;
  const m = obj(pod.metadata)!;
  const spec = obj(pod.spec);
  const status = obj(pod.status);

  const info: PodInfo = { uid: meta.uid, namespace: meta.namespace, name: meta.name };
  const mirror = str(obj(m.annotations)?.['kubernetes.io/config.mirror']);
  if (mirror && mirror !== meta.uid) info.aliases = [mirror];
  if (spec?.hostNetwork === true) info.hostNetwork = true;

  const ips = new Set<string>();
  if (Array.isArray(status?.podIPs)) for (const p of status.podIPs) {
    const ip = str(obj(p)?.ip);
    if (ip) ips.add(ip);
  }
  const single = str(status?.podIP);
  if (single) ips.add(single);
  info.ips = [...ips];

  let start: number | undefined;
  const conditions = Array.isArray(status?.conditions) ? status.conditions.map(obj) : [];
  for (const type of NETWORK_CONDITIONS) {
    const c = conditions.find((x) => x?.type === type && x.status === 'True');
    start = time(c?.lastTransitionTime);
    if (start !== undefined) break;
  }
  start ??= time(status?.startTime) ?? time(m.creationTimestamp);
  if (start !== undefined) info.start = start;

  const phase = status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') {
    let end: number | undefined;
    for (const list of [status?.containerStatuses, status?.initContainerStatuses, status?.ephemeralContainerStatuses]) {
      if (!Array.isArray(list)) continue;
      for (const cs of list) {
        const t = time(obj(obj(obj(cs)?.state)?.terminated)?.finishedAt);
        if (t !== undefined && (end === undefined || t > end)) end = t;
      }
    }
    info.end = end ?? now;
  }
  return info;
}

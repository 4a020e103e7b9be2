/**
 * Names the pod behind a Service in a drop's explain line: "to service 10.96.0.10:53 (pod
 * kube-system/coredns-1)" instead of its address, when the pod index knows who held the
 * translated address at the time of the drop. `pod` is not touched: it stays the pod the
 * drop hit (src/enrich/pod-enricher.ts), which for a drop on the client's side is the client.
 */
import type { DropEvent } from '../pipeline/events.js';
import { serviceClause } from '../pipeline/service.js';
import type { PodIndex } from './pod-index.js';

/** `t`: the drop's time, epoch ms. */
export function nameServicePod(ev: DropEvent, index: PodIndex, t: number): void {
  const s = ev.service;
  const f = ev.flow;
  if (!s || !f) return;
  const r = index.byIp(s.reply ? f.src : f.dst, t);
  if (!r || r.hostNetwork || r.pod.name === '') return;
  const addrs = { src: f.src, dst: f.dst, sport: f.sport ?? null, dport: f.dport ?? null };
  const name = r.pod.namespace ? `${r.pod.namespace}/${r.pod.name}` : r.pod.name;
  ev.explain = ev.explain.replace(serviceClause(s, addrs), serviceClause(s, addrs, name));
}

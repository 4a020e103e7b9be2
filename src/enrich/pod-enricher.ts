/**
 * Sets `pod` on each drop: the pod owning the netns where it was dropped, else the pod owning
 * its source IP, else its destination IP's, each at the time of the drop (IPs are reused).
 * `pod_match` says which rule matched. A netns nobody owns is reported to the index, where
 * node-local discovery may be listening for pods started since its last scan.
 */
import { timeMs } from '../pipeline/clock.js';
import type { DropEvent } from '../pipeline/events.js';
import type { PodIndex } from './pod-index.js';
import { nameServicePod } from './service-pod.js';
import type { Enricher } from './types.js';

export interface PodMatchCounts {
  netns: number;
  src: number;
  dst: number;
  none: number;
}

export interface PodEnricher extends Enricher {
  readonly matches: PodMatchCounts;
}

export interface PodEnricherOptions {
  /** Epoch ms now, for a drop whose time (text, in a line written by hand) does not parse. */
  now?: () => number;
  /** Run by close(): the sources feeding the index (watches, timers). */
  close?: () => void | Promise<void>;
}

export function podEnricher(index: PodIndex, opts: PodEnricherOptions = {}): PodEnricher {
  const now = opts.now ?? Date.now;
  const matches: PodMatchCounts = { netns: 0, src: 0, dst: 0, none: 0 };
  return {
    name: 'pod',
    matches,
    enrich(ev: DropEvent): void {
      let t = timeMs(ev.time);
      if (Number.isNaN(t)) t = now();
      if (ev.service) nameServicePod(ev, index, t);
      if (ev.netns) {
        const r = index.byNetns(ev.netns, t);
        if (r !== undefined) {
          ev.pod = r.pod;
          ev.pod_match = 'netns';
          matches.netns++;
          return;
        }
        index.netnsMiss(ev.netns);
      }
      const f = ev.flow;
      if (f !== null) {
        const s = index.byIp(f.src, t);
        if (s !== undefined) {
          ev.pod = s.pod;
          ev.pod_match = 'src';
          matches.src++;
          return;
        }
        const d = index.byIp(f.dst, t);
        if (d !== undefined) {
          ev.pod = d.pod;
          ev.pod_match = 'dst';
          matches.dst++;
          return;
        }
      }
      matches.none++;
    },
    ...(opts.close ? { close: opts.close } : {}),
  };
}

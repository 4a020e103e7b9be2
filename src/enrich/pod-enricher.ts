/**
 * Sets `pod` on each drop: the pod owning the netns where it was dropped, else the pod owning
 * its source IP, else its destination IP's, each at the time of the drop (IPs are reused).
 * `pod_match` says which rule matched. A netns nobody owns is reported to the index, where
 * node-local discovery may be listening for pods started since its last scan.
 */
import type { DropEvent } from '../pipeline/events.js';
import type { PodIndex } from './pod-index.js';
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
  /** Epoch ms now, for a drop whose time does not parse. */
  now?: () => number;
  /** Run by close(): the sources feeding the index (watches, timers). */
  close?: () => void | Promise<void>;
}

/**
 * Epoch ms of a drop's `time` ("2026-11-24T09:04:30.123456789Z"). Drops of one batch share the
 * second, so the date part is parsed once per second and the rest is three digits.
 */
export function isoMsParser(): (iso: string) => number {
  let prefix = '';
  let base = NaN;
  return (iso) => {
    if (prefix === '' || !iso.startsWith(prefix)) {
      prefix = iso.slice(0, 19);
      base = prefix.length === 19 ? Date.parse(`${prefix}Z`) : NaN;
    }
    let ms = 0;
    if (iso.charCodeAt(19) === 46 /* . */) {
      for (let i = 20, scale = 100; i < 23; i++, scale /= 10) {
        const d = iso.charCodeAt(i) - 48;
        if (d < 0 || d > 9) break;
        ms += d * scale;
      }
    }
    return base + ms;
  };
}

export function podEnricher(index: PodIndex, opts: PodEnricherOptions = {}): PodEnricher {
  const now = opts.now ?? Date.now;
  const parse = isoMsParser();
  const matches: PodMatchCounts = { netns: 0, src: 0, dst: 0, none: 0 };
  return {
    name: 'pod',
    matches,
    enrich(ev: DropEvent): void {
      let t = parse(ev.time);
      if (Number.isNaN(t)) t = now();
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

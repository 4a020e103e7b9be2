/**
 * What the TUI keeps of a stream's start and stats lines. Lines of older stream versions lack
 * the newer fields: absent counts read as 0, absent values as null.
 */
import type { StartLine, StatsLine } from '../pipeline/events.js';
import { timeMs } from './leaves.js';
import type { StartInfo, StatsInfo } from './snapshot.js';

export function statsInfoOf(s: StatsLine): StatsInfo {
  const lost: Partial<StatsLine['lost']> = s.lost ?? {};
  const k: Partial<StatsLine['kernel']> = s.kernel ?? {};
  const ringBuffer = lost.ring_buffer ?? 0;
  const userspace = lost.userspace ?? 0;
  return {
    time: timeMs(s.time),
    final: s.final === true,
    events: s.events ?? 0,
    lost: { ringBuffer, userspace, total: lost.total ?? ringBuffer + userspace },
    decodeErrors: s.decode_errors ?? 0,
    enrichmentFailures: s.enrichment_failures ?? 0,
    countersFailures: s.counters_failures ?? 0,
    kernelDrops: k.drops ?? null,
    byReason: { ...k.by_reason },
    neighCreateFailed: k.neigh_create_failed ?? null,
  };
}

export function startInfoOf(s: StartLine): StartInfo {
  return {
    node: s.node,
    kernel: s.kernel,
    version: s.version,
    time: timeMs(s.time),
    probes: s.probes.map((p) => ({ probe: p.probe, hook: p.hook, state: p.state, ...(p.why !== undefined ? { why: p.why } : {}) })),
    filterNetns: s.filter?.netns ?? null,
    attribution: s.attribution ?? null,
  };
}

/** The `stats` line: what was delivered, folded, lost and failed, next to the kernel's exact counts. */
import type { StatsLine } from './events.js';
import type { ReasonNames } from './reasons.js';
import type { KernelCounters, TracerHandle } from '../native/binding.js';

/** Counts kept by the stages, read when a stats line is made. */
export interface StatsSources {
  events(): number;
  folded(): number;
  /** drops that can no longer be folded (Folder.unfolded) */
  unfolded(): number;
  decodeErrors(): number;
  enrichmentFailures(): number;
  countersFailures(): number;
  failures(): number;
  pcap?: () => NonNullable<StatsLine['pcap']>;
  /** each probe's state now (late-probes.ts probeStates) */
  probes?: () => NonNullable<StatsLine['probes']>;
  /** rule attribution's counts (src/host/rules/stage.ts), when it runs */
  rules?: () => NonNullable<StatsLine['rules']>;
  /** --stack: lines whose stack the map did not have (StackResolver.unreadable); absent without --stack */
  stacksUnreadable?: () => number;
  /** --dns: the DNS stage's counts, with the kernel's and the addon's */
  dns?: (c: KernelCounters) => NonNullable<StatsLine['dns']>;
}

export function statsLine(tracer: TracerHandle, reasons: ReasonNames, s: StatsSources, time: string, final: boolean): StatsLine {
  const c = tracer.readCounters();
  const byReason: Record<string, number> = {};
  const decodeErrors = s.decodeErrors() + Number(c.shortRecords);
  for (const [num, n] of Object.entries(c.reasons)) byReason[reasons.name(Number(num))] = Number(n);
  const line: StatsLine = {
    type: 'stats',
    time,
    final,
    events: s.events(),
    folded: s.folded(),
    // each a drop of kernel.drops that no line stands for: events + folded + unfolded ==
    // kernel.drops once the stream has drained (docs/ndjson.md)
    unfolded: s.unfolded() + Number(c.userLostUnkeyed) + decodeErrors,
    lost: {
      ring_buffer: Number(c.ringLost),
      userspace: Number(c.userLost),
      total: Number(c.ringLost + c.userLost),
    },
    decode_errors: decodeErrors,
    enrichment_failures: s.enrichmentFailures(),
    counters_failures: s.countersFailures(),
    failures: s.failures(),
    kernel: {
      drops: Number(c.seen),
      suppressed: Number(c.suppressed),
      by_reason: byReason,
      neigh_create_failed: { ipv4: Number(c.neighFail4), ipv6: Number(c.neighFail6) },
    },
  };
  if (s.pcap) line.pcap = s.pcap();
  if (s.probes) line.probes = s.probes();
  if (s.rules) line.rules = s.rules();
  if (s.stacksUnreadable) {
    // per detail event the kernel sent: taken + not_taken + failed (docs/ndjson.md)
    line.stacks = { taken: Number(c.stackTaken), not_taken: Number(c.stackNotTaken), failed: Number(c.stackFailed), unreadable: s.stacksUnreadable() };
  }
  if (s.dns) line.dns = s.dns(c);
  return line;
}

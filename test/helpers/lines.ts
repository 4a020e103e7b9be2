/** Stream lines for unit tests of what reads them (sinks, the TUI, the rule stage, the filter). */
import type { DropEvent, StatsLine } from '../../src/pipeline/events.js';

/**
 * A `netfilter_rule` drop line with every field a live one has; `o` replaces any of them (a
 * field left out of `o` keeps this default, so a test names what it relies on).
 */
export function ruleDropLine(o: Partial<DropEvent> = {}): DropEvent {
  return {
    type: 'drop',
    time: '2026-12-05T12:00:00.000000000Z',
    family: 'netfilter',
    kind: 'netfilter_rule',
    reason: 'NETFILTER_DROP',
    location: 'nft_do_chain',
    netns: 4026532001,
    ifname: 'eth0',
    ifindex: 2,
    flow: { proto: 'udp', src: '10.0.3.7', dst: '10.0.9.1', sport: 41000, dport: 53 },
    pod: null,
    count: 1,
    explain: 'a firewall rule returned DROP',
    hint: 'find the rule',
    ...o,
  };
}

/** A stats line of a stream that counted nothing yet; `o` replaces any field. */
export function statsLineOf(o: Partial<StatsLine> = {}): StatsLine {
  return {
    type: 'stats',
    time: 't',
    final: false,
    events: 0,
    folded: 0,
    lost: { ring_buffer: 0, userspace: 0, total: 0 },
    decode_errors: 0,
    enrichment_failures: 0,
    counters_failures: 0,
    kernel: { drops: 0, suppressed: 0, by_reason: {} },
    ...o,
  };
}

/**
 * The NDJSON sink with a reader that never reads: at most 4 MiB (the default cap) waits, drop
 * lines past it are skipped and their drops counted in lost.stdout; stats lines always go out.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { DropEvent, StatsLine } from '../../src/pipeline/events.js';
import { format, NdjsonSink } from '../../src/sinks/ndjson.js';

/** A stream whose first write never completes: everything after it waits in writableLength. */
function stalled(): Writable {
  return new Writable({ write: () => {} });
}

function drop(count: number, dport: number): DropEvent {
  return {
    type: 'drop',
    time: '2026-12-05T07:00:00.000000000Z',
    family: 'netfilter',
    kind: 'netfilter_rule',
    reason: 'NETFILTER_DROP',
    location: 'nf_hook_slow',
    netns: 4026531840,
    ifname: 'veth0',
    ifindex: 2,
    flow: { proto: 'udp', src: '198.18.1.1', dst: '198.18.1.2', sport: 40000, dport },
    pod: null,
    count,
    explain: 'an iptables or nftables rule dropped the packet',
    hint: '',
  };
}

function stats(drops: number): StatsLine {
  return {
    type: 'stats',
    time: '2026-12-05T07:00:01.000Z',
    final: true,
    events: drops,
    folded: 0,
    lost: { ring_buffer: 0, userspace: 0, total: 0 },
    decode_errors: 0,
    enrichment_failures: 0,
    counters_failures: 0,
    kernel: { drops, suppressed: 0, by_reason: { NETFILTER_DROP: drops } },
  };
}

describe('NdjsonSink', () => {
  it('holds at most 4 MiB for a reader that stopped, counts the drops of every skipped line and still writes the stats line', () => {
    const out = stalled();
    const sink = new NdjsonSink(out);
    const lineBytes = format(drop(3, 20000)).length;
    let written = 0;
    let skipped = 0;
    for (let i = 0; i < 20_000; i++) {
      const before = out.writableLength;
      sink.write(drop(3, 20000 + (i % 10_000)));
      if (out.writableLength > before) written += 3;
      else skipped += 3;
    }
    // skipping starts once more than 4 MiB wait, and not before
    expect(out.writableLength).toBeGreaterThan(4 * 1024 * 1024);
    expect(out.writableLength).toBeLessThanOrEqual(4 * 1024 * 1024 + lineBytes + 2);
    expect(written + skipped).toBe(60_000);
    expect(skipped).toBeGreaterThan(0);

    const waiting = out.writableLength;
    const final = stats(60_000);
    const l = sink.admit(final);
    sink.write(final);
    expect(out.writableLength).toBeGreaterThan(waiting);
    expect(l).toEqual({ ...final, lost: { ring_buffer: 0, userspace: 0, stdout: skipped, total: skipped } });
  });
});

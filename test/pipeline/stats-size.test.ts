/**
 * The stats line does not grow with pods, netns or flows: its only map is `kernel.by_reason`, one
 * entry per drop reason the kernel defines (the BPF map has 1,024 slots, the last one shared by
 * every larger value). At its largest, every reason of 6.18 plus the shared slot with counts at
 * 2^53, it stays far under containerd's 16 KiB cut (~5 KB), and so does a kernel with twice as
 * many reasons, each named as long as the longest (~300 such reasons would reach the limit).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAX_LINE_BYTES } from '../../src/host/counters-split.js';
import type { KernelCounters, TracerHandle } from '../../src/native/binding.js';
import { ReasonNames } from '../../src/pipeline/reasons.js';
import { statsLine } from '../../src/pipeline/stats.js';

const golden = JSON.parse(readFileSync(new URL('../fixtures/golden-6.18.json', import.meta.url), 'utf8')) as { reasons: Array<[string, number]> };
const BIG = 2n ** 53n - 1n;
const REASON_SLOTS = 1024;

function largest(reasons: Array<[string, number]>): number {
  const counts: KernelCounters = {
    reasons: Object.fromEntries([...reasons.map(([, v]) => [String(v), BIG]), [String(REASON_SLOTS - 1), BIG]]),
    seen: BIG,
    suppressed: BIG,
    neighFail4: BIG,
    neighFail6: BIG,
    stackTaken: BIG,
    stackNotTaken: BIG,
    stackFailed: BIG,
    ringLost: BIG,
    userLost: BIG,
    userLostUnkeyed: BIG,
    shortRecords: BIG,
    pollErrors: BIG,
  };
  const tracer = { readCounters: () => counts } as unknown as TracerHandle;
  const n = Number(BIG);
  const line = statsLine(
    tracer,
    new ReasonNames(reasons),
    { events: () => n, folded: () => n, unfolded: () => n, decodeErrors: () => n, enrichmentFailures: () => n, countersFailures: () => n, failures: () => n, pcap: () => ({ packets: n, bytes: n, skipped: n, limit_reached: true }) },
    '2026-12-05T09:00:00.000Z',
    true,
  );
  // a stdout line's lost.stdout is added by the CLI: the same width as the others
  line.lost.stdout = n;
  expect(Object.keys(line.kernel.by_reason).length).toBe(new Set(reasons.map(([, v]) => v)).size + 1);
  return Buffer.byteLength(`${JSON.stringify(line)}\n`);
}

describe('the stats line', () => {
  it('stays under the line limit with every drop reason of 6.18 at 2^53', () => {
    const bytes = largest(golden.reasons);
    console.log(`largest stats line with the ${golden.reasons.length} reasons of 6.18: ${bytes} bytes`);
    expect(bytes).toBeLessThan(MAX_LINE_BYTES);
    expect(bytes).toBeGreaterThan(4000);
  });

  it('and with twice as many reasons, each named as long as the longest of 6.18', () => {
    const longest = Math.max(...golden.reasons.map(([n]) => n.length));
    const many: Array<[string, number]> = Array.from({ length: 2 * golden.reasons.length }, (_, i) => [`SKB_DROP_REASON_${'X'.repeat(longest - 20)}${String(i).padStart(4, '0')}`, i]);
    const bytes = largest(many);
    console.log(`largest stats line with ${many.length} reasons of ${longest} characters: ${bytes} bytes`);
    expect(bytes).toBeLessThan(MAX_LINE_BYTES);
  });
});

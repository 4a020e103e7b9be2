/**
 * End to end, as root: `droptrace stream --filter` against real drops of two kinds in a
 * throw-away namespace pair — a DROP rule on two ports and a closed port. Each stream writes
 * exactly the drops its filter matches (detail and folded lines), with exact counts, and its stats
 * lines count the rest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePair, sendUdp } from '../../helpers/netns.js';
import type { Pair } from '../../helpers/netns.js';
import { schemaErrors } from '../../helpers/schema.js';
import { drops, startStream, sumCount } from '../../helpers/stream.js';
import type { Line } from '../../helpers/stream.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('skipping stream --filter end-to-end tests: they need root (BPF programs, network namespaces)');

interface Stats {
  final: boolean;
  filtered: number;
  unfolded: number;
  lost: { stdout: number };
  kernel: { drops: number; by_reason: Record<string, number> };
}

const dport = (l: Line) => (l.flow as { dport?: number } | null)?.dport;

describe.skipIf(!isRoot)('droptrace stream --filter, end to end', () => {
  let p: Pair;
  beforeAll(() => {
    p = makePair({ ipv6: false, drop: [{ proto: 'udp', dport: 5301 }, { proto: 'udp', dport: 5303 }] });
    // neighbours are permanent (makePair): no ARP runs
  });
  afterAll(() => p?.destroy());

  it('writes exactly the matching drops, counts the excluded ones, and the sum stays exact', async () => {
    const RULE = 29; // DROP rule, port 5301: what the first filter wants
    const OTHER_RULE = 11; // DROP rule, port 5303: the right kind, the wrong port
    const CLOSED = 17; // nothing listens on 5302: NO_SOCKET
    // past 5 detail events per key a second the rest comes as folded lines: the filter must count those whole too
    const netns = ['--netns', String(p.netnsB), '--stats-interval', '1', '--detail-limit', '5'];
    const rule = startStream([...netns, '--filter', 'kind=netfilter_rule and port=5301']);
    const closed = startStream([...netns, '--filter', 'port=5302 and not (family=netfilter or reason=NETFILTER_DROP)']);
    try {
      await Promise.all([rule.ready, closed.ready]);
      sendUdp(p.a, p.ipA, 40001, p.ipB, 5302, CLOSED);
      sendUdp(p.a, p.ipA, 40002, p.ipB, 5303, OTHER_RULE);
      sendUdp(p.a, p.ipA, 40003, p.ipB, 5301, RULE);
      await rule.until((ls) => sumCount(drops(ls)) >= RULE);
      await closed.until((ls) => sumCount(drops(ls)) >= CLOSED);
      expect((await rule.stop()).code).toBe(0);
      expect((await closed.stop()).code).toBe(0);

      const check = (lines: Line[], want: number) => {
        const st = lines.find((l) => l.type === 'stats' && l.final === true) as unknown as Stats;
        expect(st.kernel.by_reason.NETFILTER_DROP).toBe(RULE + OTHER_RULE);
        expect(st.kernel.by_reason.NO_SOCKET).toBe(CLOSED);
        expect([st.unfolded, st.lost.stdout]).toEqual([0, 0]);
        // every drop the kernel saw is a written line's count or a filtered one, exactly
        expect(sumCount(drops(lines))).toBe(want);
        expect(st.filtered).toBe(st.kernel.drops - want);
        // earlier stats lines count what was excluded so far, never more
        const earlier = lines.filter((l) => l.type === 'stats' && l.final === false) as unknown as Stats[];
        for (const e of earlier) expect(e.filtered).toBeLessThanOrEqual(st.filtered);
        expect(schemaErrors(lines)).toEqual([]);
        return st;
      };

      const st = check(rule.lines, RULE);
      expect(drops(rule.lines).some((d) => d.folded === true && (d.count as number) > 1)).toBe(true);
      expect(drops(closed.lines).some((d) => d.folded === true && (d.count as number) > 1)).toBe(true);
      expect(st.filtered).toBeGreaterThanOrEqual(OTHER_RULE + CLOSED);
      expect(rule.lines[0]).toMatchObject({ type: 'start', filter: { netns: p.netnsB, expr: 'kind=netfilter_rule and port=5301' } });
      for (const d of drops(rule.lines)) {
        expect(d).toMatchObject({ kind: 'netfilter_rule', reason: 'NETFILTER_DROP', netns: p.netnsB, flow: { proto: 'udp', src: p.ipA, dst: p.ipB, sport: 40003, dport: 5301 } });
      }

      check(closed.lines, CLOSED);
      for (const d of drops(closed.lines)) {
        expect(d).toMatchObject({ kind: 'no_socket', reason: 'NO_SOCKET', flow: { proto: 'udp', sport: 40001, dport: 5302 } });
      }
      expect(drops(closed.lines).every((d) => dport(d) === 5302)).toBe(true);
    } finally {
      await rule.stop();
      await closed.stop();
    }
  });
});

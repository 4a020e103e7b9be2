/**
 * --stack end to end, as root: a DROP rule in a throw-away namespace, the real CLI on each way
 * of reaching kfree_skb. The first --stack-per-key drops of the key carry a kernel stack through
 * netfilter (nf_hook_slow), the later ones none, and the stats line's count of stacks taken is
 * exactly the lines with a stack. Without --stack no line has one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOOKS } from '../../src/native/binding.js';
import { inNs, makePair, sendUdp } from '../helpers/netns.js';
import type { Pair } from '../helpers/netns.js';
import { schemaErrors } from '../helpers/schema.js';
import { drops, startStream, sumCount } from '../helpers/stream.js';
import type { Line } from '../helpers/stream.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('skipping end-to-end --stack tests: they need root (BPF programs, network namespaces)');

const PORT = 5311;
const N = 10;
const PER_KEY = 3;

interface Stacks {
  taken: number;
  not_taken: number;
  failed: number;
  unreadable: number;
}

describe.skipIf(!isRoot)('droptrace stream --stack, end to end', () => {
  let p: Pair;
  beforeAll(() => {
    p = makePair();
    // resolve the neighbour first: the N datagrams go out one by one, one key
    sendUdp(p.a, p.ipA, 40000, p.ipB, 9, 1);
    inNs(p.b, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', String(PORT), '-j', 'DROP']);
  });
  afterAll(() => p?.destroy());

  const mine = (l: Line) => l.kind === 'netfilter_rule' && (l.flow as { dport?: number } | null)?.dport === PORT;
  const finalStats = (lines: Line[]) => lines.find((l) => l.type === 'stats' && l.final === true)!;

  for (const hook of HOOKS) {
    it(`${hook}: a stack through nf_hook_slow on the key's first ${PER_KEY} drops, none after, counted exactly`, async () => {
      const s = startStream(['--netns', String(p.netnsB), '--stack', '--stack-per-key', String(PER_KEY), '--hook', hook, '--no-rules', '--counters-interval', '0']);
      try {
        await s.ready;
        sendUdp(p.a, p.ipA, 40011, p.ipB, PORT, N);
        await s.until((ls) => sumCount(drops(ls).filter(mine)) >= N);
        expect((await s.stop()).code).toBe(0);
        const got = drops(s.lines).filter(mine);
        expect(sumCount(got)).toBe(N);
        const withStack = got.filter((d) => d.stack !== undefined);
        // each drop with a stack is a line of its own, and they are the key's first
        expect(withStack.map((d) => d.count)).toEqual(Array(PER_KEY).fill(1));
        expect(got.slice(0, PER_KEY)).toEqual(withStack);
        expect(sumCount(got.filter((d) => d.stack === undefined))).toBe(N - PER_KEY);
        for (const d of withStack) {
          const stack = d.stack as string[];
          expect(stack.length).toBeGreaterThan(4);
          expect(stack.length).toBeLessThanOrEqual(16);
          for (const f of stack) expect(f).toMatch(/^[\w.]+\+0x[0-9a-f]+( \[\w+\])?$/);
          // innermost first: the function that freed it, then the drop's location, its caller
          expect(stack[0]).toMatch(/^(sk_skb_reason_drop|kfree_skb_reason|kfree_skb)\+/);
          expect(stack[1]!.startsWith(`${d.location as string}+`)).toBe(true);
          expect(stack.some((f) => f.startsWith('nf_hook_slow+'))).toBe(true);
          expect(stack.some((f) => /^(ip_local_deliver|ip_rcv)\+/.test(f))).toBe(true);
        }
        // the kernel's count: every line with a stack (the netns's own IPv6 drops too), nothing
        // else. A stray drop of the netns still in the backlog at stop is lost in userspace (as
        // in stream.e2e.test.ts), with its stack: only such a loss may stand between the two.
        const st = finalStats(s.lines);
        const stacks = st.stacks as Stacks;
        const lost = st.lost as { ring_buffer: number; userspace: number; stdout: number };
        expect({ ring_buffer: lost.ring_buffer, stdout: lost.stdout }).toEqual({ ring_buffer: 0, stdout: 0 });
        const lines = drops(s.lines).filter((d) => d.stack !== undefined).length;
        if (lost.userspace === 0) expect(stacks.taken).toBe(lines);
        else expect(stacks.taken - lines).toBeLessThanOrEqual(lost.userspace);
        expect({ failed: stacks.failed, unreadable: stacks.unreadable }).toEqual({ failed: 0, unreadable: 0 });
        // one verdict per detail event sent: delivered, or lost in userspace
        expect(stacks.taken + stacks.not_taken + stacks.failed).toBe((st.events as number) + lost.userspace);
        expect(stacks.not_taken).toBeGreaterThanOrEqual(N - PER_KEY);
        expect(schemaErrors(s.lines)).toEqual([]);
      } finally {
        await s.stop();
      }
    });
  }

  it('without --stack: no line has a stack, and stats lines have no stacks', async () => {
    const s = startStream(['--netns', String(p.netnsB), '--no-rules', '--counters-interval', '0']);
    try {
      await s.ready;
      sendUdp(p.a, p.ipA, 40012, p.ipB, PORT, 3);
      await s.until((ls) => sumCount(drops(ls).filter(mine)) >= 3);
      expect((await s.stop()).code).toBe(0);
      expect(s.lines.filter((l) => 'stack' in l || 'stacks' in l)).toEqual([]);
      expect(finalStats(s.lines).events).toBeGreaterThanOrEqual(3);
    } finally {
      await s.stop();
    }
  });
});

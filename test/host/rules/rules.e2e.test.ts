/**
 * End to end, as root: two DROP rules with different ports and comments in the receiving
 * namespace of a pair, once as iptables-nft rules and once as native nft rules; every drop line
 * names its own rule (table, chain, position, handle, comment), and a rule added while
 * droptrace runs is found. The stream holds rule drops until a snapshot of the netns's rule
 * counters; the tests wait on lines, never on time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { inNs, makePair, sendUdp } from '../../helpers/netns.js';
import type { Pair } from '../../helpers/netns.js';
import { schemaErrors } from '../../helpers/schema.js';
import { drops, startStream, sumCount } from '../../helpers/stream.js';
import type { Line, StreamRun } from '../../helpers/stream.js';
import type { DropRule } from '../../../src/host/rules/types.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('skipping rule attribution end-to-end tests: they need root (BPF programs, network namespaces)');


const ruleDrops = (ls: Line[], dport: number, sport: number) =>
  drops(ls).filter((l) => {
    const f = l.flow as { sport?: number; dport?: number } | null;
    return l.kind === 'netfilter_rule' && f?.dport === dport && f.sport === sport;
  });

describe.skipIf(!isRoot)('the rule that dropped it, end to end', () => {
  let p: Pair | undefined;
  let s: StreamRun | undefined;
  afterEach(async () => {
    await s?.stop();
    p?.destroy();
    s = p = undefined;
  });

  /** Sends `n` datagrams from `sport` (each call its own) to `dport`; their rule drop lines once they add up to n. */
  async function dropsTo(dport: number, n: number, sport: number): Promise<Line[]> {
    sendUdp(p!.a, p!.ipA, sport, p!.ipB, dport, n);
    await s!.until((ls) => sumCount(ruleDrops(ls, dport, sport)) >= n);
    const got = ruleDrops(s!.lines, dport, sport);
    expect(sumCount(got)).toBe(n);
    return got;
  }

  async function finish(): Promise<Line> {
    await s!.stop();
    expect(s!.bad).toEqual([]);
    expect(schemaErrors(s!.lines)).toEqual([]);
    const last = s!.lines.at(-1)!;
    expect(last).toMatchObject({ type: 'stats', final: true });
    return last;
  }

  it('iptables-nft: each drop names its own rule and comment', async () => {
    p = makePair({ ipv6: false });
    const add = (port: number, comment: string) =>
      inNs(p!.b, 'iptables-nft', ['-w', '5', '-A', 'INPUT', '-p', 'udp', '--dport', String(port), '-m', 'comment', '--comment', comment, '-j', 'DROP']);
    add(5401, 'default/svc-a: has no endpoints');
    add(5402, 'default/svc-b: policy deny');
    s = startStream(['--netns', String(p.netnsB)]);
    await s.ready;

    const a = await dropsTo(5401, 3, 41001);
    const b = await dropsTo(5402, 2, 41002);
    const base = { backend: 'nft', family: 'ip', table: 'filter', chain: 'INPUT' };
    for (const l of a) {
      expect(l.rule).toMatchObject({ ...base, position: 1, handle: 2, text: '-A INPUT -p udp -m udp --dport 5401 -j DROP', comment: 'default/svc-a: has no endpoints' });
      // the netns's first snapshot: exact when its counter is these lines, else likely
      expect(['exact', 'likely']).toContain((l.rule as DropRule).certainty);
    }
    for (const l of b) {
      // a baseline exists by now: the counter's movement is these drops
      expect(l.rule).toMatchObject({ ...base, position: 2, handle: 3, comment: 'default/svc-b: policy deny', certainty: 'exact', candidates: 1 });
      expect(l.explain).toBe("dropped by rule #2 in ip filter INPUT: '-A INPUT -p udp -m udp --dport 5402 -j DROP' (comment: default/svc-b: policy deny)");
    }
    const stats = await finish();
    expect(stats.rules).toMatchObject({ unattributed: 0, failures: 0, hold_timeouts: 0, netns_over_cap: 0, rules_over_cap: 0 });
  });

  it('legacy iptables: the rule is read from iptables-legacy-save -c', async () => {
    p = makePair({ ipv6: false });
    const add = (port: number, comment: string) =>
      inNs(p!.b, 'iptables-legacy', ['-w', '5', '-A', 'INPUT', '-p', 'udp', '--dport', String(port), '-m', 'comment', '--comment', comment, '-j', 'DROP']);
    add(5601, 'legacy-a');
    add(5602, 'legacy-b');
    s = startStream(['--netns', String(p.netnsB)]);
    await s.ready;
    await dropsTo(5601, 2, 43001);
    const b = await dropsTo(5602, 2, 43002);
    for (const l of b) {
      expect(l.rule).toEqual({
        backend: 'iptables-legacy',
        family: 'ip',
        table: 'filter',
        chain: 'INPUT',
        position: 2,
        handle: null,
        text: '-A INPUT -p udp -m udp --dport 5602 -j DROP',
        comment: 'legacy-b',
        certainty: 'exact',
        candidates: 1,
      });
    }
    const stats = await finish();
    expect(stats.rules).toMatchObject({ unattributed: 0, failures: 0 });
  });

  it('native nft: each drop names its own rule, and a rule added while running is found', async () => {
    p = makePair({ ipv6: false });
    const nft = (cmd: string) => inNs(p!.b, 'nft', ['-f', '-'], cmd);
    nft('add table inet dt\nadd chain inet dt input { type filter hook input priority 0; policy accept; }\n');
    nft('add rule inet dt input udp dport 5501 counter drop comment "netpol: deny-a"\n');
    nft('add rule inet dt input udp dport 5502 counter drop comment "netpol: deny-b"\n');
    s = startStream(['--netns', String(p.netnsB)]);
    await s.ready;

    const a = await dropsTo(5501, 3, 42001);
    const b = await dropsTo(5502, 2, 42002);
    const base = { backend: 'nft', family: 'inet', table: 'dt', chain: 'input' };
    for (const l of a) expect(l.rule).toMatchObject({ ...base, position: 1, handle: 2, text: 'udp dport 5501 counter drop', comment: 'netpol: deny-a' });
    for (const l of b) {
      expect(l.rule).toMatchObject({ ...base, position: 2, handle: 3, text: 'udp dport 5502 counter drop', comment: 'netpol: deny-b', certainty: 'exact' });
      expect(l.hint).toBe(`in netns ${p.netnsB}: nft -a list chain inet dt input (handle 3); its counters show how often it matched`);
    }

    // inserted at the head of the chain while droptrace runs: the others move down
    nft('insert rule inet dt input udp dport 5503 counter drop comment "added later"\n');
    const c = await dropsTo(5503, 2, 42003);
    for (const l of c) expect(l.rule).toMatchObject({ ...base, position: 1, handle: 4, comment: 'added later', certainty: 'exact' });
    // and the rules that moved down are named at their new place
    const a2 = await dropsTo(5501, 1, 42004);
    expect(a2.map((l) => [(l.rule as DropRule).position, (l.rule as DropRule).handle])).toEqual([[2, 2]]);

    const stats = await finish();
    expect(stats.rules).toMatchObject({ unattributed: 0, failures: 0, hold_timeouts: 0 });
  });
});

/**
 * The rule stage's holding: rule drops wait for a snapshot begun after them, at most one
 * snapshot a second per netns, bounded in time, count and netns, everything counted; other
 * lines pass at once. Snapshots are promises the test settles; time is vitest's fake clock.
 */
import { ruleDropLine } from '../../helpers/lines.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseNftJson } from '../../../src/host/rules/parse.js';
import { RuleStage } from '../../../src/host/rules/stage.js';
import type { RuleStageOptions } from '../../../src/host/rules/stage.js';
import type { RulesetSnapshot } from '../../../src/host/rules/types.js';
import type { DropEvent, StreamLine } from '../../../src/pipeline/events.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '..', 'fixtures', 'rules', name), 'utf8');
const BEFORE = parseNftJson(fixture('nft-0.json'), 100);
const AFTER = parseNftJson(fixture('nft-1.json'), 100);

function ruleDrop(netns: number, dport: number, count = 1): DropEvent {
  return ruleDropLine({ time: '', netns, ifname: 'lo', ifindex: 1, flow: { proto: 'udp', src: '198.18.250.1', dst: '198.18.250.1', sport: 40000, dport }, count });
}

/** A stage whose snapshots the test settles by hand, and what it emitted. */
function harness(o: Partial<RuleStageOptions> = {}) {
  const asked: Array<{ netns: number; settle: (s: RulesetSnapshot | Error) => void }> = [];
  const out: StreamLine[] = [];
  const stage = new RuleStage({
    snapshot: (netns) =>
      new Promise((resolve, reject) => asked.push({ netns, settle: (s) => (s instanceof Error ? reject(s) : resolve(s)) })),
    monotonicMs: () => Date.now(),
    ...o,
  });
  const emit = stage.wrap((l) => out.push(l));
  return { stage, emit, asked, out };
}

const ports = (out: StreamLine[]) => out.map((l) => (l.type === 'drop' ? `${l.flow?.dport}:${l.rule ? `#${l.rule.position}` : '-'}` : l.type));

describe('RuleStage', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('holds rule drops until a snapshot lands; other lines pass at once', async () => {
    const h = harness();
    h.emit(ruleDrop(7, 5301, 3));
    h.emit({ ...ruleDrop(7, 0), kind: 'queue_purge', family: 'other' });
    expect(ports(h.out)).toEqual(['0:-']);
    await vi.advanceTimersByTimeAsync(0);
    expect(h.asked.map((a) => a.netns)).toEqual([7]);
    h.asked[0]!.settle(AFTER);
    await vi.advanceTimersByTimeAsync(0);
    expect(ports(h.out)).toEqual(['0:-', '5301:#1']);
    const d = h.out[1] as DropEvent;
    // (the recorded JSON alone has no texts: the reader adds them)
    expect([d.rule?.certainty, d.explain, d.hint]).toEqual(['exact', 'dropped by rule #1 in ip filter INPUT (handle 2)', 'in netns 7: nft -a list chain ip filter INPUT (handle 2); its counters show how often it matched']);
    expect(h.stage.stats).toMatchObject({ snapshots: 1, attributed: 1, unattributed: 0 });
  });

  it('takes at most one snapshot a second per netns, and a line waits for one begun after it', async () => {
    const h = harness();
    h.emit(ruleDrop(7, 5301));
    await vi.advanceTimersByTimeAsync(0);
    // the netns's first snapshot: no counter moved yet, so no rule; it is the baseline
    h.asked[0]!.settle(BEFORE);
    await vi.advanceTimersByTimeAsync(0);
    expect(ports(h.out)).toEqual(['5301:-']);
    h.emit(ruleDrop(7, 5301));
    await vi.advanceTimersByTimeAsync(999);
    expect(h.asked.length).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.asked.length).toBe(2);
    // arrives while the second snapshot is under way: that one may not have its counter
    h.emit(ruleDrop(7, 5303));
    h.asked[1]!.settle(AFTER);
    await vi.advanceTimersByTimeAsync(0);
    expect(ports(h.out)).toEqual(['5301:-', '5301:#1']);
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.asked.length).toBe(3);
    h.asked[2]!.settle(AFTER);
    await vi.advanceTimersByTimeAsync(0);
    // the counters did not move since: the 5303 drop's movement was carried from the second
    expect(ports(h.out)).toEqual(['5301:-', '5301:#1', '5303:#1']);
    expect((h.out[2] as DropEvent).rule).toMatchObject({ table: 'filter', chain: 'input', certainty: 'exact' });
  });

  it("a netns's first snapshot also names the lines that came while it was read", async () => {
    const h = harness();
    h.emit(ruleDrop(7, 5301, 3));
    await vi.advanceTimersByTimeAsync(0);
    h.emit(ruleDrop(7, 5303, 2));
    h.asked[0]!.settle(AFTER);
    await vi.advanceTimersByTimeAsync(0);
    expect(ports(h.out)).toEqual(['5301:#1', '5303:#1']);
    expect(h.out.map((l) => (l as DropEvent).rule?.certainty)).toEqual(['exact', 'exact']);
  });

  it('lets a line go without a rule when its snapshot does not land in time, or fails', async () => {
    const h = harness({ holdMs: 3000 });
    h.emit(ruleDrop(7, 5301));
    await vi.advanceTimersByTimeAsync(2999);
    expect(h.out).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(ports(h.out)).toEqual(['5301:-']);
    expect((h.out[0] as DropEvent).explain).toBe('a firewall rule returned DROP');
    h.asked[0]!.settle(new Error('nft: not found'));
    h.emit(ruleDrop(7, 5303));
    await vi.advanceTimersByTimeAsync(1000);
    h.asked[1]!.settle(new Error('nft: not found'));
    await vi.advanceTimersByTimeAsync(0);
    expect(ports(h.out)).toEqual(['5301:-', '5303:-']);
    expect(h.stage.stats).toMatchObject({ snapshots: 2, failures: 2, hold_timeouts: 1, unattributed: 2, attributed: 0 });
  });

  it('bounds the lines held and the netns tracked, counting what passes unheld', async () => {
    const h = harness({ maxHeld: 2, maxNetns: 1 });
    h.emit(ruleDrop(7, 5301));
    h.emit(ruleDrop(7, 5301));
    h.emit(ruleDrop(7, 5303));
    h.emit(ruleDrop(8, 5303));
    expect(ports(h.out)).toEqual(['5303:-', '5303:-']);
    expect(h.stage.stats).toMatchObject({ hold_overflow: 1, netns_over_cap: 1 });
    await vi.advanceTimersByTimeAsync(0);
    expect(h.asked.map((a) => a.netns)).toEqual([7]);
  });

  it("under a flood, a line past the hold bound goes out at once with its key's last rule (likely)", async () => {
    const h = harness({ maxHeld: 1 });
    h.emit(ruleDrop(7, 5301, 3));
    await vi.advanceTimersByTimeAsync(0);
    h.asked[0]!.settle(AFTER);
    await vi.advanceTimersByTimeAsync(0);
    h.emit(ruleDrop(7, 5303));
    h.emit(ruleDrop(7, 5301));
    h.emit(ruleDrop(7, 9999));
    expect(ports(h.out)).toEqual(['5301:#1', '5301:#1', '9999:-']);
    expect((h.out[1] as DropEvent).rule?.certainty).toBe('likely');
    expect(h.stage.stats).toMatchObject({ hold_overflow: 2 });
  });

  it('under a flood, a line of a new key past the hold bound gets the rule its flow fits among those that moved', async () => {
    const h = harness({ maxHeld: 1 });
    h.emit(ruleDrop(7, 5301, 3));
    await vi.advanceTimersByTimeAsync(0);
    h.asked[0]!.settle(AFTER);
    await vi.advanceTimersByTimeAsync(0);
    h.emit(ruleDrop(7, 5304)); // held: the bound is one line
    h.emit(ruleDrop(7, 5303)); // no key memory; the udp 5303 rule moved: likely, the only fit
    h.emit(ruleDrop(7, 5302)); // its rule did not move in the last snapshot: nothing to name
    expect(ports(h.out)).toEqual(['5301:#1', '5303:#1', '5302:-']);
    expect((h.out[1] as DropEvent).rule).toMatchObject({ family: 'inet', chain: 'input', certainty: 'likely', candidates: 1 });
    expect(h.stage.stats).toMatchObject({ hold_overflow: 2, attributed: 2, unattributed: 1 });
  });

  it('at the end, waits for the snapshot under way, then lets everything go; nothing is held after', async () => {
    const h = harness();
    h.emit(ruleDrop(7, 5301, 3));
    await vi.advanceTimersByTimeAsync(0);
    const done = h.stage.finish(1500);
    h.asked[0]!.settle(AFTER);
    await vi.advanceTimersByTimeAsync(0);
    await done;
    expect(ports(h.out)).toEqual(['5301:#1']);
    h.emit(ruleDrop(7, 5303));
    expect(ports(h.out)).toEqual(['5301:#1', '5303:-']);
  });
});

describe('RuleStage, the explain line of a DNS drop', () => {
  it('keeps the question first and adds the rule after it', async () => {
    const out: StreamLine[] = [];
    const stage = new RuleStage({ snapshot: async () => AFTER });
    const emit = stage.wrap((l) => out.push(l));
    const dns = { ...ruleDrop(7, 5301, 3), explain: 'DNS query for kube-dns. (A) dropped: a firewall rule returned DROP', dns: { name: 'kube-dns.', type: 'A', id: 1, response: false } };
    emit(dns);
    await stage.finish(1500);
    expect((out[0] as DropEvent).explain).toBe('DNS query for kube-dns. (A) dropped: a firewall rule returned DROP; dropped by rule #1 in ip filter INPUT (handle 2)');
  });
});

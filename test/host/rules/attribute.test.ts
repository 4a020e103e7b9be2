/**
 * Rule attribution from recorded `nft -j list ruleset` outputs (test/host/fixtures/rules/): one
 * netns with two iptables-nft rules (DROP port 5301, REJECT 5302, with comments) and a native
 * inet table (5303 with a counter and a comment, a TCP reject by source prefix, 5304 without a
 * counter); nft-1.json is after 3 datagrams to 5301 and 2 to 5303. No root needed.
 */
import { ruleDropLine } from '../../helpers/lines.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { attribute, countersOf, KeyMemory } from '../../../src/host/rules/attribute.js';
import { legacyRules, mergeNftSave, parseIptablesSave, parseNftJson, parseNftText } from '../../../src/host/rules/parse.js';
import type { DropEvent, Flow } from '../../../src/pipeline/events.js';
import { ruleHint, ruleSentence } from '../../../src/pipeline/explain.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '..', 'fixtures', 'rules', name), 'utf8');
const NETNS = 4026532999;

function snapshot(json: string) {
  const snap = parseNftJson(fixture(json), 100);
  const text = parseNftText(fixture('nft-0.txt'));
  for (const r of snap.rules) r.text = text.get(r.id) ?? null;
  mergeNftSave(snap.rules, parseIptablesSave(fixture('iptables-nft-save-0.txt')), 'ip');
  return snap;
}

function drop(flow: Partial<Flow> | null, count = 1): DropEvent {
  return ruleDropLine({
    netns: NETNS,
    ifname: 'lo',
    ifindex: 1,
    flow: flow === null ? null : { proto: 'udp', src: '198.18.250.1', dst: '198.18.250.1', sport: 40000, dport: 0, ...flow },
    count,
    explain: '',
    hint: '',
  });
}

const before = snapshot('nft-0.json');
const after = snapshot('nft-1.json');
const names = (rs: ReturnType<typeof attribute>['rules']) => rs.map((r) => (r === null ? null : `${r.table} ${r.chain} #${r.position} ${r.certainty} ${r.candidates}`));

describe('reading the rules', () => {
  it('keeps DROP/REJECT rules with their place, handle, counter, comment and text', () => {
    expect(after.overCap).toBe(0);
    expect(after.rules.map((r) => [r.family, r.table, r.chain, r.position, r.handle, r.verdict, r.packets, r.comment, r.text])).toEqual([
      ['ip', 'filter', 'INPUT', 1, 2, 'drop', 3, 'svc-a: default/dns-a has no endpoints', '-A INPUT -p udp -m udp --dport 5301 -j DROP'],
      ['ip', 'filter', 'INPUT', 2, 3, 'reject', 0, 'svc-b', '-A INPUT -p udp -m udp --dport 5302 -j REJECT --reject-with icmp-port-unreachable'],
      ['inet', 'filter', 'input', 1, 2, 'drop', 2, 'native-c', 'udp dport 5303 counter drop'],
      ['inet', 'filter', 'input', 2, 4, 'reject', 0, null, 'ip saddr 198.18.0.0/24 tcp dport { 80, 443 } counter reject with icmp port-unreachable'],
      ['inet', 'filter', 'input', 3, 5, 'drop', null, null, 'udp dport 5304 drop'],
    ]);
  });

  it('counts rules past the cap instead of keeping them', () => {
    const capped = parseNftJson(fixture('nft-1.json'), 2);
    expect([capped.rules.length, capped.overCap]).toEqual([2, 3]);
  });

  it('reads legacy iptables-save -c: positions count every rule, conditions it cannot read are unknown', () => {
    const legacy = legacyRules(parseIptablesSave(fixture('iptables-legacy-save.txt')), 'ip', 100);
    expect(legacy.rules.map((r) => [r.chain, r.position, r.handle, r.verdict, r.packets, r.comment, r.text])).toEqual([
      ['INPUT', 1, null, 'drop', 0, 'legacy svc', '-A INPUT -p udp -m udp --dport 5311 -j DROP'],
      ['INPUT', 2, null, 'reject', 0, null, '-A INPUT -s 198.18.9.0/24 -p tcp -m multiport --dports 80,8000:8100 -j REJECT --reject-with icmp-port-unreachable'],
      ['INPUT', 4, null, 'drop', 0, null, '-A INPUT -m conntrack --ctstate INVALID -j DROP'],
    ]);
    const moved = legacy.rules.map((r) => ({ ...r, packets: 1 }));
    const got = attribute(countersOf(legacy.rules), moved, [
      drop({ proto: 'tcp', src: '198.18.9.7', dport: 8050 }),
      drop({ proto: 'tcp', src: '198.18.10.7', dport: 8050 }),
    ]);
    // the multiport range and the source prefix are read; the ctstate rule could match anything:
    // beside #2 it is the second candidate, for a source #2 excludes it is the only one
    expect(names(got.rules)).toEqual(['filter INPUT #2 likely 2', 'filter INPUT #4 exact 1']);
  });
});

describe('attributing by counter deltas', () => {
  const prev = countersOf(before.rules);

  it('names each drop its own rule, exactly, when only that rule moved for its flow', () => {
    const got = attribute(prev, after.rules, [drop({ dport: 5301 }, 3), drop({ dport: 5303 }, 2)]);
    expect(names(got.rules)).toEqual(['filter INPUT #1 exact 1', 'filter input #1 exact 1']);
    expect(got.carry).toEqual(new Map());
    const r = got.rules[0]!;
    expect(ruleSentence(r)).toBe("dropped by rule #1 in ip filter INPUT: '-A INPUT -p udp -m udp --dport 5301 -j DROP' (comment: svc-a: default/dns-a has no endpoints)");
    expect(ruleHint(r, NETNS)).toBe(`in netns ${NETNS}: nft -a list chain ip filter INPUT (handle 2); its counters show how often it matched`);
  });

  it('is only likely when more drops are named after a rule than its counter moved', () => {
    const got = attribute(prev, after.rules, [drop({ dport: 5301 }, 2), drop({ dport: 5301, sport: 40001 }, 2)]);
    expect(names(got.rules)).toEqual(['filter INPUT #1 likely 1', 'filter INPUT #1 likely 1']);
  });

  it('on a first snapshot, is exact only when the whole counter is these drops', () => {
    expect(names(attribute(null, after.rules, [drop({ dport: 5301 }, 3)]).rules)).toEqual(['filter INPUT #1 exact 1']);
    expect(names(attribute(null, after.rules, [drop({ dport: 5301 }, 1)]).rules)).toEqual(['filter INPUT #1 likely 1']);
    // nothing carries over from a first snapshot: its movement is the rule's whole history
    expect(attribute(null, after.rules, [drop({ dport: 5301 }, 1)]).carry).toEqual(new Map());
  });

  it('says when several rules could have matched, naming the one that moved most', () => {
    // no flow: every rule that moved could be it
    const got = attribute(prev, after.rules, [drop(null)]);
    expect(names(got.rules)).toEqual(['filter INPUT #1 possible 3']);
    expect(ruleSentence(got.rules[0]!)).toMatch(/; possible: 3 rules could have matched$/);
  });

  it('falls back on the rule without a counter that matches the flow (likely), and names none when nothing fits', () => {
    const got = attribute(prev, after.rules, [drop({ dport: 5304 }), drop({ dport: 9999 }), drop({ proto: 'tcp', src: '198.18.0.5', dport: 443 })]);
    // the tcp/443 reject rule matches but its counter did not move: not that one
    expect(names(got.rules)).toEqual(['filter input #3 likely 1', null, null]);
  });

  it('names a rule added since the last snapshot (its counter counts from zero)', () => {
    const added = after.rules.filter((r) => r.handle !== 2 || r.family !== 'ip');
    const without = countersOf(added);
    const got = attribute(without, after.rules, [drop({ dport: 5301 }, 3)]);
    expect(names(got.rules)).toEqual(['filter INPUT #1 exact 1']);
  });

  it('carries movement no line claimed to the next snapshot, once', () => {
    // the second datagram's line arrived after the snapshot that counted it
    const first = attribute(prev, after.rules, [drop({ dport: 5301 }, 1)]);
    expect(first.carry).toEqual(new Map([['nft ip filter INPUT 2', 2], ['nft inet filter input 2', 2]]));
    const same = countersOf(after.rules);
    const second = attribute(same, after.rules, [drop({ dport: 5301 }, 2)], undefined, first.carry);
    expect(names(second.rules)).toEqual(['filter INPUT #1 exact 1']);
    // what the carried movement did not explain within two snapshots is dropped, not carried on
    expect(second.carry).toEqual(new Map());
  });

  it("gives a key's later lines the rule of its earlier ones when the counters no longer move", () => {
    const memory = new KeyMemory(2);
    attribute(prev, after.rules, [drop({ dport: 5301 }, 3)], memory);
    const folded = attribute(countersOf(after.rules), after.rules, [drop({ dport: 5301 }, 900)], memory);
    expect(names(folded.rules)).toEqual(['filter INPUT #1 likely 1']);
    // bounded: the oldest keys go first
    attribute(prev, after.rules, [drop({ dport: 5303, sport: 1 }), drop({ dport: 5303, sport: 2 })], memory);
    expect(memory.size).toBe(2);
    expect(names(attribute(countersOf(after.rules), after.rules, [drop({ dport: 5301 }, 1)], memory).rules)).toEqual([null]);
  });
});

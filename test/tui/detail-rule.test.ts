/**
 * The detail pane of a rule drop says which rule dropped it (src/host/rules): the newest line
 * that names a rule gives the group its "what" and "do" lines.
 */
import { ruleDropLine } from '../helpers/lines.js';
import { describe, expect, it } from 'vitest';
import { ruleHint, ruleSentence } from '../../src/pipeline/explain.js';
import type { DropRule } from '../../src/host/rules/types.js';
import type { DropEvent } from '../../src/pipeline/events.js';
import { detailLines } from '../../src/tui/components/DetailPane.js';
import { TuiStore } from '../../src/tui/store.js';
import { theme } from './helpers.js';

const T0 = Date.parse('2026-12-05T12:00:00Z');
const NETNS = 4026532001;
const RULE: DropRule = {
  backend: 'nft',
  family: 'ip',
  table: 'filter',
  chain: 'INPUT',
  position: 3,
  handle: 7,
  text: '-A INPUT -p udp -m udp --dport 53 -j DROP',
  comment: 'kube-system/kube-dns:dns has no endpoints',
  certainty: 'exact',
  candidates: 1,
};

function drop(at: number, rule?: DropRule): DropEvent {
  return ruleDropLine({
    time: new Date(at).toISOString(),
    netns: NETNS,
    explain: rule ? ruleSentence(rule) : 'a firewall rule (iptables/nftables) returned DROP for this packet (freed in nft_do_chain)',
    hint: rule ? ruleHint(rule, NETNS) : 'find the rule',
    ...(rule ? { rule } : {}),
  });
}

const text = (store: TuiStore) =>
  detailLines(store.snapshot(), theme, 200, 20)
    .map((segs) => segs.map((s) => s.text).join(''))
    .filter((l) => /^(what|do) /.test(l));

describe('the detail pane of a rule drop', () => {
  it('names the rule, its comment and where to look; a line let go without a rule does not take it back', () => {
    const store = new TuiStore();
    store.ingest(drop(T0));
    store.ingest(drop(T0 + 1000, RULE));
    store.ingest(drop(T0 + 2000));
    expect(text(store)).toEqual([
      "what    dropped by rule #3 in ip filter INPUT: '-A INPUT -p udp -m udp --dport 53 -j DROP' (comment: kube-system/kube-dns:dns has no endpoints)",
      `do      in netns ${NETNS}: nft -a list chain ip filter INPUT (handle 7); its counters show how often it matched`,
    ]);
  });
});

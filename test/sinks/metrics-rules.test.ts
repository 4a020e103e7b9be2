/**
 * droptrace_rule_drops_total: netfilter_rule drops by the rule named for them, under a bounded
 * `rule` label (its comment, else its chain; never its counters), `_overflow` past the limit.
 */
import { ruleDropLine } from '../helpers/lines.js';
import { describe, expect, it } from 'vitest';
import type { DropRule } from '../../src/host/rules/types.js';
import type { DropEvent } from '../../src/pipeline/events.js';
import { DropMetrics } from '../../src/sinks/metrics.js';
import { NODE, parseExposition, withoutNode } from './metrics-exposition.js';

function ruleDrop(rule: Partial<DropRule> | null, count: number): DropEvent {
  return ruleDropLine({
    netns: 4026532999,
    flow: null,
    count,
    explain: '',
    hint: '',
    ...(rule
      ? { rule: { backend: 'nft', family: 'ip', table: 'filter', chain: 'INPUT', position: 1, handle: 2, text: null, comment: null, certainty: 'exact', candidates: 1, ...rule } }
      : {}),
  });
}

const series = async (m: DropMetrics) =>
  Object.fromEntries(Object.entries(withoutNode(parseExposition(await m.registry.metrics())).series).filter(([k]) => k.startsWith('droptrace_rule_drops_total')));

describe('droptrace_rule_drops_total', () => {
  it('counts rule drops by comment, else by chain; lines without a rule are not in it', async () => {
    const m = new DropMetrics({ processMetrics: false, node: NODE, ruleLimit: 2 });
    m.observe(ruleDrop({ comment: 'default/svc-a: has no endpoints' }, 3));
    m.observe(ruleDrop({ comment: 'default/svc-a: has no endpoints', position: 4 }, 2));
    m.observe(ruleDrop({ family: 'inet', table: 'dt', chain: 'input' }, 5));
    m.observe(ruleDrop({ comment: 'third rule, past the limit' }, 7));
    m.observe(ruleDrop(null, 11));
    expect(await series(m)).toEqual({
      'droptrace_rule_drops_total{rule="default/svc-a: has no endpoints"}': 5,
      'droptrace_rule_drops_total{rule="inet dt input"}': 5,
      'droptrace_rule_drops_total{rule="_overflow"}': 7,
    });
  });
});

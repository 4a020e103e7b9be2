/**
 * The TUI's probes line when a probe comes later: waiting for its module after the start line,
 * attached once a stats line says so (src/pipeline/late-probes.ts applyProbeStates).
 */
import { statsLineOf } from '../helpers/lines.js';
import { describe, expect, it } from 'vitest';
import type { StartLine, StatsLine } from '../../src/pipeline/events.js';
import { applyProbeStates } from '../../src/pipeline/late-probes.js';
import { headerLines } from '../../src/tui/components/Header.js';
import { TuiStore } from '../../src/tui/store.js';
import { themeFrom } from '../../src/tui/theme.js';

const theme = themeFrom({ LANG: 'C.UTF-8', NO_COLOR: '1' });
const WAIT = 'waiting for module nf_conntrack';
const START: StartLine = {
  type: 'start',
  schema: 1,
  time: '2026-12-05T12:00:00.000Z',
  version: 'test',
  node: 'n',
  kernel: '6.1.0-57-amd64',
  filter: { netns: null },
  probes: [
    { probe: 'kfree_skb', hook: 'tp_btf/kfree_skb', state: 'attached' },
    { probe: 'ct_alloc', hook: 'fexit/__nf_conntrack_alloc', state: 'waiting', why: WAIT },
    { probe: 'ct_alloc', hook: 'kretprobe/__nf_conntrack_alloc', state: 'waiting', why: WAIT },
  ],
  attribution: 'none',
};
const stats = (ct: NonNullable<StatsLine['probes']>[number]): StatsLine =>
  statsLineOf({ time: '2026-12-05T12:00:05.000Z', probes: [{ probe: 'kfree_skb', state: 'attached', hook: 'tp_btf/kfree_skb' }, ct] });
const probesLine = (s: TuiStore, width = 200) =>
  headerLines(s.snapshot(), theme, width)[2]!
    .map((x) => x.text)
    .join('')
    .trimEnd();

describe('a probe that comes later, in the TUI', () => {
  it('waiting, then attached when a stats line says so', () => {
    const store = new TuiStore({ source: 'live' });
    store.write(START);
    expect(probesLine(store)).toBe(`probes ✓ kfree_skb tp_btf/kfree_skb  … ct_alloc: ${WAIT}`);
    expect(probesLine(store, 58)).toBe('probes ✓ kfree_skb tp_btf/kfree_skb  … ct_alloc waiting');
    expect(probesLine(store, 40)).toBe('probes ✓ kfree_skb … ct_alloc');
    store.write(stats({ probe: 'ct_alloc', state: 'waiting', why: WAIT }));
    expect(probesLine(store)).toBe(`probes ✓ kfree_skb tp_btf/kfree_skb  … ct_alloc: ${WAIT}`);
    store.write(stats({ probe: 'ct_alloc', state: 'attached', hook: 'fexit/__nf_conntrack_alloc' }));
    expect(probesLine(store)).toBe('probes ✓ kfree_skb tp_btf/kfree_skb  ✓ ct_alloc fexit/__nf_conntrack_alloc');
    expect(store.snapshot().start!.probes.filter((p) => p.probe === 'ct_alloc')).toEqual([
      { probe: 'ct_alloc', hook: 'fexit/__nf_conntrack_alloc', state: 'attached' },
      { probe: 'ct_alloc', hook: 'kretprobe/__nf_conntrack_alloc', state: 'standby', why: 'not needed: fexit/__nf_conntrack_alloc is attached' },
    ]);
  });

  it('a wait that ended without a hook is unavailable, with why', () => {
    const hooks = applyProbeStates(START.probes, [{ probe: 'ct_alloc', state: 'unavailable', why: 'this kernel has no kprobes' }]);
    expect(hooks.map((h) => [h.hook, h.state, h.why])).toEqual([
      ['tp_btf/kfree_skb', 'attached', undefined],
      ['fexit/__nf_conntrack_alloc', 'unavailable', 'this kernel has no kprobes'],
      ['kretprobe/__nf_conntrack_alloc', 'unavailable', 'this kernel has no kprobes'],
    ]);
    // nothing to change: the same array back (the store redraws only on a change)
    expect(applyProbeStates(START.probes, [{ probe: 'ct_alloc', state: 'waiting', why: WAIT }])).toBe(START.probes);
  });
});

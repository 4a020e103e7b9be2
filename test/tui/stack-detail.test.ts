/**
 * The TUI's detail pane with --stack: the kernel stack of the selected group's latest drop that
 * carried one (a key's first drops do; later ones and folded lines do not), and no stack line
 * for groups without.
 */
import { describe, expect, it } from 'vitest';
import type { DropEvent } from '../../src/pipeline/events.js';
import { detailLines } from '../../src/tui/components/DetailPane.js';
import { TuiStore } from '../../src/tui/store.js';
import { themeFrom } from '../../src/tui/theme.js';
import { ruleDropLine } from '../helpers/lines.js';

const T0 = Date.parse('2026-12-05T12:00:00.000Z');
const OLD = ['sk_skb_reason_drop+0x90', 'nft_do_chain+0x46f', 'nft_do_chain_ipv4+0x70', 'nf_hook_slow+0x43', 'ip_local_deliver+0x119'];
const NEW = ['sk_skb_reason_drop+0x90', 'nft_do_chain+0x46f', 'nft_do_chain_ipv4+0x70', 'nf_hook_slow+0x43', 'ip_forward+0x4a1'];

const drop = (at: number, o: Partial<DropEvent>): DropEvent => ruleDropLine({ time: new Date(at).toISOString(), ...o });
const text = (store: TuiStore, budget = 20) => detailLines(store.snapshot(), themeFrom({}), 200, budget).map((segs) => segs.map((s) => s.text).join(''));

describe('the detail pane with --stack', () => {
  it("shows the latest stack of the group, not a later drop's missing one", () => {
    const store = new TuiStore();
    store.ingest(drop(T0, { stack: OLD }));
    store.ingest(drop(T0 + 1000, { stack: NEW, flow: { proto: 'udp', src: '198.18.0.9', dst: '198.18.0.2', sport: 40001, dport: 5301 } }));
    store.ingest(drop(T0 + 2000, { count: 7 }));
    expect(store.snapshot().detail!.stack).toEqual({ frames: NEW, at: T0 + 1000 });
    expect(text(store).filter((l) => l.startsWith('stack'))).toEqual([
      'stack   sk_skb_reason_drop+0x90 ← nft_do_chain+0x46f ← nft_do_chain_ipv4+0x70 ← nf_hook_slow+0x43 ← ip_forward+0x4a1  (12:00:01)',
    ]);
  });

  it('has no stack line without stacks', () => {
    const store = new TuiStore();
    store.ingest(drop(T0, { count: 3 }));
    expect(store.snapshot().detail!.stack).toBeNull();
    expect(text(store).some((l) => l.startsWith('stack'))).toBe(false);
  });
});

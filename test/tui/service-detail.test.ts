/**
 * The TUI's detail pane for drops after DNAT: the Service and the pod it was translated to,
 * counted, next to the flows.
 */
import { ruleDropLine } from '../helpers/lines.js';
import { describe, expect, it } from 'vitest';
import type { DropEvent } from '../../src/pipeline/events.js';
import { detailLines } from '../../src/tui/components/DetailPane.js';
import { TuiStore } from '../../src/tui/store.js';
import { themeFrom } from '../../src/tui/theme.js';

const T0 = Date.parse('2026-12-05T12:00:00.000Z');

function drop(at: number, o: Partial<DropEvent>): DropEvent {
  return ruleDropLine({
    time: new Date(at).toISOString(),
    flow: { proto: 'udp', src: '10.244.2.7', dst: '10.244.1.5', sport: 41000, dport: 8053 },
    explain: 'packet to service 10.96.0.10:53 (pod 10.244.1.5:8053) dropped: a firewall rule returned DROP',
    ...o,
  });
}

describe('the detail pane of drops after DNAT', () => {
  it('shows the services and their pods, the busiest first, and nothing for drops without DNAT', () => {
    const store = new TuiStore();
    store.ingest(drop(T0, { count: 5, service: { ip: '10.96.0.10', port: 53 } }));
    store.ingest(drop(T0 + 1, { count: 2, flow: { proto: 'udp', src: '10.244.2.7', dst: '10.244.3.9', sport: 41001, dport: 8053 }, service: { ip: '10.96.0.10', port: 53 } }));
    store.ingest(drop(T0 + 2, { count: 1, flow: { proto: 'udp', src: '10.244.1.5', dst: '10.244.2.7', sport: 8053, dport: 41000 }, service: { ip: '10.96.0.10', port: 53, reply: true } }));
    store.ingest(drop(T0 + 3, { count: 4, flow: { proto: 'udp', src: '10.244.2.7', dst: '10.244.1.5', sport: 41002, dport: 9000 } }));
    const snap = store.snapshot();
    expect(snap.detail!.services).toEqual([
      { name: '10.96.0.10:53 → 10.244.1.5:8053', count: 5 },
      { name: '10.96.0.10:53 → 10.244.3.9:8053', count: 2 },
      { name: '10.96.0.10:53 ← 10.244.1.5:8053', count: 1 },
    ]);
    const text = detailLines(snap, themeFrom({}), 100, 20).map((segs) => segs.map((s) => s.text).join(''));
    expect(text.filter((l) => l.startsWith('service'))).toEqual(['service 10.96.0.10:53 → 10.244.1.5:8053 ×5 · 10.96.0.10:53 → 10.244.3.9:8053 ×2 · +1 more']);
  });

  it('has no service line when no drop was translated', () => {
    const store = new TuiStore();
    store.ingest(drop(T0, { count: 3 }));
    const snap = store.snapshot();
    expect(snap.detail!.services).toEqual([]);
    expect(detailLines(snap, themeFrom({}), 100, 20).some((segs) => segs[0]?.text.startsWith('service'))).toBe(false);
  });
});

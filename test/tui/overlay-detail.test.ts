/**
 * The detail pane of a tunnelled drop: the tunnel and the pods' flow next to the nodes' flow,
 * and the explain line that names the tunnel.
 */
import { ruleDropLine } from '../helpers/lines.js';
import { describe, expect, it } from 'vitest';
import type { DropEvent } from '../../src/pipeline/events.js';
import { detailLines } from '../../src/tui/components/DetailPane.js';
import { TuiStore } from '../../src/tui/store.js';
import { theme } from './helpers.js';

const drop = (sport: number, count: number, time: string): DropEvent =>
  ruleDropLine({
    time,
    flow: { proto: 'udp', src: '198.18.0.1', dst: '198.18.0.2', sport: 40000 + sport, dport: 4789 },
    pod: { namespace: 'shop', name: 'web-1', uid: 'u1' },
    count,
    explain: `udp 198.19.42.1:${sport} → 198.19.42.2:7777 inside VXLAN 42 from node 198.18.0.1 to 198.18.0.2 dropped: a firewall rule returned DROP`,
    pod_match: 'inner_src',
    inner: { proto: 'udp', src: '198.19.42.1', dst: '198.19.42.2', sport, dport: 7777, vni: 42, encap: 'vxlan' },
  });

describe('detail pane of a VXLAN drop', () => {
  it('lists each inner flow inside its tunnel, and says the tunnel in the explanation', () => {
    const store = new TuiStore();
    store.ingest(drop(5555, 5, '2026-12-05T12:00:00.000Z'));
    // one group (the nodes' flow, its source port left out): its sentence is its first drop's
    store.ingest(drop(5556, 3, '2026-12-05T12:00:01.000Z'));
    const s = store.snapshot();
    expect(s.detail!.flows.map((f) => [f.flow, f.count])).toEqual([
      ['udp 198.18.0.1:45555 → 198.18.0.2:4789 · VXLAN 42: udp 198.19.42.1:5555 → 198.19.42.2:7777', 5],
      ['udp 198.18.0.1:45556 → 198.18.0.2:4789 · VXLAN 42: udp 198.19.42.1:5556 → 198.19.42.2:7777', 3],
    ]);
    const text = detailLines(s, theme, 160, 20).map((segs) => segs.map((x) => x.text).join(''));
    expect(text.find((l) => l.startsWith('what'))).toBe(
      'what    udp 198.19.42.1:5555 → 198.19.42.2:7777 inside VXLAN 42 from node 198.18.0.1 to 198.18.0.2 dropped: a firewall rule returned DROP',
    );
    expect(text.filter((l) => l.includes('· VXLAN 42: udp 198.19.42.1:'))).toHaveLength(2);
  });
});

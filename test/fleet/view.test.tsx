/**
 * The fleet view's frames (ink-testing-library, fixed size, NO_COLOR) from the recorded fleet
 * (fixtures/three-nodes.json) and from states the e2e cannot reach: a table past 90%, NIC
 * allowances, Prometheus down while an older snapshot is shown.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import { buildFleet, QUERY_NAMES } from '../../src/fleet/model.js';
import type { Answers, Fleet } from '../../src/fleet/model.js';
import type { FleetState } from '../../src/fleet/poller.js';
import { vectorOf } from '../../src/fleet/prom.js';
import { FleetApp } from '../../src/tui/fleet/FleetApp.js';
import { fleetHeader, nodeRow } from '../../src/tui/fleet/lines.js';
import { themeFrom } from '../../src/tui/theme.js';

const theme = themeFrom({ LANG: 'C.UTF-8', NO_COLOR: '1' });
const colour = themeFrom({ LANG: 'C.UTF-8' });
const rec = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'three-nodes.json'), 'utf8')) as { time: number; window: { sinceS: number; rateS: number }; answers: Record<string, unknown> };
const recorded: Fleet = buildFleet(Object.fromEntries(QUERY_NAMES.map((k) => [k, vectorOf(rec.answers[k])])) as unknown as Answers, rec.time, rec.window);
// the node names of the recording carry the e2e's random id
const named = (f: Fleet): Fleet => ({ ...f, nodes: f.nodes.map((n) => ({ ...n, node: n.node.replace(/-[0-9a-f]{6}$/, '') })) });

const T = Date.UTC(2026, 11, 5, 9, 0, 0);
const state = (o: Partial<FleetState> = {}): FleetState => ({ url: 'http://prom:9090', fleet: named(recorded), updatedMs: T, error: null, retryAtMs: null, failures: 0, pods: null, ...o });

function fakePoller(s: FleetState) {
  const drilled: Array<string | null> = [];
  let cur = s;
  const fns = new Set<() => void>();
  return {
    drilled,
    set: (next: FleetState) => {
      cur = next;
      for (const f of fns) f();
    },
    subscribe: (f: () => void) => (fns.add(f), () => fns.delete(f)),
    getSnapshot: () => cur,
    drill: (n: string | null) => drilled.push(n),
  };
}

const settle = () => new Promise((r) => setTimeout(r, 30));
const trimmed = (f: string | undefined) => (f ?? '').split('\n').map((l) => l.trimEnd()).join('\n');

describe('the fleet view', () => {
  it('ranks the recorded nodes with their kinds, and drills into the selected one', async () => {
    const p = fakePoller(state());
    const r = render(<FleetApp poller={p} theme={theme} keys size={{ columns: 100, rows: 14 }} now={() => T + 3000} />);
    await settle();
    expect(trimmed(r.lastFrame())).toMatchInlineSnapshot(`
      "droptrace fleet  LIVE   prometheus http://prom:9090  nodes 3  drops in 1h, rates over 5m
      updated 09:00:00 UTC
      0.4 drops/s  115 drops in 1h  lost events 0
      ─ nodes by drops/s ─────────────────────────────────────────────────────────────────────────────────
       node                 drops/s    in 1h neigh    ct   nic/s  lost  top kinds
      ›fleet-a                  0.2       70    1%    0%       0     0  netfilter_rule 60 · no_socket 10
       fleet-b                  0.1       30    1%    0%       0     0  netfilter_rule 30
       fleet-c                  0.1       15    1%    0%       0     0  no_socket 15




      ↑↓ select  ⏎ drill into node  q quit"
    `);
    r.stdin.write('j');
    await settle();
    expect(r.lastFrame()).toMatch(/^›fleet-b /m);
    r.stdin.write('\r');
    await settle();
    expect(p.drilled).toEqual(['fleet-b']);
    expect(trimmed(r.lastFrame())).toMatchInlineSnapshot(`
      "droptrace fleet  LIVE   prometheus http://prom:9090  nodes 3  drops in 1h, rates over 5m
      updated 09:00:00 UTC
      0.4 drops/s  115 drops in 1h  lost events 0
      ─ fleet-b · drops by kind ──────────────────────────────────────────────────────────────────────────
       kind                          drops/s     in 1h
       netfilter_rule                    0.1        30
      ─ pods ─────────────────────────────────────────────────────────────────────────────────────────────
       namespace/pod                                in 1h  kinds
       shop/web-1                                      30  …
      ─ tables ───────────────────────────────────────────────────────────────────────────────────────────
       arp_cache           1%  of gc_thresh3
       ndisc_cache         1%  of gc_thresh3
      esc back  q quit"
    `);
    // the poller's answer for the drilled-in node: its pods with their kinds
    p.set(state({ pods: { node: 'fleet-b', pods: [{ namespace: 'shop', pod: 'web-1', drops: 30, kinds: [{ kind: 'netfilter_rule', drops: 30 }] }], error: null } }));
    await settle();
    expect(r.lastFrame()).toMatch(/^ shop\/web-1 +30 {2}netfilter_rule 30 *$/m);
    r.stdin.write('\x1b[D');
    await settle();
    expect(p.drilled).toEqual(['fleet-b', null]);
    expect(r.lastFrame()).toContain('─ nodes by drops/s');
    r.unmount();
  });

  it('says Prometheus is down in the header, with the retry and the age of what it still shows', () => {
    const s = state({ error: 'no answer within 10s', retryAtMs: T + 20_000 + 1, failures: 3 });
    const text = fleetHeader(s, theme, T + 65_000 - 45_000).map((l) => l.map((x) => x.text).join(''));
    expect(text.slice(0, 2)).toEqual([
      'droptrace fleet  PROMETHEUS DOWN   prometheus http://prom:9090  nodes 3  drops in 1h, rates over 5m',
      'prometheus http://prom:9090: no answer within 10s, retrying in 1s  (showing 09:00:00 UTC, 20s old)',
    ]);
    expect(fleetHeader(state({ fleet: null, updatedMs: null }), theme, T).map((l) => l.map((x) => x.text).join(''))).toEqual([
      'droptrace fleet  CONNECTING…   prometheus http://prom:9090',
      'asking prometheus http://prom:9090…',
      '',
    ]);
  });

  it('marks a table past 90% and NIC allowances being exceeded, in colour and without', () => {
    const n = { ...named(recorded).nodes[2]!, neigh: [{ table: 'arp_cache', fill: 0.93 }], conntrack_fill: 0.2, nic_allowance: [{ counter: 'pps_allowance_exceeded', drops: 40, per_s: 1.5 }] };
    const plain = nodeRow(n, false, theme);
    expect(plain.map((x) => x.text).join('')).toBe(' fleet-c                  0.1       15  !93%   20%     1.5     0  no_socket 15');
    const segs = nodeRow(n, false, colour);
    expect(segs.find((x) => x.text.includes('!93%'))).toMatchObject({ color: 'yellow', bold: true });
    expect(segs.find((x) => x.text.includes('20%'))?.color).toBeUndefined();
    expect(segs.find((x) => x.text.trim() === '1.5')).toMatchObject({ color: 'yellow' });
    const head = fleetHeader(state({ fleet: { ...named(recorded), nodes: [n] } }), colour, T);
    expect(head[2]!.at(-1)).toEqual({ text: '  1 node(s) with a table past 90%', bold: true, color: 'yellow' });
  });
});


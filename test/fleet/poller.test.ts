/**
 * The poller: a snapshot every interval, never two at once; a failing Prometheus keeps the last
 * good snapshot on screen, says why, and is retried after 5, 10, 20, 40, 60, 60 s; a drill-in
 * asks for the node's pods at once. Fake timers: no test waits on the wall clock.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { QUERY_NAMES } from '../../src/fleet/model.js';
import { FleetPoller } from '../../src/fleet/poller.js';
import { PromError } from '../../src/fleet/prom.js';
import type { Sample } from '../../src/fleet/prom.js';

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

const w = { sinceS: 3600, rateS: 300 };

/** A server whose answers the test switches: up (one node with `drops`) or down (`why`). */
function server() {
  const s = { down: null as string | null, drops: 5, queries: [] as string[], inFlight: 0, maxInFlight: 0 };
  const query = async (q: string): Promise<Sample[]> => {
    s.queries.push(q);
    s.inFlight++;
    s.maxInFlight = Math.max(s.maxInFlight, s.inFlight);
    await Promise.resolve();
    s.inFlight--;
    if (s.down !== null) throw new PromError(s.down);
    if (q.includes('by (node, kind)') && !q.includes('/ 300')) return [{ metric: { node: 'n1', kind: 'no_socket' }, value: s.drops }];
    if (q.includes('by (namespace, pod, kind)')) return [{ metric: { namespace: 'shop', pod: 'web', kind: 'no_socket' }, value: s.drops }];
    return [];
  };
  return { s, query };
}

describe('FleetPoller', () => {
  it('polls every interval and backs off 5, 10, 20, 40, 60, 60 s while Prometheus is down, keeping the last snapshot', async () => {
    const { s, query } = server();
    const p = new FleetPoller({ url: 'http://p:9090', query, window: w, intervalMs: 5000 });
    p.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(p.snapshot).toMatchObject({ error: null, failures: 0, updatedMs: 1_000_000, retryAtMs: null });
    expect(p.snapshot.fleet?.nodes.map((n) => [n.node, n.drops])).toEqual([['n1', 5]]);
    expect(s.queries).toHaveLength(QUERY_NAMES.length);

    s.down = 'connection refused';
    await vi.advanceTimersByTimeAsync(5000);
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      const st = p.snapshot;
      expect([st.error, st.failures, st.updatedMs]).toEqual(['connection refused', i + 1, 1_000_000]);
      // the last good snapshot stays
      expect(st.fleet?.nodes[0]?.drops).toBe(5);
      const wait = st.retryAtMs! - Date.now();
      waits.push(wait);
      await vi.advanceTimersByTimeAsync(wait);
    }
    expect(waits).toEqual([5000, 10_000, 20_000, 40_000, 60_000, 60_000]);

    s.down = null;
    s.drops = 8;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(p.snapshot).toMatchObject({ error: null, failures: 0, retryAtMs: null });
    expect(p.snapshot.fleet?.nodes[0]?.drops).toBe(8);
    expect(s.maxInFlight).toBeLessThanOrEqual(QUERY_NAMES.length);
    p.stop();
  });

  it('asks for a drilled-in node\'s pods at once, and forgets them on the way back', async () => {
    const { s, query } = server();
    const p = new FleetPoller({ url: 'http://p:9090', query, window: w });
    p.start();
    await vi.advanceTimersByTimeAsync(0);
    const before = s.queries.length;
    p.drill('n1');
    expect(p.snapshot.pods).toEqual({ node: 'n1', pods: null, error: null });
    await vi.advanceTimersByTimeAsync(0);
    // a whole snapshot again, with the pods' query: both at the same time
    expect(s.queries.length - before).toBe(QUERY_NAMES.length + 1);
    expect(p.snapshot.pods).toEqual({ node: 'n1', pods: [{ namespace: 'shop', pod: 'web', drops: 5, kinds: [{ kind: 'no_socket', drops: 5 }] }], error: null });
    p.drill(null);
    expect(p.snapshot.pods).toBeNull();
    p.stop();
  });

  it('does nothing more once stopped', async () => {
    const { s, query } = server();
    const p = new FleetPoller({ url: 'http://p:9090', query, window: w });
    p.start();
    await vi.advanceTimersByTimeAsync(0);
    p.stop();
    const n = s.queries.length;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(s.queries.length).toBe(n);
  });
});

/**
 * The fleet model from Prometheus API answers: fixtures/three-nodes.json was recorded from the
 * real server of test/fleet/fleet.e2e.test.ts (DT_FLEET_RECORD=<file> re-records it: three
 * nodes, 60+10, 30 and 15 drops). Answers the e2e cannot make (a table past 90%, NIC allowances,
 * lost events, a droptrace without the node label) are written in the same form by hand below.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fleetLines } from '../../src/fleet/line.js';
import { buildFleet, exactIncrease, fleetQueries, NO_NODE, podKindsQuery, QUERY_NAMES, queryFleet, queryPodKinds } from '../../src/fleet/model.js';
import type { Answers } from '../../src/fleet/model.js';
import { PromError, vectorOf } from '../../src/fleet/prom.js';
import type { QueryFn, Sample } from '../../src/fleet/prom.js';
import { schemaErrors } from '../helpers/schema.js';

interface Recording {
  time: number;
  window: { sinceS: number; rateS: number };
  node: string;
  own: Record<string, Record<string, number>>;
  answers: Record<string, unknown>;
}

const rec = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'three-nodes.json'), 'utf8')) as Recording;
const [A, B, C] = Object.keys(rec.own) as [string, string, string];

/** A QueryFn that answers each known query with its recorded answer, and fails on any other. */
function recorded(answers: Record<string, unknown>, w = rec.window, node = rec.node): QueryFn & { asked: number[] } {
  const byQuery = new Map<string, unknown>(Object.entries({ ...fleetQueries(w), podKinds: podKindsQuery(node, w) }).map(([k, q]) => [q, answers[k]]));
  const asked: number[] = [];
  const fn = async (q: string, time: number) => {
    asked.push(time);
    if (!byQuery.has(q)) throw new Error(`unexpected query ${q}`);
    return vectorOf(byQuery.get(q));
  };
  return Object.assign(fn, { asked });
}

const vec = (rows: Array<[Record<string, string>, number]>): Sample[] => rows.map(([metric, value]) => ({ metric, value }));
const empty = (): Answers => Object.fromEntries(QUERY_NAMES.map((k) => [k, [] as Sample[]])) as unknown as Answers;

describe('the fleet model from recorded answers', () => {
  it('ranks the nodes by drops/s and gives each its kinds, pods, tables and lost events, every query at one time', async () => {
    const q = recorded(rec.answers);
    const f = await queryFleet(q, rec.window, rec.time);
    expect(q.asked).toEqual(QUERY_NAMES.map(() => rec.time));
    expect(f.nodes.map((n) => [n.node, n.drops, n.kinds.map((k) => [k.kind, k.drops])])).toEqual([
      [A, 70, [['netfilter_rule', 60], ['no_socket', 10]]],
      [B, 30, [['netfilter_rule', 30]]],
      [C, 15, [['no_socket', 15]]],
    ]);
    // the counts are each node's own
    for (const n of f.nodes) expect(Object.fromEntries(n.kinds.map((k) => [k.kind, k.drops]))).toEqual(rec.own[n.node]);
    expect(f.nodes[0]).toEqual({
      node: A,
      drops: 70,
      per_s: 0.2 + 1 / 30,
      kinds: [
        { kind: 'netfilter_rule', drops: 60, per_s: 0.2 },
        { kind: 'no_socket', drops: 10, per_s: 1 / 30 },
      ],
      pods: [{ namespace: 'shop', pod: 'web-0', drops: 70 }],
      neigh: [
        { table: 'arp_cache', fill: 0.009766 },
        { table: 'ndisc_cache', fill: 0.010742 },
      ],
      conntrack_fill: 0.000004,
      nic_allowance: [],
      lost_events: 0,
    });
    expect([f.time, f.since_s, f.rate_window_s]).toEqual([rec.time, 3600, 300]);
  });

  it('gives the drilled-in node\'s pods with their kinds', async () => {
    expect(await queryPodKinds(recorded(rec.answers), rec.node, rec.window, rec.time)).toEqual([
      { namespace: 'shop', pod: 'web-0', drops: 70, kinds: [{ kind: 'netfilter_rule', drops: 60 }, { kind: 'no_socket', drops: 10 }] },
    ]);
  });

  it('writes one fleet_node line per node, ranked', async () => {
    const f = await queryFleet(recorded(rec.answers), rec.window, rec.time);
    const lines = fleetLines(f, 'http://prom:9090');
    expect(lines.map((l) => [l.type, l.node, l.rank, l.of, l.since_s, l.rate_window_s, l.prometheus])).toEqual([
      ['fleet_node', A, 1, 3, 3600, 300, 'http://prom:9090'],
      ['fleet_node', B, 2, 3, 3600, 300, 'http://prom:9090'],
      ['fleet_node', C, 3, 3, 3600, 300, 'http://prom:9090'],
    ]);
    expect(lines[0]!.time).toBe(new Date(Math.round(rec.time * 1000)).toISOString());
    expect(schemaErrors(lines)).toEqual([]);
  });

  it('fails with the server\'s own words when one query fails', async () => {
    const answers = { ...rec.answers, neigh: { status: 'error', errorType: 'bad_data', error: '1:15: parse error: unexpected end of input' } };
    await expect(queryFleet(recorded(answers), rec.window, rec.time)).rejects.toThrow(new PromError('bad_data: 1:15: parse error: unexpected end of input'));
  });
});

describe('the fleet model from answers written by hand', () => {
  const w = { sinceS: 600, rateS: 300 };

  it('keeps nodes that drop nothing, sums NIC allowances over interfaces and names a node without the label', () => {
    const a = empty();
    a.up = vec([[{ node: 'quiet' }, 1], [{}, 1]]);
    a.kindDrops = vec([[{ kind: 'neigh_table_full' }, 12.0000001]]);
    a.kindRate = vec([[{ kind: 'neigh_table_full' }, 0.04]]);
    a.neigh = vec([[{ node: 'quiet', table: 'arp_cache' }, 0.95]]);
    a.conntrack = vec([[{ node: 'quiet' }, 0.5]]);
    a.nicDrops = vec([[{ node: 'quiet', counter: 'pps_allowance_exceeded' }, 7]]);
    a.nicRate = vec([[{ node: 'quiet', counter: 'pps_allowance_exceeded' }, 0.5]]);
    a.lost = vec([[{ node: 'quiet' }, 3]]);
    const f = buildFleet(a, 1000, w);
    expect(schemaErrors(fleetLines(f, 'http://p'))).toEqual([]);
    expect(f.nodes).toEqual([
      { node: NO_NODE, drops: 12, per_s: 0.04, kinds: [{ kind: 'neigh_table_full', drops: 12, per_s: 0.04 }], pods: [], neigh: [], conntrack_fill: null, nic_allowance: [], lost_events: 0 },
      {
        node: 'quiet',
        drops: 0,
        per_s: 0,
        kinds: [],
        pods: [],
        neigh: [{ table: 'arp_cache', fill: 0.95 }],
        conntrack_fill: 0.5,
        nic_allowance: [{ counter: 'pps_allowance_exceeded', drops: 7, per_s: 0.5 }],
        lost_events: 3,
      },
    ]);
  });

  it('ranks by drops/s, then by drops in the window, then by name', () => {
    const a = empty();
    a.kindDrops = vec([[{ node: 'b', kind: 'x' }, 5], [{ node: 'a', kind: 'x' }, 5], [{ node: 'c', kind: 'x' }, 9], [{ node: 'd', kind: 'x' }, 1]]);
    a.kindRate = vec([[{ node: 'd', kind: 'x' }, 0.01]]);
    expect(buildFleet(a, 0, w).nodes.map((n) => n.node)).toEqual(['d', 'c', 'a', 'b']);
  });
});

describe('the queries', () => {
  it('count a window exactly: now minus the window\'s start (0 for a series born in it), increase() only across a reset', () => {
    expect(exactIncrease('m', 'pod!=""', 3600)).toBe('((m{pod!=""} - (m{pod!=""} offset 3600s or m{pod!=""} * 0)) unless (resets(m{pod!=""}[3600s]) > 0)) or increase(m{pod!=""}[3600s])');
  });

  it('quote a node name for the drill-in, and select series without the label for the unnamed node', () => {
    expect(podKindsQuery('we"ird\\node', { sinceS: 60, rateS: 60 })).toContain('droptrace_drops_total{node="we\\"ird\\\\node",pod!=""}');
    expect(podKindsQuery(NO_NODE, { sinceS: 60, rateS: 60 })).toContain('droptrace_drops_total{node="",pod!=""}');
  });
});

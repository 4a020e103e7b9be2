/**
 * The fleet's PromQL, evaluated by Prometheus' own engine offline (`promtool test rules`, Debian's
 * `prometheus` package): every query of a snapshot against series shaped like droptrace's, with
 * the exact answers. Shows the window counts are exact where increase() is not: a series born
 * inside the window counts whole, one older than the window counts from the window's start,
 * and only a reset falls back to increase().
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { exactIncrease, fleetQueries, podKindsQuery } from '../../src/fleet/model.js';

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
const why = promtool.error || promtool.status !== 0 ? 'promtool is not installed (Debian: apt-get install prometheus, or bash scripts/setup.sh as root)' : '';
if (why) console.warn(`skipping the PromQL tests of the fleet view: ${why}`);

type Exp = Array<{ labels: string; value: number }>;

/** Runs `promtool test rules` on one test group; '' when every expectation held, else its report. */
function promtoolTest(series: Array<[string, string]>, cases: Array<{ expr: string; exp: Exp }>, evalTime = '10m'): string {
  const dir = mkdtempSync(join(tmpdir(), 'dt-fleet-promql-'));
  try {
    const file = join(dir, 'test.yml');
    writeFileSync(
      file,
      stringify({
        rule_files: [],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: series.map(([s, values]) => ({ series: s, values })),
            promql_expr_test: cases.map((c) => ({ expr: c.expr, eval_time: evalTime, exp_samples: c.exp })),
          },
        ],
      }),
    );
    const r = spawnSync('promtool', ['test', 'rules', file], { encoding: 'utf8' });
    return r.status === 0 ? '' : `${r.stdout}${r.stderr}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(why !== '')('the fleet queries in Prometheus\' engine (promtool)', () => {
  it('count a window exactly: from its start, whole when born inside it, increase() only across a reset', () => {
    // samples at 0m..6m; the window is the last 3 minutes
    const series: Array<[string, string]> = [
      ['m{node="old"}', '10 10 10 12 15 15 15'],
      ['m{node="born"}', '_ _ _ _ 7 7 9'],
      ['m{node="reset"}', '5 6 7 8 2 3 4'],
    ];
    expect(promtoolTest(series, [{ expr: `${exactIncrease('m', '', 180)}`, exp: [{ labels: '{node="old"}', value: 3 }, { labels: '{node="born"}', value: 9 }, { labels: '{node="reset"}', value: 4 }] }], '6m')).toBe('');
    // the same as increase() across the reset, whatever the version's extrapolation makes of it
    expect(promtoolTest(series, [{ expr: `${exactIncrease('m', 'node="reset"', 180)} - increase(m{node="reset"}[3m])`, exp: [{ labels: '{node="reset"}', value: 0 }] }], '6m')).toBe('');
    // what increase() says instead: not the 9 drops of the series born in the window
    expect(promtoolTest(series, [{ expr: 'increase(m{node="born"}[3m])', exp: [{ labels: '{node="born"}', value: 9 }] }], '6m')).not.toBe('');
  });

  it('answer every query of a snapshot exactly', () => {
    const drop = (node: string, kind: string, pod: string) => `droptrace_drops_total{node="${node}",family="ipv4",kind="${kind}",reason="X",namespace="${pod ? 'shop' : ''}",pod="${pod}"}`;
    // samples at 0m..10m; drops counted over the last 6 minutes (from 4m), rates over the last 3 (from 7m)
    const series: Array<[string, string]> = [
      [drop('n1', 'netfilter_rule', 'web'), '0+1x10'],
      // born at 8m with 5 drops: all of them in both windows
      [drop('n1', 'no_socket', ''), '_ _ _ _ _ _ _ _ 5 5 5'],
      // nothing new since long before the window
      [drop('n2', 'neigh_table_full', ''), '1x10'],
      ['droptrace_neigh_fill_ratio{node="n2",table="arp_cache"}', '0.95x10'],
      ['droptrace_conntrack_fill_ratio{node="n2",netns="1"}', '0.5x10'],
      ['droptrace_conntrack_fill_ratio{node="n2",netns="2"}', '0.75x10'],
      ['droptrace_nic_allowance_exceeded_total{node="n2",ifname="eth0",netns="1",counter="pps_allowance_exceeded"}', '0+2x10'],
      ['droptrace_nic_allowance_exceeded_total{node="n2",ifname="eth1",netns="1",counter="pps_allowance_exceeded"}', '0+1x10'],
      ['droptrace_events_lost_total{node="n1",where="ring_buffer"}', '0 0 0 0 0 0 0 0 0 3 3'],
      ['droptrace_info{node="n1",version="0.1.0",kernel="6.1",schema="1"}', '1x10'],
      ['droptrace_info{node="n2",version="0.1.0",kernel="6.1",schema="1"}', '1x10'],
    ];
    const q = fleetQueries({ sinceS: 360, rateS: 180 });
    const cases: Array<{ expr: string; exp: Exp }> = [
      {
        expr: q.kindDrops,
        exp: [
          { labels: '{node="n1",kind="netfilter_rule"}', value: 6 },
          { labels: '{node="n1",kind="no_socket"}', value: 5 },
          { labels: '{node="n2",kind="neigh_table_full"}', value: 0 },
        ],
      },
      {
        expr: q.kindRate,
        exp: [
          { labels: '{node="n1",kind="netfilter_rule"}', value: 3 / 180 },
          { labels: '{node="n1",kind="no_socket"}', value: 5 / 180 },
          { labels: '{node="n2",kind="neigh_table_full"}', value: 0 },
        ],
      },
      { expr: q.pods, exp: [{ labels: '{node="n1",namespace="shop",pod="web"}', value: 6 }] },
      { expr: q.neigh, exp: [{ labels: '{node="n2",table="arp_cache"}', value: 0.95 }] },
      { expr: q.conntrack, exp: [{ labels: '{node="n2"}', value: 0.75 }] },
      { expr: q.nicDrops, exp: [{ labels: '{node="n2",counter="pps_allowance_exceeded"}', value: 18 }] },
      { expr: q.nicRate, exp: [{ labels: '{node="n2",counter="pps_allowance_exceeded"}', value: 9 / 180 }] },
      { expr: q.lost, exp: [{ labels: '{node="n1"}', value: 3 }] },
      { expr: q.up, exp: [{ labels: '{node="n1"}', value: 1 }, { labels: '{node="n2"}', value: 1 }] },
      { expr: podKindsQuery('n1', { sinceS: 360, rateS: 180 }), exp: [{ labels: '{namespace="shop",pod="web",kind="netfilter_rule"}', value: 6 }] },
    ];
    expect(promtoolTest(series, cases)).toBe('');
  });
});

/**
 * Every PromQL expression we ship, against a real Prometheus that scraped a real droptrace.
 *
 * As root: `droptrace stream --metrics` on a throw-away namespace pair (198.18.x.x), with a
 * --pods file naming b's netns, drops of two kinds made in b (an iptables DROP rule:
 * netfilter_rule; datagrams from 127.0.0.9: martian_source); Debian's `prometheus` scrapes it
 * every second (test/helpers/prometheus.ts). Then every expression of deploy/grafana/droptrace.json
 * (panel targets and template variable queries) and of deploy/prometheus/droptrace-rules.yml
 * (when that file exists; Prometheus loads it too) is evaluated through the HTTP API with
 * Grafana's variables filled in: none may fail, and every metric it names (test/helpers/promql.ts,
 * a tokenizer) must be one this droptrace exported in the scrape (its HELP/TYPE in Prometheus'
 * target metadata, so a family with no series yet still counts), a rule's own record, or one of
 * Prometheus' scrape series. Waits on conditions (the start line, Prometheus' answers), never on
 * sleeps of a guessed length.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { inNs, makePair, sendSpoofedUdp, sendUdp } from '../helpers/netns.js';
import type { Pair } from '../helpers/netns.js';
import { freePort, prometheusMissing, startPrometheus } from '../helpers/prometheus.js';
import type { Prometheus, QueryResult, Sample } from '../helpers/prometheus.js';
import { dashboardTargets, parseVariableQuery, promqlMetricNames, substituteVariables } from '../helpers/promql.js';
import { CLI, ROOT, startStream } from '../helpers/stream.js';
import type { StreamRun } from '../helpers/stream.js';

const DASHBOARD = join(ROOT, 'deploy', 'grafana', 'droptrace.json');
const RULES = join(ROOT, 'deploy', 'prometheus', 'droptrace-rules.yml');

const isRoot = process.getuid?.() === 0;
const why = !isRoot
  ? 'it needs root (BPF programs, network namespaces)'
  : prometheusMissing() || (!existsSync(CLI) ? 'dist/ is not built (bash scripts/setup.sh)' : spawnSync('iptables', ['--version']).status !== 0 ? 'iptables is not installed' : '');
if (why) console.warn(`skipping the PromQL test of the dashboard and rules against a real Prometheus: ${why}`);

/** Series Prometheus makes for every target it scrapes; expressions may read them too. */
const SCRAPE_SERIES = ['up', 'scrape_duration_seconds', 'scrape_samples_scraped', 'scrape_samples_post_metric_relabeling', 'scrape_series_added', 'ALERTS', 'ALERTS_FOR_STATE'];

interface Expr {
  /** where it comes from, for the failure list */
  where: string;
  expr: string;
  instant: boolean;
}

const vector = (r: QueryResult) => r.result as Sample[];

describe('PromQL metric names (the tokenizer the test below relies on)', () => {
  it.each([
    ['sum by (node, kind) (rate(droptrace_drops_total{node=~"$node", pod!=""}[1m]))', ['droptrace_drops_total']],
    ['sum(rate(a_total[5m])) by (node) / on (node) group_left(kind, table) max without (x) (b:c:ratio) > bool 0.9', ['a_total', 'b:c:ratio']],
    ['{__name__="x_total", job="y"} offset 5m or vector(1) and -Inf < NaN', ['x_total']],
    ['label_replace(m, "dst", "$1", "src", "(by|sum) (\\"q\\")") # a comment naming fake_metric\n + count_values("v", n)', ['m', 'n']],
    ['max_over_time(deriv(u[1h:1m])[5m:]) @ start() unless topk(3, w) atan2 1e-3', ['u', 'w']],
  ])('%s', (expr, want) => {
    expect(promqlMetricNames(expr)).toEqual(want);
  });

  it('refuses a regex on __name__ instead of guessing', () => {
    expect(() => promqlMetricNames('{__name__=~"droptrace_.*"}')).toThrow(/by pattern/);
  });

  it("substitutes Grafana's variable forms and names an undefined one", () => {
    expect(substituteVariables('rate(x{node=~"$node",a="${node:regex}",b="[[node]]"}[$__rate_interval])', { node: 'n1', __rate_interval: '1m' })).toBe(
      'rate(x{node=~"n1",a="n1",b="n1"}[1m])',
    );
    expect(() => substituteVariables('x[$__range]', {})).toThrow(/undefined Grafana variable \$__range/);
  });
});

describe('the dashboard file (import shape, no server needed)', () => {
  interface Panel {
    id: number;
    type: string;
    title: string;
    gridPos: { x: number; y: number; w: number; h: number };
    datasource?: { type: string; uid: string };
    targets?: Array<{ refId: string; expr: string; datasource: { type: string; uid: string } }>;
  }
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    schemaVersion: number;
    uid: string;
    __inputs: Array<{ name: string; pluginId: string }>;
    panels: Panel[];
    templating: { list: Array<{ name: string; datasource: { uid: string }; definition: string; query: { query: string } }> };
  };
  const DS = { type: 'prometheus', uid: '${DS_PROMETHEUS}' };

  it('takes its Prometheus as the DS_PROMETHEUS input, in every panel, target and variable', () => {
    expect({ schemaVersion: dash.schemaVersion, uid: dash.uid, inputs: dash.__inputs.map((i) => [i.name, i.pluginId]) }).toEqual({
      schemaVersion: 39,
      uid: 'droptrace',
      inputs: [['DS_PROMETHEUS', 'prometheus']],
    });
    for (const p of dash.panels.filter((x) => x.type !== 'row')) {
      expect(p.datasource, p.title).toEqual(DS);
      for (const t of p.targets ?? []) expect(t.datasource, `${p.title} ${t.refId}`).toEqual(DS);
    }
    expect(dash.templating.list.map((v) => [v.name, v.datasource, v.definition, v.query.query])).toEqual([
      ['node', DS, 'label_values(droptrace_info, node)', 'label_values(droptrace_info, node)'],
    ]);
  });

  it('has unique panel ids and refIds, and panels that fit the 24-column grid without overlapping', () => {
    const ids = dash.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Map<string, string>();
    for (const p of dash.panels) {
      const refs = (p.targets ?? []).map((t) => t.refId);
      expect(new Set(refs).size, p.title).toBe(refs.length);
      const g = p.gridPos;
      expect(g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0, p.title).toBe(true);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          const other = cells.get(`${x},${y}`);
          expect(other, `${p.title} overlaps ${other}`).toBeUndefined();
          cells.set(`${x},${y}`, p.title);
        }
      }
    }
  });
});

describe.skipIf(why !== '')('the dashboard and the rules, evaluated by a real Prometheus that scraped droptrace', () => {
  const id = randomBytes(3).toString('hex');
  const node = `dt-promql-${id}`;
  let dir: string | undefined;
  const N_RULE = 23;
  const N_MARTIAN = 7;
  let pair: Pair | undefined;
  let stream: StreamRun | undefined;
  let prom: Prometheus | undefined;
  /** metric families droptrace exported in the scrape */
  let exported: Set<string>;
  /** names the rule file's recording rules define */
  let recorded: Set<string>;
  let exprs: Expr[];
  let vars: Record<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dt-promql-'));
    pair = makePair({ prefix: 'dtq' });
    const p = pair;
    inNs(p.b, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '5340', '-j', 'DROP']);
    // a conntrack match makes b's netns track flows, so the conntrack series have a value
    inNs(p.b, 'iptables', ['-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP']);
    const pods = join(dir, 'pods.json');
    writeFileSync(pods, JSON.stringify([{ namespace: 'shop', name: 'web-0', uid: `uid-${id}`, netns: p.netnsB }]));
    const metricsPort = await freePort();
    stream = startStream(['--netns', String(p.netnsB), '--pods', pods, '--metrics', `127.0.0.1:${metricsPort}`, '--node-name', node, '--counters-interval', '1']);
    await stream.ready;
    prom = await startPrometheus({ targets: [{ address: `127.0.0.1:${metricsPort}`, job: 'droptrace', instance: node }], ruleFiles: existsSync(RULES) ? [RULES] : [] });

    // a flow conntrack keeps (port 9: no listener, so it is also a no_socket drop), then the two kinds
    sendUdp(p.a, p.ipA, 40040, p.ipB, 9, 1);
    // In two batches with a scrape between them: a series born with all its drops has no
    // increase for rate() to see, and the drops panel must show a rate.
    const kinds = `sum by (kind) (droptrace_drops_total{node="${node}", kind=~"netfilter_rule|martian_source"})`;
    const scraped = (rule: number, martian: number) => (r: QueryResult) => {
      const got = Object.fromEntries(vector(r).map((s) => [s.metric.kind, Number(s.value![1])]));
      return got.netfilter_rule === rule && got.martian_source === martian;
    };
    sendUdp(p.a, p.ipA, 40041, p.ipB, 5340, 3);
    sendSpoofedUdp(p.a, '127.0.0.9', p.ipB, 40042, 5341, 2);
    await prom.waitFor(kinds, scraped(3, 2));
    sendUdp(p.a, p.ipA, 40041, p.ipB, 5340, N_RULE - 3);
    sendSpoofedUdp(p.a, '127.0.0.9', p.ipB, 40042, 5341, N_MARTIAN - 2);
    // Prometheus has scraped the exact counts, and a counters line (table fill) after them
    await prom.waitFor(kinds, scraped(N_RULE, N_MARTIAN));
    await prom.waitFor(`droptrace_conntrack_entries{node="${node}", netns="${p.netnsB}"}`, (r) => vector(r).length === 1);
    await prom.waitFor(`droptrace_neigh_fill_ratio{node="${node}"}`, (r) => vector(r).length > 0);

    const meta = await prom.api<Array<{ metric: string }>>('targets/metadata', { match_target: '{job="droptrace"}' });
    exported = new Set(meta.map((m) => m.metric));
    const series = await prom.api<Array<Record<string, string>>>('series', { 'match[]': '{job="droptrace"}' });
    for (const s of series) exported.add(s.__name__!);

    exprs = [];
    recorded = new Set();
    const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { templating?: { list?: Array<{ name: string; query?: unknown; definition?: string }> } };
    for (const t of dashboardTargets(dash)) exprs.push({ where: `panel "${t.panel}" ${t.refId}`, expr: t.expr, instant: t.instant });
    if (existsSync(RULES)) {
      const rules = parseYaml(readFileSync(RULES, 'utf8')) as { groups: Array<{ name: string; rules: Array<{ record?: string; alert?: string; expr: string }> }> };
      for (const g of rules.groups) {
        for (const r of g.rules) {
          exprs.push({ where: `rule ${g.name}/${r.record ?? r.alert}`, expr: String(r.expr), instant: true });
          if (r.record) recorded.add(r.record);
        }
      }
    }
    // $node as Grafana writes one selected node into a regex matcher; Grafana's interval variables
    vars = { node, __rate_interval: '1m', __interval: '15s', __interval_ms: '15000', __range: '1h', __range_s: '3600', __range_ms: '3600000' };
  }, 180_000);

  afterAll(async () => {
    await prom?.stop();
    await stream?.stop();
    pair?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('droptrace exported the families the check reads from (the scrape got through)', () => {
    for (const name of ['droptrace_drops_total', 'droptrace_info', 'droptrace_probe_attached', 'droptrace_neigh_fill_ratio', 'droptrace_conntrack_max', 'droptrace_nic_allowance_exceeded_total']) {
      expect(exported.has(name), name).toBe(true);
    }
  });

  it('finds the expressions: every panel target, the rules when present', () => {
    expect(exprs.filter((e) => e.where.startsWith('panel')).length).toBeGreaterThanOrEqual(15);
    if (existsSync(RULES)) expect(exprs.some((e) => e.where.startsWith('rule'))).toBe(true);
    else console.warn(`${RULES} does not exist yet: only the dashboard is checked`);
  });

  it('evaluates every expression without an error, each naming only metrics droptrace exported', async () => {
    const allowed = new Set([...exported, ...recorded, ...SCRAPE_SERIES]);
    const failures: string[] = [];
    const now = Date.now() / 1000;
    // one node selected, and All (the variable's allValue)
    for (const node of [vars.node!, '.*']) {
      for (const e of exprs) {
        try {
          const q = substituteVariables(e.expr, { ...vars, node });
          await prom!.query(q);
          if (!e.instant) await prom!.queryRange(q, now - 60, now, 1);
          const unknown = promqlMetricNames(q).filter((n) => !allowed.has(n));
          if (unknown.length) failures.push(`${e.where}: names ${unknown.join(', ')}, not exported by droptrace`);
        } catch (err) {
          failures.push(`${e.where} (node=${node}): ${(err as Error).message}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('the node variable lists the node (label_values over the series API)', async () => {
    const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { templating: { list: Array<{ name: string; query: string | { query: string } }> } };
    const v = dash.templating.list.find((x) => x.name === 'node')!;
    const q = parseVariableQuery(typeof v.query === 'string' ? v.query : v.query.query);
    expect(q).toEqual({ kind: 'label_values', selector: 'droptrace_info', label: 'node' });
    if (q.kind !== 'label_values') return;
    expect(promqlMetricNames(q.selector!).every((n) => exported.has(n))).toBe(true);
    const series = await prom!.api<Array<Record<string, string>>>('series', { 'match[]': q.selector! });
    expect([...new Set(series.map((s) => s[q.label]))]).toEqual([node]);
  });

  const panelExpr = (title: string) => {
    const t = dashboardTargets(JSON.parse(readFileSync(DASHBOARD, 'utf8'))).find((x) => x.panel === title);
    if (!t) throw new Error(`no panel "${title}" in the dashboard`);
    return substituteVariables(t.expr, vars);
  };

  it('the drops panel shows both kinds on the node, at a rate above zero', async () => {
    const r = await prom!.waitFor(panelExpr('Drops/s by node and kind'), (x) => ['netfilter_rule', 'martian_source'].every((k) => vector(x).some((s) => s.metric.kind === k && Number(s.value![1]) > 0)));
    const kinds = vector(r)
      .filter((s) => ['netfilter_rule', 'martian_source'].includes(s.metric.kind!))
      .map((s) => s.metric)
      .sort((a, b) => a.kind!.localeCompare(b.kind!));
    expect(kinds).toEqual([
      { node, kind: 'martian_source' },
      { node, kind: 'netfilter_rule' },
    ]);
  });

  it('the top pods panel names the pod that owns the netns', async () => {
    const r = await prom!.waitFor(panelExpr('Top pods by drops/s'), (x) => vector(x).some((s) => s.metric.kind === 'netfilter_rule'));
    expect(vector(r).find((s) => s.metric.kind === 'netfilter_rule')!.metric).toEqual({ node, namespace: 'shop', pod: 'web-0', kind: 'netfilter_rule' });
  });

  it("the table fill panels show the node's tables", async () => {
    const neigh = await prom!.query(panelExpr('Neighbour table fill (entries / gc_thresh3)'));
    expect(vector(neigh).map((s) => s.metric.table).sort()).toEqual(['arp_cache', 'ndisc_cache']);
    // a new datagram of the tracked flow: the unreplied UDP entry lives 30 s (nf_conntrack_udp_timeout)
    sendUdp(pair!.a, pair!.ipA, 40040, pair!.ipB, 9, 1);
    const ct = await prom!.waitFor(panelExpr('Conntrack fill (entries / nf_conntrack_max, fullest netns)'), (r) => vector(r).length > 0);
    expect(vector(ct).map((s) => s.metric)).toEqual([{ node }]);
    expect(Number(vector(ct)[0]!.value![1])).toBeGreaterThan(0);
  });
});

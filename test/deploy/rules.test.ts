/**
 * deploy/: the Prometheus rules pass `promtool check rules` and their unit tests
 * (droptrace-rules.promtool.yml: every alert once firing, once silent), the PrometheusRule is the
 * generated copy of the rules file, and `kubectl kustomize deploy/` renders exactly the expected
 * objects and ConfigMap keys. promtool is Debian's `prometheus`, kubectl Debian's
 * `kubernetes-client` (scripts/setup.sh installs both); without one, its tests skip and say why.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TestContext } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { ALLOWANCE_COUNTERS } from '../../src/host/ethtool.js';
import { explainReads } from '../../src/pipeline/explain.js';
import { DropMetrics } from '../../src/sinks/metrics.js';

const root = join(import.meta.dirname, '..', '..');
const RULES = 'deploy/prometheus/droptrace-rules.yml';
const OPERATOR_RULES = 'deploy/prometheus/droptrace-rules.prometheusrule.yaml';
const UNIT_TESTS = 'test/deploy/droptrace-rules.promtool.yml';
const DASHBOARD = 'deploy/grafana/droptrace.json';

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: Array<{ name: string; rules: Rule[] }>;
}
interface UnitTests {
  tests: Array<{
    input_series: Array<{ series: string }>;
    alert_rule_test?: Array<{ alertname: string; eval_time: string; exp_alerts: Array<{ exp_labels: Record<string, string> }> }>;
  }>;
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  spec?: unknown;
}

const text = (rel: string): string => readFileSync(join(root, rel), 'utf8');
const rules = (): RuleFile => parse(text(RULES)) as RuleFile;
const alerts = (): Rule[] => rules().groups.flatMap((g) => g.rules.filter((r) => r.alert !== undefined));

function run(cmd: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** Skips (saying why) when a Debian tool is missing: never a silent pass. */
function need(ctx: TestContext, cmd: string, versionArgs: string[], pkg: string): void {
  if (spawnSync(cmd, versionArgs).status !== 0) {
    console.warn(`skipping: ${cmd} not installed (Debian: apt-get install ${pkg}; scripts/setup.sh does)`);
    ctx.skip();
  }
}

describe('deploy/prometheus/droptrace-rules.yml', () => {
  it('passes promtool check rules', (ctx) => {
    need(ctx, 'promtool', ['--version'], 'prometheus');
    const count = rules().groups.reduce((n, g) => n + g.rules.length, 0);
    expect(run('promtool', ['check', 'rules', RULES])).toEqual({ status: 0, out: `Checking ${RULES}\n  SUCCESS: ${count} rules found\n\n` });
  });

  it('passes its promtool unit tests', (ctx) => {
    need(ctx, 'promtool', ['--version'], 'prometheus');
    // on failure the diff shows promtool's own account of what fired and what was expected
    expect(run('promtool', ['test', 'rules', UNIT_TESTS])).toEqual({ status: 0, out: `Unit Testing:  ${UNIT_TESTS}\n  SUCCESS\n\n` });
  });

  it('tests every alert both ways: firing, and silent for a node or a time that must not fire', () => {
    const suite = parse(text(UNIT_TESTS)) as UnitTests;
    const coverage = alerts().map((a) => {
      let fires = false;
      let silent = false;
      for (const group of suite.tests) {
        const cases = (group.alert_rule_test ?? []).filter((c) => c.alertname === a.alert);
        if (cases.length === 0) continue;
        const firing = new Set(cases.flatMap((c) => c.exp_alerts.map((e) => e.exp_labels.node)));
        const nodes = new Set(group.input_series.map((s) => /node="([^"]+)"/.exec(s.series)?.[1]));
        if (firing.size > 0) fires = true;
        if (cases.some((c) => c.exp_alerts.length === 0) || [...nodes].some((n) => !firing.has(n))) silent = true;
      }
      return { alert: a.alert, fires, silent };
    });
    expect(coverage.filter((c) => !c.fires || !c.silent)).toEqual([]);
    expect(coverage.map((c) => c.alert)).toEqual([
      'DroptraceNeighTableNearlyFull',
      'DroptraceNeighTableFullWithinAnHour',
      'DroptraceNeighTableFullDrops',
      'DroptraceConntrackNearlyFull',
      'DroptraceConntrackTableFullDrops',
      'DroptraceConntrackInsertFailedDrops',
      'DroptraceNicConntrackAllowanceExceeded',
      'DroptraceNicLinklocalAllowanceExceeded',
      'DroptraceNicPpsAllowanceExceeded',
      'DroptraceNicBandwidthAllowanceExceeded',
      'DroptraceEventsLost',
      'DroptraceUnfoldedDrops',
      'DroptraceBlind',
      'DroptraceProbeUnavailable',
    ]);
  });

  it('gives every alert a severity, a summary naming the node, and a description', () => {
    const missing = alerts().filter(
      (a) =>
        !['critical', 'warning', 'info'].includes(a.labels?.severity ?? '') ||
        !(a.annotations?.summary ?? '').startsWith('{{ $labels.node }}') ||
        (a.annotations?.description ?? '').length < 80,
    );
    expect(missing.map((a) => a.alert)).toEqual([]);
  });

  it('names only metrics, drop kinds and NIC counters droptrace exports, and alerts on every allowance counter', () => {
    const exported = new Set(new DropMetrics({ processMetrics: false }).registry.getMetricsAsArray().map((m) => m.name));
    // registered once a counters line gives nf_conntrack_max
    exported.add('droptrace_conntrack_max');
    const all = rules().groups.flatMap((g) => g.rules);
    // expressions and annotations (which point the reader at metrics too); not recorded names
    const words = all.flatMap((r) => [r.expr, ...Object.values(r.annotations ?? {})]).join('\n');
    const named = new Set(words.match(/(?<![:\w])droptrace_[a-z0-9_]+/g));
    expect([...named].filter((n) => !exported.has(n))).toEqual([]);
    expect(named.size).toBeGreaterThan(10);

    const kinds = new Set([...words.matchAll(/kind="([a-z_]+)"/g)].map((m) => m[1] ?? ''));
    expect([...kinds].sort()).toEqual(['conntrack_insert_failed', 'conntrack_table_full', 'neigh_table_full']);
    // kinds the classifier gives (explain() reads sysctls for each), not names made up here
    expect([...kinds].map(explainReads)).toEqual(['sysctl', 'sysctl', 'sysctl']);

    const counters = [...words.matchAll(/counter=~?"([^"]+)"/g)].flatMap((m) => (m[1] ?? '').split('|'));
    expect([...counters].sort()).toEqual([...ALLOWANCE_COUNTERS].sort());
  });

  it('aggregates every expression by node', () => {
    const all = rules().groups.flatMap((g) => g.rules);
    expect(all.filter((r) => !/\bby \(node\b/.test(r.expr)).map((r) => r.record ?? r.alert)).toEqual([]);
  });
});

describe('deploy/prometheus/droptrace-rules.prometheusrule.yaml', () => {
  it('is generated from the rules file and up to date', () => {
    expect(run(process.execPath, ['deploy/prometheus/generate.mjs', '--check'])).toEqual({ status: 0, out: '' });
    const manifest = parse(text(OPERATOR_RULES)) as K8sObject;
    expect(manifest.spec).toEqual(rules());
  });
});

describe('deploy/kustomization.yaml', () => {
  it('renders with kubectl kustomize to the DaemonSet, the PrometheusRule and the two ConfigMaps', (ctx) => {
    need(ctx, 'kubectl', ['version', '--client'], 'kubernetes-client');
    const r = spawnSync('kubectl', ['kustomize', 'deploy'], { cwd: root, encoding: 'utf8' });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    const objects = parseAllDocuments(r.stdout).map((d) => d.toJS() as K8sObject);
    const ids = objects.map((o) => `${o.kind} ${o.metadata.namespace ?? '-'}/${o.metadata.name}`).sort();
    expect(ids).toEqual([
      'ClusterRole -/droptrace',
      'ClusterRoleBinding -/droptrace',
      'ConfigMap droptrace/droptrace-grafana-dashboard',
      'ConfigMap droptrace/droptrace-prometheus-rules',
      'DaemonSet droptrace/droptrace',
      'Namespace -/droptrace',
      'PrometheusRule droptrace/droptrace',
      'ServiceAccount droptrace/droptrace',
    ]);
    const byName = (kind: string, name: string): K8sObject => {
      const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
      if (!o) throw new Error(`${kind}/${name} not rendered`);
      return o;
    };
    // the files byte for byte, under their own names: what a Prometheus rule_files or Grafana
    // provisioning mount expects
    const rulesMap = byName('ConfigMap', 'droptrace-prometheus-rules');
    const dashboardMap = byName('ConfigMap', 'droptrace-grafana-dashboard');
    expect(rulesMap.data).toEqual({ 'droptrace-rules.yml': text(RULES) });
    expect(dashboardMap.data).toEqual({ 'droptrace.json': text(DASHBOARD) });
    for (const m of [rulesMap, dashboardMap]) expect(m.metadata.labels).toEqual({ 'app.kubernetes.io/name': 'droptrace' });
    const rule = byName('PrometheusRule', 'droptrace');
    expect(rule.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(rule.spec).toEqual(rules());
  });
});

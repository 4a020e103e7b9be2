/**
 * The node label on every series (`--node-name`, default $NODE_NAME, else the host name), and
 * the DaemonSet's wiring of it and of the node's own address and /healthz.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { DroptraceError } from '../../src/errors.js';
import type { StreamLine } from '../../src/pipeline/events.js';
import { checkNodeName, defaultNodeName, DropMetrics, parseMetricsAddress } from '../../src/sinks/metrics.js';
import { parseExposition } from './metrics-exposition.js';

const recorded = (): StreamLine[] =>
  readFileSync(join(import.meta.dirname, 'metrics-fixtures', 'stream.ndjson'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as StreamLine);

const fed = (lines: StreamLine[], opts: ConstructorParameters<typeof DropMetrics>[0]) => {
  const m = new DropMetrics(opts);
  for (const l of lines) m.observe(l);
  return m;
};

describe('the node label', () => {
  it('is on every series of a scrape: process metrics, droptrace_info and conntrack_max (registered late) included', async () => {
    // one rule drop names its rule, so droptrace_rule_drops_total has a series too
    const lines = recorded();
    const ruleDrop = lines.find((l) => l.type === 'drop' && l.kind === 'netfilter_rule');
    if (ruleDrop?.type !== 'drop') throw new Error('the fixture has no netfilter_rule drop');
    ruleDrop.rule = { backend: 'nft', family: 'ip', table: 'filter', chain: 'INPUT', position: 1, handle: 2, text: null, comment: 'a/b', certainty: 'exact', candidates: 1 };
    const m = fed(lines, { processMetrics: true, node: 'ip-10-1-2-3.eu-west-1.compute.internal' });
    const e = parseExposition(await m.registry.metrics());
    const keys = Object.keys(e.series);
    // exactly one node label on each, wherever prom-client puts it (histograms: after `le`)
    expect(keys.filter((k) => k.split(/[{,]node="/).length !== 2 || !/[{,]node="ip-10-1-2-3\.eu-west-1\.compute\.internal"[,}]/.test(k))).toEqual([]);
    expect(keys).toEqual(
      expect.arrayContaining([
        'droptrace_info{version="0.1.0",kernel="6.18.44-fc-v669",schema="1",node="ip-10-1-2-3.eu-west-1.compute.internal"}',
        'droptrace_conntrack_max{node="ip-10-1-2-3.eu-west-1.compute.internal"}',
        'droptrace_metrics_errors_total{node="ip-10-1-2-3.eu-west-1.compute.internal"}',
      ]),
    );
    // every family that has series at all has them with the label (none escaped the check above)
    const families = new Set(keys.map((k) => k.split('{')[0]!.replace(/_(bucket|sum|count)$/, '')));
    expect([...families].filter((f) => f.startsWith('droptrace_')).sort()).toEqual(
      Object.keys(e.type)
        .filter((f) => f.startsWith('droptrace_'))
        .sort(),
    );
    expect(keys.some((k) => k.startsWith('process_resident_memory_bytes{'))).toBe(true);
  });

  it('defaults to $NODE_NAME, else the host name', () => {
    expect(defaultNodeName({ NODE_NAME: 'worker-3' }, () => 'h')).toBe('worker-3');
    expect(defaultNodeName({ NODE_NAME: '  ' }, () => 'h')).toBe('h');
    expect(defaultNodeName({}, () => 'h')).toBe('h');
  });

  it.each([
    ['', 'it is empty'],
    ['a\nb', 'it holds a control character'],
    ['x'.repeat(254), 'it is longer than 253 characters'],
  ])('rejects %j in one line, exit 2', (v, why) => {
    const e = (() => {
      try {
        return checkNodeName(v);
      } catch (x) {
        return x as DroptraceError;
      }
    })();
    expect(e).toBeInstanceOf(DroptraceError);
    expect({ exit: (e as DroptraceError).exitCode, line: (e as DroptraceError).line() }).toEqual({
      exit: 2,
      line: `bad --node-name ${JSON.stringify(v)}: ${why} (the node label of every metric)`,
    });
  });
});

describe('deploy/daemonset.yaml', () => {
  interface Container {
    args: string[];
    env: Array<{ name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
    ports: Array<{ name: string; containerPort: number }>;
    livenessProbe: { httpGet: { path: string; port: string } };
  }
  const ds = parseAllDocuments(readFileSync(join(import.meta.dirname, '..', '..', 'deploy', 'daemonset.yaml'), 'utf8'))
    .map((d) => d.toJS() as { kind: string; spec?: { template: { spec: { hostNetwork: boolean; containers: Container[] } } } })
    .find((d) => d.kind === 'DaemonSet')!;
  const c = ds.spec!.template.spec.containers[0]!;
  const fieldOf = (name: string) => c.env.find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath;

  it("serves metrics on the node's own address from the downward API, not 0.0.0.0", () => {
    expect({ hostIP: fieldOf('HOST_IP'), nodeName: fieldOf('NODE_NAME'), hostNetwork: ds.spec!.template.spec.hostNetwork }).toEqual({
      hostIP: 'status.hostIP',
      nodeName: 'spec.nodeName',
      hostNetwork: true,
    });
    const addr = c.args[c.args.indexOf('--metrics') + 1]!;
    expect(addr).toBe('$(HOST_IP):9464');
    // as the kubelet expands it
    expect(parseMetricsAddress(addr.replace('$(HOST_IP)', '10.1.2.3'))).toEqual({ host: '10.1.2.3', port: 9464 });
    // the node label comes from $NODE_NAME (no --node-name that could stay an unexpanded literal)
    expect(c.args).not.toContain('--node-name');
  });

  it('probes liveness on /healthz through the metrics port', () => {
    const port = c.ports.find((p) => p.name === c.livenessProbe.httpGet.port);
    expect({ path: c.livenessProbe.httpGet.path, port: port?.containerPort }).toEqual({ path: '/healthz', port: 9464 });
  });
});

/**
 * The Prometheus exporter, fed recorded NDJSON lines: the exact series it exposes, the bounds on
 * its cardinality, the HTTP endpoint, and `promtool check metrics` when Debian's prometheus
 * package is installed.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DroptraceError } from '../../src/errors.js';
import type { CountersLine, DropEvent, StatsLine, StreamLine } from '../../src/pipeline/events.js';
import { lineProblem } from '../../src/pipeline/line-schema.js';
import { DropMetrics, OVERFLOW, parseMetricsAddress, startMetricsServer, StreamHealth } from '../../src/sinks/metrics.js';
import type { MetricsServer } from '../../src/sinks/metrics.js';
import { NODE, parseExposition, withoutNode } from './metrics-exposition.js';
import type { Exposition } from './metrics-exposition.js';

const FIXTURE = join(import.meta.dirname, 'metrics-fixtures', 'stream.ndjson');
const recorded = (): StreamLine[] =>
  readFileSync(FIXTURE, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as StreamLine);

const fed = (lines: StreamLine[], opts: ConstructorParameters<typeof DropMetrics>[0] = {}) => {
  const m = new DropMetrics({ processMetrics: false, node: NODE, ...opts });
  for (const l of lines) m.observe(l);
  return m;
};
const exposition = async (m: DropMetrics) => withoutNode(parseExposition(await m.registry.metrics()));
const only = (e: Exposition, prefix: string) => Object.fromEntries(Object.entries(e.series).filter(([k]) => k.startsWith(prefix + '{') || k === prefix));

describe('DropMetrics, fed a recorded stream', () => {
  it('is fed lines the stream could have written: every fixture line passes the JSON Schema', () => {
    expect(recorded().map((l) => [l.type, lineProblem(l)]).filter(([, p]) => p !== null)).toEqual([]);
  });

  it('exposes exactly these series', async () => {
    const e = await exposition(fed(recorded()));
    expect(e.series).toEqual({
      'droptrace_drops_total{family="other",kind="no_socket",reason="NO_SOCKET",namespace="",pod=""}': 2,
      'droptrace_drops_total{family="netfilter",kind="netfilter_rule",reason="NETFILTER_DROP",namespace="",pod=""}': 2,
      'droptrace_drops_total{family="other",kind="not_specified",reason="NOT_SPECIFIED",namespace="",pod=""}': 2,
      'droptrace_drops_total{family="martian",kind="martian_source",reason="IP_LOCALNET",namespace="",pod=""}': 3,
      'droptrace_drops_total{family="netfilter",kind="netfilter_rule",reason="NETFILTER_DROP",namespace="shop",pod="web-1"}': 250,
      'droptrace_drops_total{family="netfilter",kind="netfilter_rule",reason="NETFILTER_DROP",namespace="shop",pod="web-2"}': 4,
      'droptrace_drops_total{family="conntrack",kind="conntrack_insert_failed",reason="NETFILTER_DROP",namespace="kube-system",pod="coredns-5d78c9869d-x2x7q"}': 2,
      'droptrace_probe_attached{probe="kfree_skb",hook="tp_btf/kfree_skb"}': 1,
      'droptrace_probe_attached{probe="kfree_skb",hook="tracepoint/skb/kfree_skb"}': 0,
      'droptrace_probe_attached{probe="neigh_create",hook="tracepoint/neigh/neigh_create"}': 1,
      'droptrace_probe_attached{probe="neigh_alloc",hook="fexit/__neigh_create"}': 0,
      'droptrace_probe_attached{probe="neigh_alloc",hook="kretprobe/__neigh_create"}': 0,
      'droptrace_probe_attached{probe="ct_alloc",hook="fexit/__nf_conntrack_alloc"}': 0,
      'droptrace_probe_attached{probe="ct_alloc",hook="kretprobe/__nf_conntrack_alloc"}': 0,
      'droptrace_info{version="0.1.0",kernel="6.18.44-fc-v669",schema="1"}': 1,
      droptrace_metrics_pods: 3,
      'droptrace_neigh_entries{table="arp_cache"}': 12,
      'droptrace_neigh_entries{table="ndisc_cache"}': 13,
      'droptrace_neigh_gc_thresh3{table="arp_cache"}': 1024,
      'droptrace_neigh_gc_thresh3{table="ndisc_cache"}': 1024,
      'droptrace_neigh_fill_ratio{table="arp_cache"}': 0.011719,
      'droptrace_neigh_fill_ratio{table="ndisc_cache"}': 0.012695,
      'droptrace_neigh_table_fulls_total{table="arp_cache"}': 1376,
      'droptrace_neigh_table_fulls_total{table="ndisc_cache"}': 2750,
      droptrace_conntrack_max: 262144,
      'droptrace_conntrack_entries{netns="4026532177"}': 0,
      'droptrace_conntrack_entries{netns="4026532246"}': 0,
      'droptrace_conntrack_fill_ratio{netns="4026532177"}': 0,
      'droptrace_conntrack_fill_ratio{netns="4026532246"}': 0,
      'droptrace_conntrack_stat_total{netns="4026532177",stat="drop"}': 1003,
      'droptrace_conntrack_stat_total{netns="4026532177",stat="early_drop"}': 0,
      'droptrace_conntrack_stat_total{netns="4026532177",stat="insert_failed"}': 1003,
      'droptrace_conntrack_stat_total{netns="4026532177",stat="invalid"}': 5,
      'droptrace_conntrack_stat_total{netns="4026532246",stat="drop"}': 15,
      'droptrace_conntrack_stat_total{netns="4026532246",stat="early_drop"}': 0,
      'droptrace_conntrack_stat_total{netns="4026532246",stat="insert_failed"}': 0,
      'droptrace_conntrack_stat_total{netns="4026532246",stat="invalid"}': 7,
      'droptrace_nic_allowance_exceeded_total{ifname="ens5",netns="4026531833",counter="bw_in_allowance_exceeded"}': 0,
      'droptrace_nic_allowance_exceeded_total{ifname="ens5",netns="4026531833",counter="bw_out_allowance_exceeded"}': 3,
      'droptrace_nic_allowance_exceeded_total{ifname="ens5",netns="4026531833",counter="pps_allowance_exceeded"}': 12,
      'droptrace_nic_allowance_exceeded_total{ifname="ens5",netns="4026531833",counter="conntrack_allowance_exceeded"}': 0,
      'droptrace_nic_allowance_exceeded_total{ifname="ens5",netns="4026531833",counter="linklocal_allowance_exceeded"}': 7,
      'droptrace_nic_conntrack_allowance_available{ifname="ens5",netns="4026531833"}': 136812,
      droptrace_events_total: 280,
      droptrace_folded_drops_total: 0,
      droptrace_unfolded_drops_total: 0,
      'droptrace_events_lost_total{where="ring_buffer"}': 0,
      'droptrace_events_lost_total{where="userspace"}': 0,
      droptrace_decode_errors_total: 0,
      droptrace_enrichment_failures_total: 0,
      droptrace_counters_failures_total: 0,
      droptrace_kernel_drops_total: 280,
      droptrace_metrics_errors_total: 0,
      droptrace_metrics_scrapes_refused_total: 0,
    });
    // every family is described and typed
    for (const name of Object.keys(e.type)) expect(e.help[name], name).toMatch(/\S/);
    expect(e.type).toMatchObject({ droptrace_drops_total: 'counter', droptrace_neigh_fill_ratio: 'gauge', droptrace_probe_attached: 'gauge' });
  });

  it('counts each drop line by its count, so the series sum to the lines exactly', async () => {
    const lines = recorded();
    const want = lines.filter((l): l is DropEvent => l.type === 'drop').reduce((n, l) => n + l.count, 0);
    const got = Object.values(only(await exposition(fed(lines)), 'droptrace_drops_total')).reduce((a, b) => a + b, 0);
    expect(got).toBe(want);
    expect(got).toBe(265);
  });

  it("mirrors each stats line's loss and folding counts, unfolded drops next to them", async () => {
    const st = recorded().filter((l): l is StatsLine => l.type === 'stats').at(-1)!;
    const m = fed(recorded());
    const names = ['droptrace_events_total', 'droptrace_folded_drops_total', 'droptrace_unfolded_drops_total', 'droptrace_kernel_drops_total'];
    const series = async () => Object.fromEntries(Object.entries((await exposition(m)).series).filter(([k]) => names.includes(k) || k.startsWith('droptrace_events_lost_total')));
    m.observe({ ...st, events: 100, folded: 170, unfolded: 30, lost: { ring_buffer: 5, userspace: 7, stdout: 2, total: 14 }, kernel: { ...st.kernel, drops: 300 } });
    expect(await series()).toEqual({
      droptrace_events_total: 100,
      droptrace_folded_drops_total: 170,
      droptrace_unfolded_drops_total: 30,
      'droptrace_events_lost_total{where="ring_buffer"}': 5,
      'droptrace_events_lost_total{where="userspace"}': 7,
      'droptrace_events_lost_total{where="stdout"}': 2,
      droptrace_kernel_drops_total: 300,
    });
    // each stats line holds the totals so far: the counters follow it, never add to it
    m.observe({ ...st, events: 120, folded: 200, unfolded: 31, kernel: { ...st.kernel, drops: 351 } });
    expect(await series()).toMatchObject({ droptrace_events_total: 120, droptrace_folded_drops_total: 200, droptrace_unfolded_drops_total: 31, droptrace_kernel_drops_total: 351 });
  });

  it('never puts a flow, address or port into a label', async () => {
    const text = await fed(recorded()).registry.metrics();
    for (const bad of ['198.18.', 'ff02::', '127.0.0.9', '5301', '41000', 'dport', 'sport', 'src=', 'dst=']) expect(text).not.toContain(bad);
  });

  it('mirrors the cumulative stats counters instead of adding them up again', async () => {
    const lines = recorded();
    const m = fed(lines);
    const stats = lines.filter((l) => l.type === 'stats');
    m.observe(stats[stats.length - 1]!);
    expect(only(await exposition(m), 'droptrace_kernel_drops_total')).toEqual({ droptrace_kernel_drops_total: 280 });
  });

  it('passes promtool check metrics, process metrics included', async (ctx) => {
    if (spawnSync('promtool', ['--version']).status !== 0) {
      console.warn('skipping promtool check: promtool not installed (Debian: apt-get install prometheus)');
      ctx.skip();
    }
    for (const processMetrics of [false, true]) {
      const m = fed(recorded(), { processMetrics });
      const text = await m.registry.metrics();
      const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect({ status: r.status, out: (r.stdout + r.stderr).trim() }).toEqual({ status: 0, out: '' });
      if (processMetrics) expect(text).toMatch(/^process_resident_memory_bytes\{node="node-a"\} \d+/m);
    }
  });
});

describe('bounded cardinality', () => {
  const drop = (namespace: string, name: string, count = 1): DropEvent => ({
    type: 'drop',
    time: '2026-11-24T09:27:09.000000000Z',
    family: 'netfilter',
    kind: 'netfilter_rule',
    reason: 'NETFILTER_DROP',
    location: 'nft_do_chain',
    netns: 4026532388,
    ifname: 'eth0',
    ifindex: 2,
    flow: { proto: 'udp', src: '10.0.0.1', dst: '10.0.0.2', sport: 1000, dport: 53 },
    pod: { namespace, name, uid: `${namespace}-${name}` },
    count,
    explain: '',
    hint: '',
  });
  const pods = (e: Exposition) =>
    Object.fromEntries(
      Object.entries(only(e, 'droptrace_drops_total')).map(([k, v]) => [/namespace="([^"]*)",pod="([^"]*)"/.exec(k)!.slice(1).join('/'), v]),
    );

  it('counts pods past the limit as _overflow', async () => {
    const m = fed([drop('a', 'p1'), drop('a', 'p2', 2), drop('b', 'p3', 3), drop('c', 'p4', 4), drop('a', 'p1', 5)], { podLimit: 2 });
    const e = await exposition(m);
    expect(pods(e)).toEqual({ 'a/p1': 6, 'a/p2': 2, [`${OVERFLOW}/${OVERFLOW}`]: 7 });
    expect(e.series.droptrace_metrics_pods).toBe(2);
  });

  it('gives the slot of a pod idle past podIdleMs to a new pod, removing its series', async () => {
    let now = 0;
    const m = fed([drop('a', 'old'), drop('a', 'busy')], { podLimit: 2, podIdleMs: 60_000, nowMs: () => now });
    now = 30_000;
    m.observe(drop('a', 'busy'));
    m.observe(drop('a', 'new'));
    expect(pods(await exposition(m))).toEqual({ 'a/old': 1, 'a/busy': 2, [`${OVERFLOW}/${OVERFLOW}`]: 1 });
    now = 61_000;
    m.observe(drop('a', 'new', 4));
    expect(pods(await exposition(m))).toEqual({ 'a/busy': 2, 'a/new': 4, [`${OVERFLOW}/${OVERFLOW}`]: 1 });
  });

  it('bounds conntrack netns: the rest is summed (entries, stats) or maxed (fill) under _overflow', async () => {
    const line = (netns: number[]): CountersLine => {
      const base = recorded().filter((l): l is CountersLine => l.type === 'counters')[0]!;
      return {
        ...base,
        conntrack: {
          nf_conntrack_max: 1000,
          netns_total: netns.length,
          netns_idle: 0,
          netns: netns.map((n, i) => ({
            netns: n,
            name: null,
            pid: 1,
            comm: 'x',
            self: false,
            init: false,
            count: 100 * (i + 1),
            fill: (100 * (i + 1)) / 1000,
            stats: { drop: i + 1, early_drop: 0, insert_failed: 0, invalid: 0, found: 99 },
            rates: null,
          })),
        },
      };
    };
    const m = fed([line([11, 22, 33])], { netnsLimit: 1 });
    expect(only(await exposition(m), 'droptrace_conntrack_entries')).toEqual({
      'droptrace_conntrack_entries{netns="11"}': 100,
      'droptrace_conntrack_entries{netns="_overflow"}': 500,
    });
    expect(only(await exposition(m), 'droptrace_conntrack_fill_ratio')).toEqual({
      'droptrace_conntrack_fill_ratio{netns="11"}': 0.1,
      'droptrace_conntrack_fill_ratio{netns="_overflow"}': 0.3,
    });
    expect((await exposition(m)).series['droptrace_conntrack_stat_total{netns="_overflow",stat="drop"}']).toBe(5);
    // netns 11 went away: its slot goes to the next one
    m.observe(line([22, 33]));
    expect(only(await exposition(m), 'droptrace_conntrack_entries')).toEqual({
      'droptrace_conntrack_entries{netns="22"}': 100,
      'droptrace_conntrack_entries{netns="_overflow"}': 200,
    });
    // conntrack unloaded: no conntrack series at all
    m.observe({ ...line([]), conntrack: null });
    const e = await exposition(m);
    expect(Object.keys(e.series).filter((k) => k.startsWith('droptrace_conntrack'))).toEqual([]);
  });

  it('follows a probe that waited for its module: the gauge and /healthz change with the stats line', async () => {
    const start = recorded().find((l) => l.type === 'start')!;
    const stats = recorded().find((l) => l.type === 'stats')!;
    const late = {
      ...start,
      probes: [
        { probe: 'kfree_skb', hook: 'tp_btf/kfree_skb', state: 'attached' },
        { probe: 'ct_alloc', hook: 'fexit/__nf_conntrack_alloc', state: 'waiting', why: 'waiting for module nf_conntrack' },
        { probe: 'ct_alloc', hook: 'kretprobe/__nf_conntrack_alloc', state: 'waiting', why: 'waiting for module nf_conntrack' },
      ],
    } as StreamLine;
    const m = fed([late]);
    const h = new StreamHealth();
    h.observe(late);
    const gauge = async () => only(await exposition(m), 'droptrace_probe_attached');
    expect(await gauge()).toEqual({
      'droptrace_probe_attached{probe="kfree_skb",hook="tp_btf/kfree_skb"}': 1,
      'droptrace_probe_attached{probe="ct_alloc",hook="fexit/__nf_conntrack_alloc"}': 0,
      'droptrace_probe_attached{probe="ct_alloc",hook="kretprobe/__nf_conntrack_alloc"}': 0,
    });
    expect(h.get()).toEqual({ ok: true, reason: 'ok: 1 of 2 probes attached (kfree_skb)' });
    // nf_conntrack loaded: the stats line says which hook attached
    const attached = { ...stats, probes: [{ probe: 'kfree_skb', state: 'attached', hook: 'tp_btf/kfree_skb' }, { probe: 'ct_alloc', state: 'attached', hook: 'kretprobe/__nf_conntrack_alloc' }] } as StreamLine;
    m.observe(attached);
    h.observe(attached);
    expect(await gauge()).toEqual({
      'droptrace_probe_attached{probe="kfree_skb",hook="tp_btf/kfree_skb"}': 1,
      'droptrace_probe_attached{probe="ct_alloc",hook="fexit/__nf_conntrack_alloc"}': 0,
      'droptrace_probe_attached{probe="ct_alloc",hook="kretprobe/__nf_conntrack_alloc"}': 1,
    });
    expect(h.get()).toEqual({ ok: true, reason: 'ok: 2 of 2 probes attached (kfree_skb, ct_alloc)' });
  });

  it('ignores malformed lines instead of throwing into the stream', async () => {
    const m = fed(recorded());
    const before = await m.registry.metrics();
    const junk = [
      { type: 'drop', count: 'many' },
      { type: 'drop', count: -5, family: 'x', kind: 'y', reason: 'z', pod: null },
      { type: 'drop', count: Infinity, family: 'x', kind: 'y', reason: 'z', pod: null },
      { type: 'stats', events: 'x', lost: null, kernel: null },
      { type: 'counters', neigh: null, conntrack: { netns: null }, nic: [{ ifname: 'x', netns: null, allowance: { a_exceeded: -1 } }] },
      { type: 'start', probes: null },
      { type: 'nonsense' },
    ];
    for (const j of junk) expect(() => m.observe(j as unknown as StreamLine)).not.toThrow();
    // the malformed counters line may clear table gauges (it is the latest sample), never the drops
    const after = withoutNode(parseExposition(await m.registry.metrics()));
    expect(only(after, 'droptrace_drops_total')).toEqual(only(withoutNode(parseExposition(before)), 'droptrace_drops_total'));
    // and what could not be taken in is counted, not swallowed
    expect(after.series.droptrace_metrics_errors_total).toBeGreaterThan(0);
  });
});

describe('parseMetricsAddress', () => {
  it.each([
    ['9464', '127.0.0.1', 9464],
    ['127.0.0.1:9464', '127.0.0.1', 9464],
    ['0.0.0.0:9464', '0.0.0.0', 9464],
    ['[::]:9464', '::', 9464],
    ['[::1]:80', '::1', 80],
    ['localhost:9464', 'localhost', 9464],
    ['0', '127.0.0.1', 0],
  ])('%s', (v, host, port) => {
    expect(parseMetricsAddress(v)).toEqual({ host, port });
  });

  it.each([
    ['', 'port "" is not a number from 0 to 65535'],
    ['http', 'port "http" is not a number from 0 to 65535'],
    ['65536', 'port "65536" is not a number from 0 to 65535'],
    [':9464', 'no address before ":" (give 0.0.0.0 to listen on every interface)'],
    ['::1:9464', 'an IPv6 address needs brackets'],
    ['[10.0.0.1]:9464', '10.0.0.1 between the brackets is not an IPv6 address'],
    ['example.com:9464', 'example.com is not an IPv4 address'],
    ['1.2.3.4:', 'port "" is not a number from 0 to 65535'],
    ['1.2.3.4:-1', 'port "-1" is not a number from 0 to 65535'],
    ['[::1]', 'an IPv6 address goes in brackets followed by :PORT'],
    ['[::1]9464', 'an IPv6 address goes in brackets followed by :PORT'],
  ])('rejects %j in one line, exit 2', (v, why) => {
    let err: unknown;
    try {
      parseMetricsAddress(v);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DroptraceError);
    const e = err as DroptraceError;
    expect({ stage: e.stage, exitCode: e.exitCode, line: e.line() }).toEqual({
      stage: 'usage',
      exitCode: 2,
      line: `bad --metrics address "${v}": ${why} (expected [ADDR:]PORT, e.g. 9464, 127.0.0.1:9464, 0.0.0.0:9464 or [::]:9464)`,
    });
  });
});

describe('startMetricsServer', () => {
  let server: MetricsServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('serves the registry on /metrics, 404 elsewhere, 405 for POST, no body for HEAD', async () => {
    const m = fed(recorded());
    server = await startMetricsServer('127.0.0.1:0', m.registry);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/metrics`);
    const r = await fetch(server.url);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(await r.text()).toBe(await m.registry.metrics());
    const base = `http://127.0.0.1:${server.port}`;
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/metrics?x=1`)).status).toBe(200);
    expect((await fetch(server.url, { method: 'POST' })).status).toBe(405);
    const head = await fetch(server.url, { method: 'HEAD' });
    expect({ status: head.status, body: await head.text() }).toEqual({ status: 200, body: '' });
  });

  it('listens on IPv6 too', async (ctx) => {
    try {
      server = await startMetricsServer('[::1]:0', fed([]).registry);
    } catch (e) {
      console.warn(`skipping IPv6 listen: ${(e as Error).message}`);
      ctx.skip();
    }
    expect(server!.url).toBe(`http://[::1]:${server!.port}/metrics`);
    expect((await fetch(server!.url)).status).toBe(200);
  });

  it('a port in use is one line, exit 1; an address this machine lacks is exit 2', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const e = await startMetricsServer(`127.0.0.1:${port}`, fed([]).registry).then(
        () => null,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(DroptraceError);
      expect({ exit: (e as DroptraceError).exitCode, line: (e as DroptraceError).line() }).toEqual({
        exit: 1,
        line: `cannot serve metrics on 127.0.0.1:${port}: the port is in use (pick another port with --metrics; ss -ltnp shows what listens there)`,
      });
    } finally {
      blocker.close();
    }
    // 192.0.2.0/24 is TEST-NET-1: never an address of this machine
    const e = await startMetricsServer('192.0.2.7:0', fed([]).registry).then(
      () => null,
      (x: unknown) => x,
    );
    expect({ exit: (e as DroptraceError).exitCode, code: (e as DroptraceError).code }).toEqual({ exit: 2, code: 'E_METRICS_ADDR' });
  });
});

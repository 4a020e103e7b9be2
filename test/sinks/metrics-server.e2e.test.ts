/**
 * The metrics server over real HTTP on 127.0.0.1 (an ephemeral port): a flood of scrapes never
 * starves /healthz, at most one render is in flight, and /healthz follows the stream's lines
 * (runStream with the FakeTracer: attached, stopped, broken). The last part runs the real CLI
 * as root: the node label and /healthz of a live `droptrace stream --metrics`.
 * Nothing here waits on a clock: each step waits for the server to have seen the requests.
 */
import { request } from 'node:http';
import { createServer } from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { DroptraceError } from '../../src/errors.js';
import type { StreamLine } from '../../src/pipeline/events.js';
import { Symbolizer } from '../../src/pipeline/kallsyms.js';
import { ReasonNames } from '../../src/pipeline/reasons.js';
import { runStream } from '../../src/pipeline/stream.js';
import { DropMetrics, startMetricsServer, StreamHealth } from '../../src/sinks/metrics.js';
import type { Exposition, MetricsServer } from '../../src/sinks/metrics-server.js';
import { FakeBinding, GOLDEN, GOLDEN_RECORDS } from '../helpers/fake-tracer.js';
import type { FakeScript } from '../helpers/fake-tracer.js';
import { startStream } from '../helpers/stream.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One GET on a connection of its own (no pooling: each scrape holds its own socket, as a flood's would). */
function get(port: number, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** waits, turn by turn of the event loop, until the server has seen what `pred` asks for */
async function until(pred: () => boolean): Promise<void> {
  while (!pred()) await nextTurn();
}

/** A registry whose render ends only when the test says so. */
function heldRegistry(): Exposition & { calls: number; release(text: string): void } {
  let release!: (text: string) => void;
  const pending = new Promise<string>((r) => (release = r));
  const reg = {
    calls: 0,
    contentType: 'text/plain; version=0.0.4; charset=utf-8' as const,
    metrics: () => {
      reg.calls++;
      return pending;
    },
    release: (text: string) => release(text),
  };
  return reg;
}

let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('a flood of scrapes', () => {
  it('shares one render among the waiting scrapes, refuses the rest with 503, and /healthz answers meanwhile', async () => {
    const reg = heldRegistry();
    let refused = 0;
    server = await startMetricsServer('127.0.0.1:0', reg, { maxWaiting: 16, health: () => ({ ok: true, reason: 'ok: held' }), onRefused: () => refused++ });
    const port = server.port;
    const scrapes = Array.from({ length: 40 }, () => get(port, '/metrics'));
    // every scrape has reached the server: 16 wait for the render, 24 were turned away
    await until(() => server!.scrapes.waiting + server!.scrapes.refused === 40);
    expect({ ...server.scrapes, calls: reg.calls, refused }).toEqual({ waiting: 16, renders: 1, refused: 24, calls: 1 });

    // the render is still held: /healthz is answered before any scrape got its metrics
    const served: number[] = [];
    for (const p of scrapes) void p.then((r) => r.status === 200 && served.push(r.status));
    const h = await get(port, '/healthz');
    expect({ status: h.status, body: h.body, served, waiting: server.scrapes.waiting }).toEqual({ status: 200, body: 'ok: held\n', served: [], waiting: 16 });

    reg.release('x_total 1\n');
    const replies = await Promise.all(scrapes);
    const byStatus = (s: number) => replies.filter((r) => r.status === s);
    expect(replies.length).toBe(40);
    expect(byStatus(200).map((r) => r.body)).toEqual(Array(16).fill('x_total 1\n'));
    expect(byStatus(503).map((r) => [r.headers['retry-after'], r.body])).toEqual(Array(24).fill(['1', 'droptrace: too many scrapes at once, retry in a second\n']));
    expect(server.scrapes).toEqual({ waiting: 0, renders: 1, refused: 24 });

    // the next scrape starts a new render: what it gets is never older than itself
    const again = get(port, '/metrics');
    await until(() => reg.calls === 2);
    expect((await again).status).toBe(200);
  });

  it('renders a real registry at most once at a time, and counts refused scrapes in it', async () => {
    const m = new DropMetrics({ node: 'n1' });
    const real = m.registry.metrics.bind(m.registry);
    let inFlight = 0;
    let most = 0;
    const reg: Exposition = {
      contentType: m.registry.contentType,
      metrics: async () => {
        most = Math.max(most, ++inFlight);
        try {
          return await real();
        } finally {
          inFlight--;
        }
      },
    };
    server = await startMetricsServer('127.0.0.1:0', reg, { maxWaiting: 4, onRefused: () => m.scrapeRefused() });
    const replies = await Promise.all(Array.from({ length: 30 }, () => get(server!.port, '/metrics')));
    expect(most).toBe(1);
    const ok = replies.filter((r) => r.status === 200);
    const refused = replies.filter((r) => r.status === 503).length;
    expect(ok.length + refused).toBe(30);
    expect(ok.length).toBeGreaterThanOrEqual(4);
    expect(refused).toBe(server.scrapes.refused);
    for (const r of ok) expect(r.body).toMatch(/^droptrace_metrics_errors_total\{node="n1"\} 0$/m);
    expect(await m.registry.metrics()).toContain(`droptrace_metrics_scrapes_refused_total{node="n1"} ${refused}\n`);
  });
});

describe('/healthz follows the stream', () => {
  const reasons = new ReasonNames(GOLDEN.reasons);
  const run = (script: FakeScript, health: StreamHealth, metrics: DropMetrics) => {
    const ac = new AbortController();
    let started!: () => void;
    const start = new Promise<void>((r) => (started = r));
    const result = runStream({
      native: new FakeBinding(script),
      tracer: {},
      reasons,
      symbols: new Symbolizer(''),
      sysctl: () => null,
      meta: { version: 'test', node: 'n', kernel: 'k' },
      emit: (l: StreamLine) => {
        metrics.observe(l);
        health.observe(l);
        if (l.type === 'start') started();
      },
      statsIntervalMs: 3_600_000,
      foldIntervalMs: 3_600_000,
      signal: ac.signal,
    });
    return { ac, start, result };
  };
  const healthz = async () => {
    const r = await get(server!.port, '/healthz');
    return { status: r.status, body: r.body };
  };

  it('starting → ok once probes are attached → 503 when the stream is stopped', async () => {
    const health = new StreamHealth();
    const metrics = new DropMetrics({ node: 'n1', processMetrics: false });
    server = await startMetricsServer('127.0.0.1:0', metrics.registry, { health: () => health.get() });
    expect(await healthz()).toEqual({ status: 503, body: 'starting: probes not attached yet\n' });
    const s = run(
      {
        batches: GOLDEN_RECORDS,
        probes: [
          { probe: 'kfree_skb', hook: 'tp_btf/kfree_skb', state: 'attached' },
          { probe: 'kfree_skb', hook: 'tracepoint/skb/kfree_skb', state: 'standby' },
          { probe: 'neigh_alloc', hook: 'fexit/__neigh_create', state: 'unavailable', why: 'no fentry here' },
        ],
      },
      health,
      metrics,
    );
    await s.start;
    expect(await healthz()).toEqual({ status: 200, body: 'ok: 1 of 2 probes attached (kfree_skb)\n' });
    s.ac.abort();
    await s.result;
    expect(await healthz()).toEqual({ status: 503, body: 'stream stopped\n' });
  });

  it('503 with the reason once the ring reader has failed', async () => {
    const health = new StreamHealth();
    const metrics = new DropMetrics({ node: 'n1', processMetrics: false });
    server = await startMetricsServer('127.0.0.1:0', metrics.registry, { health: () => health.get() });
    const s = run(
      { batches: GOLDEN_RECORDS, pollError: { afterBatches: 2, error: { code: 'E_POLL', message: 'ring_buffer__poll failed: Bad file descriptor', errno: 9 } } },
      health,
      metrics,
    );
    await s.start;
    const err = await s.result.then(
      () => null,
      (e: unknown) => e as DroptraceError,
    );
    // the final stats line alone already says so
    expect(await healthz()).toEqual({ status: 503, body: 'stream failed (1 failure(s)), ring reader stopped\n' });
    // the CLI hands over the error line it writes to stderr
    health.fail(err!.line());
    expect(await healthz()).toEqual({ status: 503, body: 'stream failed: the tracer stopped: ring_buffer__poll failed: Bad file descriptor (errno 9)\n' });
    // /metrics still serves what was counted
    expect((await get(server.port, '/metrics')).body).toContain('droptrace_kernel_drops_total{node="n1"} 2\n');
  });
});

/** a port free a moment ago (the CLI gets an address, not a port 0 it would have to report) */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('skipping the live droptrace stream --metrics test: it needs root (it attaches BPF programs)');

describe.skipIf(!isRoot)('droptrace stream --metrics --node-name (root, the real kernel)', () => {
  it('labels every series with the node, says ok on /healthz while attached, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const s = startStream(['--metrics', `127.0.0.1:${port}`, '--node-name', 'e2e-node-1', '--counters-interval', '0', '--no-pod-discovery']);
    try {
      const start = await s.ready;
      // the NDJSON names the same node as the metrics
      expect((start as { node?: string }).node).toBe('e2e-node-1');
      const h = await get(port, '/healthz');
      expect(h.status).toBe(200);
      expect(h.body).toMatch(/^ok: \d+ of \d+ probes attached \([a-z_, ]+\)\n$/);
      const text = (await get(port, '/metrics')).body;
      const series = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
      // exactly one node label on each, wherever prom-client puts it (histograms: after `le`)
      expect(series.filter((l) => l.split(/[{,]node="/).length !== 2 || !/[{,]node="e2e-node-1"[,}]/.test(l))).toEqual([]);
      expect(series.some((l) => l.startsWith('droptrace_info{'))).toBe(true);
    } finally {
      expect(await s.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    }
  });

});

// bad input fails before anything is attached: no root needed
describe('droptrace stream with bad --metrics or --node-name input', () => {
  it('an address that is not this machine\'s, an unexpanded $(HOST_IP), a bad --node-name: one line and exit 2', async () => {
    for (const [args, line] of [
      [['--metrics', '192.0.2.7:9464'], 'droptrace: cannot serve metrics on 192.0.2.7:9464: this machine has no such address (use 127.0.0.1, 0.0.0.0 or one of the addresses ip -brief addr shows)\n'],
      [
        ['--metrics', '$(HOST_IP):9464'],
        'droptrace: bad --metrics address "$(HOST_IP):9464": $(HOST_IP) was not expanded: the container has no such variable (deploy/daemonset.yaml sets HOST_IP from status.hostIP) (expected [ADDR:]PORT, e.g. 9464, 127.0.0.1:9464, 0.0.0.0:9464 or [::]:9464)\n',
      ],
      [['--metrics', '127.0.0.1:0', '--node-name', ' '], 'droptrace: bad --node-name " ": it is empty (the node label of every metric)\n'],
    ] as Array<[string[], string]>) {
      const s = startStream(args);
      // it never gets to a start line: that is the point
      s.ready.catch(() => {});
      expect({ exit: await s.exited, stderr: s.stderr(), lines: s.lines }).toEqual({ exit: { code: 2, signal: null }, stderr: line, lines: [] });
    }
  });
});

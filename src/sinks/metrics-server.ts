/**
 * The HTTP side of `--metrics [ADDR:]PORT`: the address as the user wrote it, and a server that
 * exposes a Prometheus registry on /metrics (the registry itself: src/sinks/metrics.ts) and the
 * stream's health on /healthz (the DaemonSet's liveness probe).
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import { DroptraceError } from '../errors.js';
import type { StartLine, StreamLine } from '../pipeline/events.js';
import { applyProbeStates } from '../pipeline/late-probes.js';

export interface MetricsAddress {
  host: string;
  port: number;
}

const DEFAULT_HOST = '127.0.0.1';

/**
 * The name every series carries as `node="..."` (`--node-name`): $NODE_NAME (the DaemonSet sets
 * it from spec.nodeName, the name Kubernetes and kube-state-metrics use), else the host name.
 * Prometheus' own `instance` label would be the scrape address, which is not the node's name.
 */
export function defaultNodeName(env: NodeJS.ProcessEnv = process.env, host: () => string = hostname): string {
  const fromEnv = env.NODE_NAME?.trim();
  return fromEnv ? fromEnv : host();
}

/** A node name fit for a label value: non-empty, one line, at most 253 characters (a DNS name's). */
export function checkNodeName(v: string): string {
  const s = v.trim();
  const why = s === '' ? 'it is empty' : s.length > 253 ? 'it is longer than 253 characters' : /[\x00-\x1f\x7f]/.test(s) ? 'it holds a control character' : null;
  if (why) throw new DroptraceError('E_NODE_NAME', 'usage', `bad --node-name ${JSON.stringify(v)}: ${why} (the node label of every metric)`);
  return s;
}

function badAddress(v: string, why: string): DroptraceError {
  return new DroptraceError(
    'E_METRICS_ADDR',
    'usage',
    `bad --metrics address "${v}": ${why} (expected [ADDR:]PORT, e.g. 9464, 127.0.0.1:9464, 0.0.0.0:9464 or [::]:9464)`,
  );
}

/** `[ADDR:]PORT` → host and port; the address defaults to 127.0.0.1 (not every interface). */
export function parseMetricsAddress(v: string): MetricsAddress {
  const s = v.trim();
  let host = DEFAULT_HOST;
  let port = s;
  const m = /^\[([^\]]*)\]:([^:]*)$/.exec(s);
  if (!m && s.startsWith('[')) throw badAddress(v, 'an IPv6 address goes in brackets followed by :PORT');
  if (m) {
    host = m[1]!;
    port = m[2]!;
    if (!isIPv6(host)) throw badAddress(v, `${host || 'nothing'} between the brackets is not an IPv6 address`);
  } else if (s.includes(':')) {
    const i = s.lastIndexOf(':');
    host = s.slice(0, i);
    port = s.slice(i + 1);
    if (host === '') throw badAddress(v, 'no address before ":" (give 0.0.0.0 to listen on every interface)');
    if (host.includes(':')) throw badAddress(v, 'an IPv6 address needs brackets');
    // kubelet leaves $(VAR) as written when the container has no such variable
    if (host.startsWith('$(')) throw badAddress(v, `${host} was not expanded: the container has no such variable (deploy/daemonset.yaml sets HOST_IP from status.hostIP)`);
    if (!isIPv4(host) && host !== 'localhost') throw badAddress(v, `${host} is not an IPv4 address`);
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw badAddress(v, `port "${port}" is not a number from 0 to 65535`);
  return { host, port: Number(port) };
}

/** What /healthz says: 200 with `reason` when ok, else 503 with it. One line. */
export interface Health {
  ok: boolean;
  reason: string;
}

/**
 * The liveness of a stream, read from the lines it writes (the same ones the metrics take in), so
 * /healthz needs neither the registry nor the tracer. Healthy from the start line (at least one
 * probe attached) until the stream ends: a final stats line means the ring reader has stopped
 * (a signal, or a failure: then `failures` > 0), and `fail()` gives the error that ended it.
 * Before the start line it is "starting", which the probe's initialDelaySeconds allows for.
 * A stalled stdout reader does not make it unhealthy: a restart would not make the reader read.
 */
export class StreamHealth {
  private state: Health = { ok: false, reason: 'starting: probes not attached yet' };
  /** the start line's hooks, updated by the stats lines' probes (a late module's probe attaching) */
  private hooks: Readonly<StartLine['probes']> = [];

  observe(line: StreamLine): void {
    if (line.type === 'start') {
      this.hooks = line.probes;
      this.state = this.fromHooks();
    } else if (line.type === 'stats' && (line.final || (line.failures ?? 0) > 0)) {
      // the first failure ends the stream; fail() may already have given its reason
      if (this.state.ok) this.state = { ok: false, reason: line.failures ? `stream failed (${line.failures} failure(s)), ring reader stopped` : 'stream stopped' };
    } else if (line.type === 'stats' && line.probes && this.state.ok) {
      const hooks = applyProbeStates(this.hooks, line.probes);
      if (hooks !== this.hooks) {
        this.hooks = hooks;
        this.state = this.fromHooks();
      }
    }
  }

  private fromHooks(): Health {
    const all = new Set(this.hooks.map((p) => p.probe));
    const attached = [...new Set(this.hooks.filter((p) => p.state === 'attached').map((p) => p.probe))];
    return attached.length
      ? { ok: true, reason: `ok: ${attached.length} of ${all.size} probes attached (${attached.join(', ')})` }
      : { ok: false, reason: 'no probe attached' };
  }

  /** the error that ended the stream, as the one line droptrace also writes to stderr */
  fail(reason: string): void {
    this.state = { ok: false, reason: `stream failed: ${reason}` };
  }

  get(): Health {
    return this.state;
  }
}

/** What the server needs of a registry: one render of the exposition (a seam for tests). */
export type Exposition = Pick<Registry, 'metrics' | 'contentType'>;

export interface MetricsServerOptions {
  /** what /healthz says (default: always ok, for a registry without a stream behind it) */
  health?: () => Health;
  /** scrapes that may wait for the one render in flight, the one that started it included (default 16) */
  maxWaiting?: number;
  /** a scrape was refused with 503 (counted in droptrace_metrics_scrapes_refused_total) */
  onRefused?: () => void;
}

export interface MetricsServer {
  /** http://host:port/metrics, with the port actually bound (port 0 picks a free one) */
  url: string;
  host: string;
  port: number;
  /** scrapes waiting for a render now, renders begun, scrapes refused (tests, counters) */
  readonly scrapes: { waiting: number; renders: number; refused: number };
  close(): Promise<void>;
}

const DEFAULT_MAX_WAITING = 16;

/**
 * Serves `registry` on http://ADDR:PORT/metrics and the stream's health on /healthz. Rejects
 * with a DroptraceError when the address is malformed or not this machine's (exit 2) or cannot
 * be bound otherwise (exit 1), before anything is traced.
 *
 * A flood of scrapers cannot starve /healthz: at most one render of the registry is in flight,
 * and a scrape that arrives meanwhile gets that render's text (begun before it arrived, so at
 * most one render old) instead of starting another; past `maxWaiting` waiting scrapes the rest
 * get 503 with Retry-After at once and their connection closed. /healthz never renders: it
 * reads one field, so it is answered whenever the event loop turns, and the connection cap
 * leaves room for it above the waiting scrapes.
 */
export async function startMetricsServer(addr: string, registry: Exposition, opts: MetricsServerOptions = {}): Promise<MetricsServer> {
  const { host, port } = parseMetricsAddress(addr);
  const health = opts.health ?? (() => ({ ok: true, reason: 'ok' }));
  const maxWaiting = opts.maxWaiting ?? DEFAULT_MAX_WAITING;
  const scrapes = { waiting: 0, renders: 0, refused: 0 };
  let inFlight: Promise<string> | null = null;
  const render = (): Promise<string> => {
    if (!inFlight) {
      scrapes.renders++;
      const p = registry.metrics().finally(() => {
        if (inFlight === p) inFlight = null;
      });
      inFlight = p;
    }
    return inFlight;
  };

  const metrics = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (scrapes.waiting >= maxWaiting) {
      scrapes.refused++;
      opts.onRefused?.();
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1', connection: 'close' });
      res.end('droptrace: too many scrapes at once, retry in a second\n');
      return;
    }
    scrapes.waiting++;
    let body: string;
    try {
      body = await render();
    } finally {
      scrapes.waiting--;
    }
    res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' && path !== '/healthz') {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('droptrace: metrics are on /metrics, health on /healthz\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' });
      res.end();
      return;
    }
    if (path === '/healthz') {
      const h = health();
      const body = `${h.reason}\n`;
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    metrics(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('droptrace: collecting metrics failed\n');
    });
  });
  // A scraper that hangs must not pile up sockets in a long-running agent; the cap is well above
  // the waiting scrapes, so a probe's connection still gets in while they wait.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.maxConnections = maxWaiting + 48;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(listenError(addr, e)));
    server.listen({ host, port, exclusive: true }, () => resolve());
  });
  // Never keep the process alive on its own: the stream decides when droptrace ends.
  server.unref();
  const bound = server.address();
  const boundPort = typeof bound === 'object' && bound !== null ? bound.port : port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${boundPort}/metrics`,
    host,
    port: boundPort,
    scrapes,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function listenError(addr: string, e: NodeJS.ErrnoException): DroptraceError {
  switch (e.code) {
    case 'EADDRINUSE':
      return new DroptraceError('E_METRICS_LISTEN', 'runtime', `cannot serve metrics on ${addr}: the port is in use`, {
        hint: 'pick another port with --metrics; ss -ltnp shows what listens there',
      });
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new DroptraceError('E_METRICS_ADDR', 'usage', `cannot serve metrics on ${addr}: this machine has no such address`, {
        hint: 'use 127.0.0.1, 0.0.0.0 or one of the addresses ip -brief addr shows',
      });
    case 'EACCES':
      return new DroptraceError('E_METRICS_LISTEN', 'permissions', `cannot serve metrics on ${addr}: ports below 1024 need CAP_NET_BIND_SERVICE`, {
        hint: 'use a port such as 9464',
      });
    default:
      return new DroptraceError('E_METRICS_LISTEN', 'runtime', `cannot serve metrics on ${addr}: ${e.code ?? e.message}`);
  }
}

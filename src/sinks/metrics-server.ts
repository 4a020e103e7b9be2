/**
 * The HTTP side of `--metrics [ADDR:]PORT`: the address as the user wrote it, and a server that
 * exposes a Prometheus registry on /metrics (the registry itself: src/sinks/metrics.ts).
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import { DroptraceError } from '../errors.js';

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
    if (!isIPv4(host) && host !== 'localhost') throw badAddress(v, `${host} is not an IPv4 address`);
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw badAddress(v, `port "${port}" is not a number from 0 to 65535`);
  return { host, port: Number(port) };
}

export interface MetricsServer {
  /** http://host:port/metrics, with the port actually bound (port 0 picks a free one) */
  url: string;
  host: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Serves `registry` on http://ADDR:PORT/metrics. Rejects with a DroptraceError when the address
 * is malformed (exit 2) or cannot be bound (exit 1), before anything is traced.
 */
export async function startMetricsServer(addr: string, registry: Registry): Promise<MetricsServer> {
  const { host, port } = parseMetricsAddress(addr);
  const server = createServer((req, res) => {
    handle(req, res, registry).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('droptrace: collecting metrics failed\n');
    });
  });
  // A scraper that hangs must not pile up sockets in a long-running agent.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.maxConnections = 32;
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
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, registry: Registry): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/metrics') {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('droptrace: metrics are on /metrics\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' });
    res.end();
    return;
  }
  const body = await registry.metrics();
  res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
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

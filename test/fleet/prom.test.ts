/**
 * The Prometheus client against local HTTP servers that misbehave the ways a real one does
 * (refused, silent, not Prometheus, an API error), and `stream --prometheus` on top of it:
 * every failure is one line, the CLI's exit codes are 2 for a bad URL and 1 for a server that
 * does not answer.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { DroptraceError } from '../../src/errors.js';
import { httpQuery, parsePrometheusUrl, PromError, showUrl } from '../../src/fleet/prom.js';
import { fleetStream } from '../../src/fleet/stream.js';
import { freePort } from '../helpers/prometheus.js';
import { CLI } from '../helpers/stream.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** A server on 127.0.0.1 answering with `handle`; the requests it got. */
async function serve(handle: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<{ url: URL; got: Array<{ path: string; body: string }> }> {
  const got: Array<{ path: string; body: string }> = [];
  const s = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      got.push({ path: req.url ?? '', body });
      handle(req, body, res);
    });
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const a = s.address() as { port: number };
  return { url: parsePrometheusUrl(`http://127.0.0.1:${a.port}/prom`), got };
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

describe('parsePrometheusUrl', () => {
  it('takes http(s) base URLs, with a path prefix', () => {
    expect(showUrl(parsePrometheusUrl('http://prometheus:9090'))).toBe('http://prometheus:9090');
    expect(parsePrometheusUrl('https://mon.example/prometheus').href).toBe('https://mon.example/prometheus/');
  });

  it('refuses anything else as a usage error (exit 2), in one line', () => {
    for (const bad of ['prometheus:9090', 'ftp://x', 'http://', 'http://x/?q=1', 'not a url']) {
      let e: unknown;
      try {
        parsePrometheusUrl(bad);
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(DroptraceError);
      expect((e as DroptraceError).exitCode).toBe(2);
      expect((e as DroptraceError).line()).toMatch(/^--prometheus wants .* got "/);
    }
  });
});

describe('httpQuery', () => {
  it('POSTs the query, its time and a server-side timeout under the base path, and reads the vector', async () => {
    const { url, got } = await serve((_q, _b, res) => json(res, 200, { status: 'success', data: { resultType: 'vector', result: [{ metric: { node: 'n1' }, value: [1, '42'] }] } }));
    expect(await httpQuery(url, 3000)('up', 1234.5)).toEqual([{ metric: { node: 'n1' }, value: 42 }]);
    expect(got).toEqual([{ path: '/prom/api/v1/query', body: 'query=up&time=1234.500&timeout=3s' }]);
  });

  it('says "connection refused" when nothing listens', async () => {
    const url = parsePrometheusUrl(`http://127.0.0.1:${await freePort()}`);
    await expect(httpQuery(url)('up', 0)).rejects.toThrow(new PromError('connection refused'));
  });

  it('gives up on a server that does not answer within the deadline', async () => {
    const { url } = await serve(() => undefined);
    await expect(httpQuery(url, 300)('up', 0)).rejects.toThrow(new PromError('no answer within 0.3s'));
  });

  it('names a server that is not Prometheus, and passes on the API\'s own error', async () => {
    const html = await serve((_q, _b, res) => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<html>not found</html>');
    });
    await expect(httpQuery(html.url)('up', 0)).rejects.toThrow(new PromError(`HTTP 404: not a Prometheus API answer (is ${showUrl(html.url)} a Prometheus server?)`));
    const bad = await serve((_q, _b, res) => json(res, 400, { status: 'error', errorType: 'bad_data', error: 'invalid parameter "query": 1:5: parse error' }));
    await expect(httpQuery(bad.url)('sum(', 0)).rejects.toThrow(new PromError('HTTP 400: bad_data: invalid parameter "query": 1:5: parse error'));
    const matrix = await serve((_q, _b, res) => json(res, 200, { status: 'success', data: { resultType: 'matrix', result: [] } }));
    await expect(httpQuery(matrix.url)('up[1m]', 0)).rejects.toThrow(new PromError('expected an instant vector, got matrix'));
  });
});

describe('fleetStream', () => {
  it('turns a failure into one line naming the server (exit 1)', async () => {
    const url = parsePrometheusUrl(`http://127.0.0.1:${await freePort()}`);
    const e = await fleetStream({ url, sinceS: 3600 }, () => undefined).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DroptraceError);
    expect([(e as DroptraceError).line(), (e as DroptraceError).exitCode]).toEqual([`prometheus ${showUrl(url)}: connection refused`, 1]);
  });

  it('fails when the server has no droptrace series at all', async () => {
    const { url } = await serve((_q, _b, res) => json(res, 200, { status: 'success', data: { resultType: 'vector', result: [] } }));
    const e = (await fleetStream({ url, sinceS: 60 }, () => undefined).catch((x: unknown) => x)) as DroptraceError;
    expect([e.code, e.line(), e.exitCode]).toEqual(['E_NO_NODES', `prometheus ${showUrl(url)} has no droptrace series (is it scraping droptrace stream --metrics on every node?)`, 1]);
  });
});

describe.skipIf(!existsSync(CLI))('droptrace stream --prometheus (the built CLI)', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

  it('exits 2 with one line for a bad URL, a bad --since or a tracing flag next to --prometheus', () => {
    for (const [args, line] of [
      [['--prometheus', 'prometheus:9090'], 'droptrace: --prometheus wants an http:// or https:// URL such as http://prometheus:9090, got "prometheus:9090"\n'],
      [['--prometheus', 'http://p:9090', '--since', '1y'], `droptrace: option '--since <duration>' argument '1y' is invalid. --since wants a duration such as 90s, 30m, 1h or 2d (at most a year), got "1y"\n`],
      [['--since', '1h'], "droptrace: --since needs --prometheus (a node's own view starts now)\n"],
      [['--prometheus', 'http://p:9090', '--metrics', '9464'], 'droptrace: --metrics is about this node\'s own drops: it cannot be combined with --prometheus\n'],
    ] as const) {
      const r = run(['stream', ...args]);
      expect([r.status, r.stdout, r.stderr]).toEqual([2, '', line]);
    }
  });

  it('exits 1 with one line when the server cannot be reached', async () => {
    const port = await freePort();
    const r = run(['stream', '--prometheus', `http://127.0.0.1:${port}`, '--since', '5m']);
    expect([r.status, r.stdout, r.stderr]).toEqual([1, '', `droptrace: prometheus http://127.0.0.1:${port}: connection refused\n`]);
  });

  it('prints the fleet_node lines of a server, then exits 0', async () => {
    const { url } = await serve((_q, body, res) => {
      const q = new URLSearchParams(body).get('query') ?? '';
      // every query answers about one node; only the per-kind ones carry a kind
      const result = q.includes('by (node, kind)') ? [{ metric: { node: 'n1', kind: 'no_socket' }, value: [1, q.includes('/ 300') ? '0.5' : '9'] }] : q.startsWith('max by (node) (droptrace_info)') ? [{ metric: { node: 'n1' }, value: [1, '1'] }] : [];
      json(res, 200, { status: 'success', data: { resultType: 'vector', result } });
    });
    // not spawnSync: the server answers from this process's event loop
    const r = await new Promise<{ status: number; stdout: string; stderr: string }>((res) =>
      execFile(process.execPath, [CLI, 'stream', '--prometheus', url.href, '--since', '1h'], { encoding: 'utf8' }, (e, stdout, stderr) => res({ status: e ? Number(e.code) : 0, stdout, stderr })),
    );
    expect([r.status, r.stderr]).toEqual([0, '']);
    const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ type: 'fleet_node', node: 'n1', rank: 1, of: 1, drops: 9, per_s: 0.5, kinds: [{ kind: 'no_socket', drops: 9, per_s: 0.5 }], since_s: 3600, rate_window_s: 300 });
  });
});

/**
 * A small client of Prometheus' HTTP API: instant queries (`/api/v1/query`) with Node's fetch,
 * each under a deadline, every failure turned into one line a person reads in a header
 * ("connection refused", "timed out after 10s", "HTTP 503: ..."). No retry here: the fleet view
 * retries with backoff, `stream --prometheus` fails once and exits.
 */
import { DroptraceError } from '../errors.js';

/** One series of an instant vector: its labels and its value at the query's time. */
export interface Sample {
  metric: Record<string, string>;
  value: number;
}

/** Runs one instant PromQL query at `time` (unix seconds); the vector it returns. */
export type QueryFn = (query: string, time: number) => Promise<Sample[]>;

/** A failure to get an answer from Prometheus; `message` is the one line to show. */
export class PromError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PromError';
  }
}

/** `http(s)://host[:port][/prefix]`, checked before anything starts: a bad one is exit 2. */
export function parsePrometheusUrl(v: string): URL {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new DroptraceError('E_USAGE', 'usage', `--prometheus wants a URL such as http://prometheus:9090, got "${v}"`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.hostname === '') {
    throw new DroptraceError('E_USAGE', 'usage', `--prometheus wants an http:// or https:// URL such as http://prometheus:9090, got "${v}"`);
  }
  if (u.search !== '' || u.hash !== '') throw new DroptraceError('E_USAGE', 'usage', `--prometheus wants the server's base URL, without ?query or #fragment, got "${v}"`);
  // the API sits under the base path (a Prometheus behind a proxy at /prometheus)
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u;
}

/** The base URL as people write it: no trailing slash. */
export function showUrl(u: URL): string {
  return u.href.replace(/\/$/, '');
}

/** The innermost cause of a fetch failure, in a few words. */
function networkReason(e: unknown, timeoutMs: number): string {
  if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) return `no answer within ${timeoutMs / 1000}s`;
  let c: unknown = e;
  for (let i = 0; i < 4 && c instanceof Error && c.cause !== undefined; i++) c = c.cause;
  const code = (c as NodeJS.ErrnoException | undefined)?.code;
  const words: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host name lookup failed',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    ETIMEDOUT: 'connection timed out',
    UND_ERR_SOCKET: 'connection closed',
    UND_ERR_HEADERS_TIMEOUT: `no answer within ${timeoutMs / 1000}s`,
  };
  if (code && words[code]) return words[code];
  const msg = c instanceof Error ? c.message : String(c);
  return (code ? `${code}: ${msg}` : msg).split('\n')[0]!.toLowerCase();
}

interface ApiAnswer {
  status?: string;
  errorType?: string;
  error?: string;
  data?: { resultType?: string; result?: unknown };
}

/** Reads an API answer's vector; anything else is a PromError naming what came back. */
export function vectorOf(body: unknown): Sample[] {
  const a = body as ApiAnswer;
  if (a?.status === 'error') throw new PromError(`${a.errorType ?? 'error'}: ${a.error ?? 'no detail'}`);
  if (a?.status !== 'success' || !a.data) throw new PromError('not a Prometheus API answer');
  if (a.data.resultType !== 'vector' || !Array.isArray(a.data.result)) throw new PromError(`expected an instant vector, got ${a.data.resultType ?? 'nothing'}`);
  return a.data.result.map((r: { metric?: Record<string, string>; value?: [number, string] }) => {
    const v = Number(r.value?.[1]);
    if (!r.metric || !Array.isArray(r.value) || Number.isNaN(v)) throw new PromError('malformed sample in the answer');
    return { metric: r.metric, value: v };
  });
}

/** A QueryFn against the server at `base`; each query gets at most `timeoutMs`. */
export function httpQuery(base: URL, timeoutMs = 10_000): QueryFn {
  const endpoint = new URL('api/v1/query', base);
  return async (query, time) => {
    let res: Response;
    let text: string;
    try {
      res = await fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ query, time: time.toFixed(3), timeout: `${Math.max(1, Math.floor(timeoutMs / 1000))}s` }),
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'follow',
      });
      text = await res.text();
    } catch (e) {
      throw new PromError(networkReason(e, timeoutMs));
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new PromError(`HTTP ${res.status}: not a Prometheus API answer (is ${showUrl(base)} a Prometheus server?)`);
    }
    try {
      return vectorOf(body);
    } catch (e) {
      throw new PromError(res.ok ? (e as Error).message : `HTTP ${res.status}: ${(e as Error).message}`);
    }
  };
}

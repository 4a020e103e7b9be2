/**
 * A real Prometheus server for tests (Debian's `prometheus`, installed by scripts/setup.sh):
 * started on 127.0.0.1 with a free port, a generated config (scrape_interval 1s, the caller's
 * targets, each with its own job and instance) and a temp storage dir. `startPrometheus()`
 * returns once the server is ready (/-/ready) and, unless told not to, every target has been
 * scraped once (`up` has a sample for it). Everything waits on conditions with one generous
 * deadline, never on sleeps of a guessed length; `stop()` kills the server and removes the dir.
 *
 * Tests skip when the binary is missing:
 *   const why = prometheusMissing();
 *   if (why) console.warn(`skipping ...: ${why}`);
 *   describe.skipIf(why !== '')(...)
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

export const PROMETHEUS = process.env.DT_PROMETHEUS ?? 'prometheus';

/** '' when the prometheus binary runs here, else why not (for the test's skip line). */
export function prometheusMissing(): string {
  const r = spawnSync(PROMETHEUS, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return `${PROMETHEUS} is not installed (Debian: apt-get install prometheus, or bash scripts/setup.sh as root)`;
  return '';
}

export interface ScrapeTarget {
  /** host:port Prometheus scrapes */
  address: string;
  /** the job label (default 'droptrace') */
  job?: string;
  /** the instance label (default: the address) */
  instance?: string;
  /** more target labels */
  labels?: Record<string, string>;
  /** default /metrics */
  metricsPath?: string;
}

export interface PrometheusOptions {
  targets: ScrapeTarget[];
  /** wait until every target has been scraped once before start resolves (default true) */
  waitForTargets?: boolean;
  /** overall deadline of each wait, ms (default 45 s: the machine is shared and loaded) */
  timeoutMs?: number;
  /** rule files (paths) to load, e.g. deploy/prometheus/droptrace-rules.yml */
  ruleFiles?: string[];
}

/** One element of an instant vector or range matrix. */
export interface Sample {
  metric: Record<string, string>;
  /** instant vector: [unix seconds, "value"] */
  value?: [number, string];
  /** range matrix: [[unix seconds, "value"], ...] */
  values?: Array<[number, string]>;
}

export interface QueryResult {
  resultType: 'vector' | 'matrix' | 'scalar' | 'string';
  /** vector / matrix: the series; scalar / string: [time, value] */
  result: Sample[] | [number, string];
}

/** An API answer with status "error" (bad_data for a parse error), or an HTTP failure. */
export class PrometheusQueryError extends Error {
  constructor(
    readonly expr: string,
    readonly errorType: string,
    message: string,
  ) {
    super(`${errorType}: ${message} (query: ${expr})`);
  }
}

export interface Prometheus {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  /** the storage dir (removed by stop) */
  dir: string;
  /** an instant query at `time` (unix seconds; default now) */
  query(expr: string, time?: number): Promise<QueryResult>;
  /** a range query, step in seconds */
  queryRange(expr: string, start: number, end: number, step: number): Promise<QueryResult>;
  /** GET /api/v1/<path> with the given parameters; resolves with `data` */
  api<T = unknown>(path: string, params?: Record<string, string | string[]>): Promise<T>;
  /** all metric names in the TSDB (/api/v1/label/__name__/values) */
  metricNames(): Promise<string[]>;
  /**
   * Evaluates `expr` until `pred` holds for its result (re-evaluated after each scrape interval),
   * then resolves with that result; rejects at the deadline with the last result in the message.
   */
  waitFor(expr: string, pred: (r: QueryResult) => boolean, timeoutMs?: number): Promise<QueryResult>;
  /** waits until every target has an `up` sample (scraped at least once), and `up == 1` unless `allowDown` */
  waitForTargets(opts?: { allowDown?: boolean; timeoutMs?: number }): Promise<void>;
  /** what the server wrote to stderr so far (its log) */
  log(): string;
  /** SIGTERM (SIGKILL after a deadline), wait for exit, remove the storage dir */
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bound and released; start retries if someone takes it first). */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** The prometheus.yml for these targets: one scrape config per job, 1 s interval. */
export function prometheusConfig(targets: ScrapeTarget[], ruleFiles: string[] = []): string {
  const jobs = new Map<string, { path: string; statics: Array<{ targets: string[]; labels: Record<string, string> }> }>();
  for (const t of targets) {
    const job = t.job ?? 'droptrace';
    const path = t.metricsPath ?? '/metrics';
    const j = jobs.get(job) ?? { path, statics: [] };
    if (j.path !== path) throw new Error(`targets of job ${job} have different metrics paths (${j.path}, ${path}): give them separate jobs`);
    j.statics.push({ targets: [t.address], labels: { ...t.labels, ...(t.instance ? { instance: t.instance } : {}) } });
    jobs.set(job, j);
  }
  return stringify({
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    ...(ruleFiles.length ? { rule_files: ruleFiles } : {}),
    scrape_configs: [...jobs].map(([job, j]) => ({ job_name: job, metrics_path: j.path, static_configs: j.statics })),
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startPrometheus(opts: PrometheusOptions): Promise<Prometheus> {
  const timeoutMs = opts.timeoutMs ?? 45_000;
  const dir = mkdtempSync(join(tmpdir(), 'dt-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, prometheusConfig(opts.targets, opts.ruleFiles));
  const tsdb = join(dir, 'data');

  let child: ChildProcess | undefined;
  let log = '';
  let exited: Promise<void> = Promise.resolve();
  let port = 0;
  // The port was free a moment ago; another process may take it before prometheus binds it.
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    log = '';
    const c = spawn(
      PROMETHEUS,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${tsdb}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    c.stderr!.on('data', (d: Buffer) => {
      // a log is kept for failure messages only; its tail is what matters
      log = (log + d.toString()).slice(-20_000);
    });
    let gone = false;
    const exit = new Promise<void>((res) => c.once('close', () => ((gone = true), res())));
    const ready = await waitReady(`http://127.0.0.1:${port}`, () => gone, timeoutMs);
    if (ready) {
      child = c;
      exited = exit;
      break;
    }
    if (!gone) c.kill('SIGKILL');
    await exit;
    if (!/address already in use/.test(log) || attempt >= 4) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`prometheus did not become ready on 127.0.0.1:${port}: ${log.trim().split('\n').slice(-5).join(' | ')}`);
    }
  }

  const url = `http://127.0.0.1:${port}`;

  async function api<T>(path: string, params: Record<string, string | string[]> = {}, expr = ''): Promise<T> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const x of Array.isArray(v) ? v : [v]) body.append(k, x);
    // queries by POST: long expressions stay out of the URL; the other endpoints are GET only
    const post = path === 'query' || path === 'query_range' || path === 'series';
    const res = post ? await fetch(`${url}/api/v1/${path}`, { method: 'POST', body }) : await fetch(`${url}/api/v1/${path}?${body.toString()}`);
    const text = await res.text();
    let j: { status?: string; data?: T; errorType?: string; error?: string };
    try {
      j = JSON.parse(text) as typeof j;
    } catch {
      throw new PrometheusQueryError(expr, `http_${res.status}`, text.slice(0, 200));
    }
    if (j.status !== 'success') throw new PrometheusQueryError(expr, j.errorType ?? `http_${res.status}`, j.error ?? text.slice(0, 200));
    return j.data as T;
  }

  const query = (expr: string, time?: number) => api<QueryResult>('query', { query: expr, ...(time !== undefined ? { time: String(time) } : {}) }, expr);
  const queryRange = (expr: string, start: number, end: number, step: number) =>
    api<QueryResult>('query_range', { query: expr, start: String(start), end: String(end), step: String(step) }, expr);

  async function waitFor(expr: string, pred: (r: QueryResult) => boolean, ms = timeoutMs): Promise<QueryResult> {
    const deadline = Date.now() + ms;
    let last: QueryResult | undefined;
    for (;;) {
      last = await query(expr);
      if (pred(last)) return last;
      if (Date.now() > deadline) throw new Error(`prometheus: ${expr} did not reach the expected result in ${ms} ms; last: ${JSON.stringify(last.result).slice(0, 500)}`);
      // one scrape interval: a new sample can only come with a scrape
      await sleep(1000);
    }
  }

  async function waitForTargets(o: { allowDown?: boolean; timeoutMs?: number } = {}): Promise<void> {
    const want = opts.targets.map((t) => `${t.job ?? 'droptrace'}\0${t.instance ?? t.address}`);
    await waitFor(
      'up',
      (r) => {
        const seen = new Set((r.result as Sample[]).filter((s) => o.allowDown || s.value?.[1] === '1').map((s) => `${s.metric.job}\0${s.metric.instance}`));
        return want.every((w) => seen.has(w));
      },
      o.timeoutMs ?? timeoutMs,
    );
  }

  let stopped = false;
  async function stop(): Promise<void> {
    if (stopped) return;
    stopped = true;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child?.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  }

  const p: Prometheus = {
    url,
    port,
    dir,
    query,
    queryRange,
    api: (path, params) => api(path, params),
    metricNames: () => api<string[]>('label/__name__/values'),
    waitFor,
    waitForTargets,
    log: () => log,
    stop,
  };
  if (opts.waitForTargets !== false && opts.targets.length) {
    try {
      await waitForTargets();
    } catch (e) {
      const up = await query('up').catch(() => null);
      await stop();
      throw new Error(`${(e as Error).message}; up: ${JSON.stringify(up?.result ?? null)}; log: ${log.trim().split('\n').slice(-3).join(' | ')}`);
    }
  }
  return p;
}

/** Polls /-/ready until 200; false when the process exited (port taken?) or the deadline passed. */
async function waitReady(url: string, gone: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (gone()) return false;
    try {
      const r = await fetch(`${url}/-/ready`);
      if (r.status === 200) return true;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return false;
}

/**
 * The pods of this node from the Kubernetes API: list (paged), then watch from the list's
 * resourceVersion with bookmarks; a watch that ends is resumed from the last resourceVersion
 * seen, a 410 Gone (the version was compacted away, or the API server restarted) means list
 * again, and any other failure is retried with jittered exponential backoff. The API being
 * down never stops tracing: failures are counted, the index keeps what it knew, and a relist
 * after recovery ends the pods deleted meanwhile. A watch with no complete line for `watchIdleMs`
 * (a half-open connection, a trickle) is dropped and resumed; bodies and lines have size caps.
 *
 * Plain node:http/https — the two GET requests and a line-delimited JSON stream are all the
 * protocol this needs.
 */
import * as http from 'node:http';
import type { IncomingMessage } from 'node:http';
import * as https from 'node:https';
import { hostname } from 'node:os';
import type { KubeTarget } from './kube-config.js';
import { LineSplitter, httpError, readBody, seconds } from './kube-http.js';
import { podInfo, podMeta } from './kube-pod.js';
import type { PodIndex } from './pod-index.js';

export interface PodWatcherOptions {
  /** the node whose pods to watch (spec.nodeName); default $NODE_NAME, else the host name */
  node?: string;
  /** first retry delay; doubles up to maxBackoffMs, with jitter; default 500 ms */
  minBackoffMs?: number;
  /** default 30 s */
  maxBackoffMs?: number;
  /** server-side watch timeout; default a random 5–10 minutes, like client-go */
  watchTimeoutSeconds?: number;
  /** page size of a list; default 500 */
  pageSize?: number;
  /** a list page must be complete within this long; default 60 s */
  requestTimeoutMs?: number;
  /** a watch without one complete line (event or bookmark) for this long is restarted; default 2 min */
  watchIdleMs?: number;
  /** cap on one list page's body; default 64 MiB */
  maxBodyBytes?: number;
  /** cap on one watch line (one pod object); default 8 MiB */
  maxLineBytes?: number;
  now?: () => number;
  random?: () => number;
  userAgent?: string;
  /** called when the API becomes unreachable and when it is back */
  onStatus?: (status: PodWatcherStatus) => void;
}

export interface PodWatcherStatus {
  state: 'syncing' | 'synced' | 'retrying' | 'closed';
  /** the error of the last failure, when retrying */
  error?: string;
}

export interface PodWatcherStats {
  lists: number;
  /** lists forced by 410 Gone */
  relists: number;
  watches: number;
  events: number;
  /** failed requests and broken streams (each retry counts) */
  failures: number;
  /** watches restarted because no line came for watchIdleMs (half-open connection, trickle) */
  idleRestarts: number;
  lastError: string | null;
  resourceVersion: string | null;
}

/** The API said our resourceVersion is too old: only a new list helps. */
class Gone extends Error {}

/** The watch went silent: resume it from the last resourceVersion, no backoff, no relist. */
class Idle extends Error {}

export class PodWatcher {
  readonly stats: PodWatcherStats = { lists: 0, relists: 0, watches: 0, events: 0, failures: 0, idleRestarts: 0, lastError: null, resourceVersion: null };
  readonly node: string;
  readonly #index: PodIndex;
  readonly #target: KubeTarget;
  readonly #agent: http.Agent;
  readonly #o: Required<Omit<PodWatcherOptions, 'node' | 'onStatus' | 'watchTimeoutSeconds'>> & Pick<PodWatcherOptions, 'onStatus' | 'watchTimeoutSeconds'>;
  readonly #abort = new AbortController();
  #rv: string | null = null;
  #attempt = 0;
  /** 410s in a row with nothing in between: a server that keeps saying Gone gets backoff too */
  #gones = 0;
  #state: PodWatcherStatus['state'] = 'syncing';
  #loop: Promise<void> | null = null;
  #synced = false;
  readonly #syncWaiters: Array<(ok: boolean) => void> = [];

  constructor(index: PodIndex, target: KubeTarget, opts: PodWatcherOptions = {}) {
    this.#index = index;
    this.#target = target;
    this.node = opts.node ?? process.env.NODE_NAME ?? hostname().toLowerCase();
    this.#o = {
      minBackoffMs: opts.minBackoffMs ?? 500,
      maxBackoffMs: opts.maxBackoffMs ?? 30_000,
      watchTimeoutSeconds: opts.watchTimeoutSeconds,
      pageSize: opts.pageSize ?? 500,
      requestTimeoutMs: opts.requestTimeoutMs ?? 60_000,
      watchIdleMs: opts.watchIdleMs ?? 120_000,
      maxBodyBytes: opts.maxBodyBytes ?? 64 * 1024 * 1024,
      maxLineBytes: opts.maxLineBytes ?? 8 * 1024 * 1024,
      now: opts.now ?? Date.now,
      random: opts.random ?? Math.random,
      userAgent: opts.userAgent ?? 'droptrace',
      onStatus: opts.onStatus,
    };
    const tls = {
      keepAlive: true,
      ...(target.ca ? { ca: target.ca } : {}),
      ...(target.cert ? { cert: target.cert } : {}),
      ...(target.key ? { key: target.key } : {}),
      rejectUnauthorized: !target.insecure,
      ...(target.tlsServerName ? { servername: target.tlsServerName } : {}),
    };
    this.#agent = target.server.protocol === 'https:' ? new https.Agent(tls) : new http.Agent({ keepAlive: true });
  }

  /** Starts listing and watching in the background. */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Resolves true once the first list is in the index, false after `timeoutMs` or on close. */
  synced(timeoutMs: number): Promise<boolean> {
    if (this.#synced) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      t.unref();
      this.#syncWaiters.push((ok) => {
        clearTimeout(t);
        resolve(ok);
      });
    });
  }

  async close(): Promise<void> {
    this.#abort.abort();
    this.#agent.destroy();
    for (const w of this.#syncWaiters.splice(0)) w(false);
    await this.#loop;
    this.#setState('closed');
  }

  #setState(state: PodWatcherStatus['state'], error?: string): void {
    if (state === this.#state) return;
    this.#state = state;
    this.#o.onStatus?.(error === undefined ? { state } : { state, error });
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        if (this.#rv === null) await this.#list();
        const began = this.#o.now();
        const events = this.stats.events;
        await this.#watch();
        // A watch the server ends at once, again and again, must not become a busy loop.
        if (this.#o.now() - began < 1000 && this.stats.events === events) await this.#sleep(this.#backoff());
      } catch (e) {
        if (signal.aborted) break;
        if (e instanceof Idle) {
          this.stats.idleRestarts++;
          continue;
        }
        if (e instanceof Gone) {
          this.#rv = null;
          this.stats.relists++;
          if (this.#gones++ > 0) await this.#sleep(this.#backoff());
          continue;
        }
        const msg = e instanceof Error ? e.message : String(e);
        this.stats.failures++;
        this.stats.lastError = msg;
        this.#setState('retrying', msg);
        await this.#sleep(this.#backoff());
      }
    }
  }

  #backoff(): number {
    const ceiling = Math.min(this.#o.maxBackoffMs, this.#o.minBackoffMs * 2 ** Math.min(this.#attempt++, 30));
    return ceiling / 2 + (this.#o.random() * ceiling) / 2;
  }

  #sleep(ms: number): Promise<void> {
    const signal = this.#abort.signal;
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done);
    });
  }

  /** `timeoutMs`: socket inactivity before the request is given up, with `timeoutError` */
  #request(query: URLSearchParams, timeoutMs: number, timeoutError: () => Error): Promise<IncomingMessage> {
    const server = this.#target.server;
    const prefix = server.pathname.replace(/\/+$/, '');
    return this.#target.authorization().then(
      (auth) =>
        new Promise<IncomingMessage>((resolve, reject) => {
          const mod = server.protocol === 'https:' ? https : http;
          const req = mod.request(
            {
              host: server.hostname.replace(/^\[(.*)\]$/, '$1'),
              port: server.port || (server.protocol === 'https:' ? 443 : 80),
              path: `${prefix}/api/v1/pods?${query}`,
              method: 'GET',
              agent: this.#agent,
              signal: this.#abort.signal,
              headers: {
                accept: 'application/json',
                'user-agent': this.#o.userAgent,
                ...(auth ? { authorization: auth } : {}),
              },
            },
            (res) => {
              // The headers came: from here the body's reader owns the time limit (readBody's
              // timeout, the watch's line timer). A socket timer left armed would race the watch's
              // idle timer and turn a silent watch into an 'aborted' failure instead of a restart.
              req.setTimeout(0);
              resolve(res);
            },
          );
          // no bytes for this long: the connection is dead even if TCP has not noticed
          req.setTimeout(timeoutMs, () => req.destroy(timeoutError()));
          req.on('error', reject);
          req.end();
        }),
    );
  }

  #query(extra: Record<string, string>): URLSearchParams {
    return new URLSearchParams({ fieldSelector: `spec.nodeName=${this.node}`, ...extra });
  }

  async #list(): Promise<void> {
    const at = this.#o.now();
    let items: unknown[] = [];
    let cont: string | undefined;
    let restarts = 0;
    let rv: string | undefined;
    for (;;) {
      const timeout = this.#o.requestTimeoutMs;
      const silent = () => new Error(`no answer from ${this.#target.server.host} in ${seconds(timeout)}`);
      const res = await this.#request(this.#query({ limit: String(this.#o.pageSize), ...(cont ? { continue: cont } : {}) }), timeout, silent);
      if (res.statusCode === 410 && cont !== undefined && restarts++ < 2) {
        // the continue token expired between pages: start over
        res.resume();
        items = [];
        cont = undefined;
        continue;
      }
      if (res.statusCode !== 200) throw await httpError(res, timeout);
      const text = await readBody(res, this.#o.maxBodyBytes, timeout, 'pod list page');
      const body = JSON.parse(text) as { metadata?: { resourceVersion?: unknown; continue?: unknown }; items?: unknown };
      if (!Array.isArray(body.items)) throw new Error('pod list without items');
      // one push per item: push(...page) overflows the stack on a page of some 100k items
      for (const item of body.items as unknown[]) items.push(item);
      cont = typeof body.metadata?.continue === 'string' && body.metadata.continue !== '' ? body.metadata.continue : undefined;
      rv = typeof body.metadata?.resourceVersion === 'string' ? body.metadata.resourceVersion : undefined;
      if (cont === undefined) break;
    }
    if (!rv) throw new Error('pod list without a resourceVersion');

    const present = new Set<string>();
    for (const item of items) {
      const info = podInfo(item, at);
      if (info === null) continue;
      present.add(info.uid);
      this.#index.upsert(info, 'api');
    }
    // pods deleted while we were not watching
    this.#index.endMissing('api', present, at);
    this.#rv = rv;
    this.stats.resourceVersion = rv;
    this.stats.lists++;
    this.#attempt = 0;
    this.#setState('synced');
    if (!this.#synced) {
      this.#synced = true;
      for (const w of this.#syncWaiters.splice(0)) w(true);
    }
  }

  async #watch(): Promise<void> {
    const timeoutSeconds = this.#o.watchTimeoutSeconds ?? Math.floor(300 + this.#o.random() * 300);
    const idleMs = this.#o.watchIdleMs;
    const idle = () => new Idle(`watch silent for ${seconds(idleMs)}`);
    const res = await this.#request(
      this.#query({ watch: 'true', resourceVersion: this.#rv!, allowWatchBookmarks: 'true', timeoutSeconds: String(timeoutSeconds) }),
      idleMs,
      idle,
    );
    if (res.statusCode === 410) {
      res.resume();
      throw new Gone('410 Gone');
    }
    if (res.statusCode !== 200) throw await httpError(res, this.#o.requestTimeoutMs);
    this.stats.watches++;
    this.#attempt = 0;
    this.#setState('synced');
    await new Promise<void>((resolve, reject) => {
      let failed = false;
      // bytes without a complete line (a trickle) do not count as life: only lines re-arm this
      let timer = setTimeout(() => fail(idle()), idleMs);
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        clearTimeout(timer);
        res.destroy();
        reject(e);
      };
      const lines = new LineSplitter(this.#o.maxLineBytes, (line) => {
        if (failed) return;
        this.#event(JSON.parse(line));
        clearTimeout(timer);
        timer = setTimeout(() => fail(idle()), idleMs);
      });
      res.on('data', (chunk: Buffer) => {
        try {
          lines.push(chunk);
        } catch (e) {
          fail(e);
        }
      });
      res.on('end', () => {
        clearTimeout(timer);
        if (!failed) resolve();
      });
      res.on('error', fail);
      res.on('aborted', () => fail(new Error('watch stream aborted')));
      res.on('close', () => {
        if (!res.complete) fail(new Error('watch stream closed'));
      });
    });
  }

  #event(e: unknown): void {
    const ev = e as { type?: unknown; object?: unknown };
    const o = ev.object as { metadata?: { resourceVersion?: unknown }; code?: unknown; message?: unknown } | undefined;
    switch (ev.type) {
      case 'ADDED':
      case 'MODIFIED': {
        const info = podInfo(o, this.#o.now());
        if (info) this.#index.upsert(info, 'api');
        break;
      }
      case 'DELETED': {
        const m = podMeta(o);
        if (m) this.#index.end(m.uid, this.#o.now(), 'api');
        break;
      }
      case 'BOOKMARK':
        break;
      case 'ERROR': {
        const msg = typeof o?.message === 'string' ? o.message : 'watch error';
        if (o?.code === 410) throw new Gone(msg);
        throw new Error(`watch error ${String(o?.code ?? '')}: ${msg}`);
      }
      default:
        throw new Error(`watch event of unknown type ${JSON.stringify(ev.type)}`);
    }
    this.stats.events++;
    this.#gones = 0;
    const rv = o?.metadata?.resourceVersion;
    if (typeof rv === 'string' && rv !== '') {
      this.#rv = rv;
      this.stats.resourceVersion = rv;
    }
  }
}

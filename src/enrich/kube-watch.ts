/**
 * The pods of this node from the Kubernetes API: list (paged), then watch from the list's
 * resourceVersion with bookmarks; a watch that ends is resumed from the last resourceVersion
 * seen, a 410 Gone (the version was compacted away, or the API server restarted) means list
 * again, and any other failure is retried with jittered exponential backoff. The API being
 * down never stops tracing: failures are counted, the index keeps what it knew, and a relist
 * after recovery ends the pods deleted meanwhile.
 *
 * Plain node:http/https — the two GET requests and a line-delimited JSON stream are all the
 * protocol this needs.
 */
import * as http from 'node:http';
import type { IncomingMessage } from 'node:http';
import * as https from 'node:https';
import { hostname } from 'node:os';
import type { KubeTarget } from './kube-config.js';
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
  /** a request or a silent watch stream is given up after this long past its expected end; default 60 s */
  requestTimeoutMs?: number;
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
  lastError: string | null;
  resourceVersion: string | null;
}

/** The API said our resourceVersion is too old: only a new list helps. */
class Gone extends Error {}

class HttpError extends Error {}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('response aborted')));
  });
}

/** "403 Forbidden: pods is forbidden: User ... cannot list ..." from a Status body, when there is one. */
async function httpError(res: IncomingMessage): Promise<HttpError> {
  const body = await readBody(res).catch(() => '');
  let message = '';
  try {
    const s = JSON.parse(body) as { message?: unknown };
    if (typeof s.message === 'string') message = s.message;
  } catch {
    message = body.slice(0, 200).trim();
  }
  return new HttpError(`HTTP ${res.statusCode}${message ? `: ${message}` : ''}`);
}

export class PodWatcher {
  readonly stats: PodWatcherStats = { lists: 0, relists: 0, watches: 0, events: 0, failures: 0, lastError: null, resourceVersion: null };
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

  #request(query: URLSearchParams, timeoutMs: number): Promise<IncomingMessage> {
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
            resolve,
          );
          // no bytes for this long: the connection is dead even if TCP has not noticed
          req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from ${server.host} in ${Math.round(timeoutMs / 1000)} s`)));
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
      const res = await this.#request(this.#query({ limit: String(this.#o.pageSize), ...(cont ? { continue: cont } : {}) }), this.#o.requestTimeoutMs);
      if (res.statusCode === 410 && cont !== undefined && restarts++ < 2) {
        // the continue token expired between pages: start over
        res.resume();
        items = [];
        cont = undefined;
        continue;
      }
      if (res.statusCode !== 200) throw await httpError(res);
      const body = JSON.parse(await readBody(res)) as { metadata?: { resourceVersion?: unknown; continue?: unknown }; items?: unknown };
      if (!Array.isArray(body.items)) throw new Error('pod list without items');
      items.push(...body.items);
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
    const res = await this.#request(
      this.#query({ watch: 'true', resourceVersion: this.#rv!, allowWatchBookmarks: 'true', timeoutSeconds: String(timeoutSeconds) }),
      timeoutSeconds * 1000 + this.#o.requestTimeoutMs,
    );
    if (res.statusCode === 410) {
      res.resume();
      throw new Gone('410 Gone');
    }
    if (res.statusCode !== 200) throw await httpError(res);
    this.stats.watches++;
    this.#attempt = 0;
    this.#setState('synced');
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      let failed = false;
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        res.destroy();
        reject(e);
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while (!failed && (nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line === '') continue;
          try {
            this.#event(JSON.parse(line));
          } catch (e) {
            fail(e);
          }
        }
      });
      res.on('end', () => {
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

/**
 * A stand-in Kubernetes API server for pods, speaking the real protocol over HTTPS on
 * 127.0.0.1: discovery (/api, /apis, /api/v1, /version), paged lists with continue tokens,
 * watches as chunked line-delimited JSON resumed from a resourceVersion, bookmarks, 410 Gone
 * (as an ERROR event for a compacted watch, as HTTP 410 for an expired continue token), bearer
 * token and client-certificate authentication, field selectors on spec.nodeName. It can stop
 * and restart on the same port, dropping every connection, like an API server rollout.
 * `intercept` lets a test answer a request itself: a broken or hostile server (an endless line,
 * a trickle, a stream that goes silent like a half-open connection).
 *
 * Real kubectl talks to it (see kube-watch.test.ts), which is what keeps it honest.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { PodObject } from './pod-objects.js';

export interface Tls {
  dir: string;
  caPath: string;
  ca: Buffer;
  serverKey: Buffer;
  serverCert: Buffer;
  clientKeyPath: string;
  clientCertPath: string;
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate for system:node:dt-node1, with openssl. */
export function makeTls(dir: string): Tls {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=dt-test-ca');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kube-apiserver');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext');
  ssl('req', ...ec, '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/O=system:nodes/CN=system:node:dt-node1');
  ssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.crt', '-days', '2');
  return {
    dir,
    caPath: join(dir, 'ca.crt'),
    ca: readFileSync(join(dir, 'ca.crt')),
    serverKey: readFileSync(join(dir, 'server.key')),
    serverCert: readFileSync(join(dir, 'server.crt')),
    clientKeyPath: join(dir, 'client.key'),
    clientCertPath: join(dir, 'client.crt'),
  };
}

export interface RequestLog {
  path: string;
  query: Record<string, string>;
  /** "token" | "cert:<CN>" | "none" */
  auth: string;
  status: number;
}

interface Watch {
  res: ServerResponse;
  node: string | null;
  timer: NodeJS.Timeout;
}

type Event = { rv: number; type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: PodObject };

const status = (code: number, reason: string, message: string) => ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });

export class FakeApiServer {
  readonly pods = new Map<string, PodObject>();
  readonly history: Event[] = [];
  readonly requests: RequestLog[] = [];
  rv = 1000;
  /** watches from a resourceVersion below this get 410 Gone */
  compactedBelow = 0;
  /** answer every pods request with this status (403 to test RBAC errors) */
  failWith: number | null = null;
  /** called before each request is answered (to change things between two pages of a list) */
  onRequest: ((log: RequestLog) => void) | null = null;
  /** answers a pods request itself when it returns true (after authentication) */
  intercept: ((log: RequestLog, res: ServerResponse) => boolean) | null = null;
  port = 0;
  #server: Server | null = null;
  readonly #sockets = new Set<Socket>();
  readonly #watches = new Set<Watch>();

  constructor(
    private readonly tls: Tls,
    private readonly token: string,
  ) {}

  async listen(port = this.port): Promise<void> {
    const server = createServer({ key: this.tls.serverKey, cert: this.tls.serverCert, ca: this.tls.ca, requestCert: true, rejectUnauthorized: false }, (req, res) =>
      this.#handle(req, res),
    );
    server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    server.on('secureConnection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  /** Stops answering: the port closes and every connection (watches too) is cut. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    for (const w of this.#watches) clearTimeout(w.timer);
    this.#watches.clear();
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  /** Creates or updates a pod, as the API would, and tells the watches. */
  put(pod: PodObject): void {
    const uid = String(pod.metadata.uid);
    const type = this.pods.has(uid) ? 'MODIFIED' : 'ADDED';
    this.#record(type, pod);
    this.pods.set(uid, pod);
  }

  delete(uid: string): void {
    const pod = this.pods.get(uid);
    if (!pod) throw new Error(`no pod ${uid}`);
    this.pods.delete(uid);
    this.#record('DELETED', pod);
  }

  /** Forgets the event history, like etcd compaction: older resourceVersions are Gone. */
  compact(): void {
    this.compactedBelow = this.rv;
    this.history.length = 0;
  }

  /** Sends a bookmark to every watch that asked for them. */
  bookmark(): void {
    for (const w of this.#watches) w.res.write(`${JSON.stringify({ type: 'BOOKMARK', object: { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) } } })}\n`);
  }

  watchCount(): number {
    return this.#watches.size;
  }

  #record(type: Event['type'], pod: PodObject): void {
    this.rv++;
    pod.metadata.resourceVersion = String(this.rv);
    const e: Event = { rv: this.rv, type, object: structuredClone(pod) };
    this.history.push(e);
    for (const w of this.#watches) this.#send(w, e);
  }

  #send(w: Watch, e: Event): void {
    const spec = e.object.spec as { nodeName?: string };
    if (w.node !== null && spec.nodeName !== w.node) return;
    w.res.write(`${JSON.stringify({ type: e.type, object: e.object })}\n`);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://x');
    const query = Object.fromEntries(url.searchParams);
    const cert = (req.socket as TLSSocket).getPeerCertificate?.();
    const auth =
      req.headers.authorization === `Bearer ${this.token}` ? 'token' : cert && (req.socket as TLSSocket).authorized ? `cert:${cert.subject.CN}` : 'none';
    const log: RequestLog = { path: url.pathname, query, auth, status: 200 };
    this.requests.push(log);
    this.onRequest?.(log);
    const json = (code: number, body: unknown) => {
      log.status = code;
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (auth === 'none') return json(401, status(401, 'Unauthorized', 'Unauthorized'));
    const p = url.pathname;
    if (p.endsWith('/pods') && this.intercept?.(log, res)) return;
    if (p === '/version') return json(200, { major: '1', minor: '30', gitVersion: 'v1.30.0', goVersion: 'go1.22.2', platform: 'linux/amd64' });
    if (p === '/api') return json(200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${this.port}` }] });
    if (p === '/apis') return json(200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [] });
    if (p === '/api/v1') {
      return json(200, {
        kind: 'APIResourceList',
        groupVersion: 'v1',
        resources: [{ name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get', 'list', 'watch'], shortNames: ['po'], categories: ['all'] }],
      });
    }
    const m = /^\/api\/v1(?:\/namespaces\/([^/]+))?\/pods$/.exec(p);
    if (!m) return json(404, status(404, 'NotFound', 'the server could not find the requested resource'));
    if (this.failWith !== null) return json(this.failWith, status(this.failWith, 'Forbidden', `pods is forbidden: User "system:serviceaccount:droptrace:droptrace" cannot list resource "pods" in API group "" at the cluster scope`));
    const namespace = m[1] ?? null;
    const sel = query.fieldSelector ?? '';
    const fm = /^spec\.nodeName==?(.*)$/.exec(sel);
    if (sel !== '' && !fm) return json(400, status(400, 'BadRequest', `unsupported field selector ${sel}`));
    const node = fm ? fm[1]! : null;
    const matches = (o: PodObject) => (node === null || (o.spec as { nodeName?: string }).nodeName === node) && (namespace === null || o.metadata.namespace === namespace);

    if (query.watch === 'true' || query.watch === '1') {
      log.status = 200;
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      const w: Watch = { res, node, timer: setTimeout(() => end(), Number(query.timeoutSeconds ?? 1800) * 1000) };
      const end = () => {
        clearTimeout(w.timer);
        this.#watches.delete(w);
        res.end();
      };
      res.on('close', () => {
        clearTimeout(w.timer);
        this.#watches.delete(w);
      });
      const from = query.resourceVersion ?? '';
      if (from === '' || from === '0') {
        for (const o of this.pods.values()) if (matches(o)) res.write(`${JSON.stringify({ type: 'ADDED', object: o })}\n`);
      } else if (Number(from) < this.compactedBelow) {
        res.write(`${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from} (${this.compactedBelow})`) })}\n`);
        return end();
      } else {
        for (const e of this.history) if (e.rv > Number(from) && matches(e.object)) this.#send(w, e);
      }
      this.#watches.add(w);
      return;
    }

    const all = [...this.pods.values()].filter(matches).sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
    let start = 0;
    let listRv = this.rv;
    if (query.continue) {
      const c = JSON.parse(Buffer.from(query.continue, 'base64').toString()) as { rv: number; start: number };
      if (c.rv < this.compactedBelow) {
        return json(
          410,
          status(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.'),
        );
      }
      start = c.start;
      listRv = c.rv;
    }
    const limit = Number(query.limit ?? 0);
    const end = limit > 0 ? start + limit : all.length;
    const items = all.slice(start, end).map((o) => {
      // items of a list carry no kind/apiVersion
      const { kind: _k, apiVersion: _a, ...rest } = o;
      return rest;
    });
    const metadata: Record<string, unknown> = { resourceVersion: String(listRv) };
    if (end < all.length) {
      metadata.continue = Buffer.from(JSON.stringify({ rv: listRv, start: end })).toString('base64');
      metadata.remainingItemCount = all.length - end;
    }
    return json(200, { kind: 'PodList', apiVersion: 'v1', metadata, items });
  }
}

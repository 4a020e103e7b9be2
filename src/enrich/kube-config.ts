/**
 * Where the Kubernetes API is and how to authenticate: the in-cluster service account
 * (token + CA under /var/run/secrets/kubernetes.io/serviceaccount, KUBERNETES_SERVICE_HOST/
 * PORT), or a kubeconfig file (`--kubeconfig`) with a bearer token, a token file, a client
 * certificate, or an exec credential plugin (gke-gcloud-auth-plugin, `aws eks get-token`).
 * Tokens are read per request: bound service-account tokens are rotated on disk.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { DroptraceError } from '../errors.js';
import { YamlSyntaxError, parseYamlWithLines } from './yaml-doc.js';
import type { LocatedDoc, Value as YamlValue } from './yaml-doc.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeTarget {
  /** https://host:port, possibly with a path prefix (a proxy such as Rancher's) */
  server: URL;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecure: boolean;
  tlsServerName?: string;
  /** The Authorization header for the next request, or undefined for none. */
  authorization(): Promise<string | undefined>;
  /** "in-cluster service account" or "kubeconfig <path> context <name>", for messages */
  origin: string;
}

export interface InClusterOptions {
  env?: NodeJS.ProcessEnv;
  /** default /var/run/secrets/kubernetes.io/serviceaccount */
  dir?: string;
}

/** The in-cluster API, or null when not running in a pod (no KUBERNETES_SERVICE_HOST or token). */
export function inClusterTarget(opts: InClusterOptions = {}): KubeTarget | null {
  const env = opts.env ?? process.env;
  const dir = opts.dir ?? SERVICE_ACCOUNT_DIR;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) return null;
  let ca: Buffer;
  try {
    readFileSync(join(dir, 'token'));
    ca = readFileSync(join(dir, 'ca.crt'));
  } catch {
    return null;
  }
  const h = host.includes(':') ? `[${host}]` : host;
  return {
    server: new URL(`https://${h}:${port}`),
    ca,
    insecure: false,
    authorization: async () => `Bearer ${(await readFile(join(dir, 'token'), 'utf8')).trim()}`,
    origin: 'in-cluster service account',
  };
}

export interface KubeconfigOptions {
  /** default: the file's current-context */
  context?: string;
  env?: NodeJS.ProcessEnv;
  /** `--kube-allow-http`: accept an http:// server, which gets the credentials in clear */
  allowHttp?: boolean;
}

type Obj = { [k: string]: YamlValue };
const isObj = (v: YamlValue | undefined): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function named(list: YamlValue | undefined, name: string, field: string): Obj | undefined {
  if (!Array.isArray(list)) return undefined;
  for (const e of list) if (isObj(e) && e.name === name && isObj(e[field])) return e[field];
  return undefined;
}

/** Reads a kubeconfig; any problem is a one-line DroptraceError naming the file and what is wrong. */
export function kubeconfigTarget(path: string, opts: KubeconfigOptions = {}): KubeTarget {
  const fail = (detail: string) => new DroptraceError('E_KUBECONFIG', 'input', `kubeconfig ${path}: ${detail}`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw fail(`cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  let located: LocatedDoc;
  try {
    located = parseYamlWithLines(text);
  } catch (e) {
    if (e instanceof YamlSyntaxError) throw fail(`line ${e.line} column ${e.column}: ${e.message}`);
    throw e;
  }
  const doc = located.value;
  // "line N: " where a mistake sits in the file
  const line = (node: object, key: string) => {
    const n = located.memberLine(node, key) ?? located.lineOf(node);
    return n === undefined ? '' : `line ${n}: `;
  };
  if (!isObj(doc)) throw fail('not a kubeconfig (expected a mapping with clusters, users, contexts)');
  const contextName = opts.context ?? (typeof doc['current-context'] === 'string' ? doc['current-context'] : '');
  if (!contextName) throw fail('no current-context (pass a file with one)');
  const context = named(doc.contexts, contextName, 'context');
  if (!context) throw fail(`no context named "${contextName}"`);
  const clusterName = String(context.cluster ?? '');
  const cluster = named(doc.clusters, clusterName, 'cluster');
  if (!cluster) throw fail(`context "${contextName}" names cluster "${clusterName}", which is not in the file`);
  const userName = context.user === undefined || context.user === null ? '' : String(context.user);
  const user = userName ? named(doc.users, userName, 'user') : {};
  if (!user) throw fail(`context "${contextName}" names user "${userName}", which is not in the file`);

  const base = dirname(path);
  const file = (what: string, p: YamlValue | undefined): Buffer | undefined => {
    if (typeof p !== 'string' || p === '') return undefined;
    const full = isAbsolute(p) ? p : join(base, p);
    try {
      return readFileSync(full);
    } catch (e) {
      throw fail(`cannot read ${what} ${full} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
  };
  const data = (p: YamlValue | undefined): Buffer | undefined => (typeof p === 'string' && p !== '' ? Buffer.from(p, 'base64') : undefined);

  let server: URL;
  try {
    server = new URL(String(cluster.server ?? ''));
  } catch {
    throw fail(`${line(cluster, 'server')}cluster "${clusterName}" has no valid server URL`);
  }
  if (server.protocol !== 'https:' && server.protocol !== 'http:') throw fail(`${line(cluster, 'server')}cluster "${clusterName}": server must be https:// or http://`);
  if (server.protocol === 'http:' && opts.allowHttp !== true) {
    throw fail(`${line(cluster, 'server')}cluster "${clusterName}": server ${server.origin} is plain http, which sends the credentials in clear (use https://, or pass --kube-allow-http for a local proxy)`);
  }

  const target: KubeTarget = {
    server,
    insecure: cluster['insecure-skip-tls-verify'] === true,
    authorization: async () => undefined,
    origin: `kubeconfig ${path} context ${contextName}`,
  };
  const ca = data(cluster['certificate-authority-data']) ?? file('certificate-authority', cluster['certificate-authority']);
  if (ca) target.ca = ca;
  if (typeof cluster['tls-server-name'] === 'string') target.tlsServerName = cluster['tls-server-name'];
  const cert = data(user['client-certificate-data']) ?? file('client-certificate', user['client-certificate']);
  const key = data(user['client-key-data']) ?? file('client-key', user['client-key']);
  if (cert && !key) throw fail(`${line(user, 'client-certificate-data' in user ? 'client-certificate-data' : 'client-certificate')}user "${userName}" has a client certificate but no client key`);
  if (cert && key) {
    target.cert = cert;
    target.key = key;
  }

  if (typeof user.token === 'string' && user.token.trim() !== '') {
    // a block scalar (`token: |`) ends in a newline, which no header may carry
    const token = user.token.trim();
    target.authorization = async () => `Bearer ${token}`;
  } else if (typeof user.tokenFile === 'string' && user.tokenFile !== '') {
    const p = isAbsolute(user.tokenFile) ? user.tokenFile : join(base, user.tokenFile);
    file('tokenFile', p);
    target.authorization = async () => `Bearer ${(await readFile(p, 'utf8')).trim()}`;
  } else if (typeof user.username === 'string' && typeof user.password === 'string') {
    const basic = `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`;
    target.authorization = async () => basic;
  } else if (isObj(user.exec)) {
    target.authorization = execCredential(user.exec, base, opts.env ?? process.env, fail);
  } else if (user['auth-provider'] !== undefined) {
    throw fail(`${line(user, 'auth-provider')}user "${userName}" uses an auth-provider, which droptrace does not support (use a token, a client certificate or an exec plugin)`);
  }
  return target;
}

/** An exec credential plugin's bearer token, cached until shortly before it expires. */
function execCredential(exec: Obj, base: string, env: NodeJS.ProcessEnv, fail: (d: string) => DroptraceError): () => Promise<string | undefined> {
  const command = typeof exec.command === 'string' ? exec.command : '';
  if (!command) throw fail('exec credential plugin without a command');
  // a command given as a relative path is relative to the kubeconfig, a bare name is looked up in PATH
  const cmd = command.includes('/') && !isAbsolute(command) ? join(base, command) : command;
  const args = Array.isArray(exec.args) ? exec.args.map(String) : [];
  const apiVersion = typeof exec.apiVersion === 'string' ? exec.apiVersion : 'client.authentication.k8s.io/v1';
  const extra: Record<string, string> = {};
  if (Array.isArray(exec.env)) for (const e of exec.env) if (isObj(e) && typeof e.name === 'string') extra[e.name] = String(e.value ?? '');
  let cached: { header: string; until: number } | null = null;
  return () => {
    if (cached && Date.now() < cached.until) return Promise.resolve(cached.header);
    const info = JSON.stringify({ apiVersion, kind: 'ExecCredential', spec: { interactive: false } });
    return new Promise((resolve, reject) => {
      execFile(cmd, args, { env: { ...env, ...extra, KUBERNETES_EXEC_INFO: info }, timeout: 30_000, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`exec credential plugin ${command} failed: ${(stderr || err.message).trim().split('\n')[0]}`));
          return;
        }
        let token: unknown;
        let expires: unknown;
        try {
          const cred = JSON.parse(stdout) as { status?: { token?: unknown; expirationTimestamp?: unknown } };
          token = cred.status?.token;
          expires = cred.status?.expirationTimestamp;
        } catch {
          reject(new Error(`exec credential plugin ${command} printed no ExecCredential JSON`));
          return;
        }
        if (typeof token !== 'string' || token === '') {
          reject(new Error(`exec credential plugin ${command} gave no token (client certificates from plugins are not supported)`));
          return;
        }
        const exp = typeof expires === 'string' ? Date.parse(expires) : NaN;
        const header = `Bearer ${token}`;
        cached = { header, until: Number.isNaN(exp) ? Date.now() + 60_000 : exp - 30_000 };
        resolve(header);
      });
    });
  };
}

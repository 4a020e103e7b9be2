import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DroptraceError } from '../../src/errors.js';
import { inClusterTarget, kubeconfigTarget } from '../../src/enrich/kube-config.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dt-kubeconfig-'));
  mkdirSync(join(dir, 'pki'));
  writeFileSync(join(dir, 'pki', 'ca.crt'), 'CA PEM');
  writeFileSync(join(dir, 'pki', 'node.crt'), 'CERT PEM');
  writeFileSync(join(dir, 'pki', 'node.key'), 'KEY PEM');
  writeFileSync(join(dir, 'token'), 'file-token\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(name: string, user: string, cluster = '    server: https://10.0.0.1:6443\n    certificate-authority: pki/ca.crt'): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
${cluster}
contexts:
- name: lab
  context:
    cluster: lab
    user: me
current-context: lab
users:
- name: me
  user:
${user}
`,
  );
  return path;
}

const fail = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DroptraceError);
    expect((e as DroptraceError).exitCode).toBe(2);
    return (e as DroptraceError).message;
  }
  return 'no error';
};

describe('kubeconfigTarget', () => {
  it('reads server, CA and client certificate files relative to the kubeconfig', async () => {
    const p = config('certs', '    client-certificate: pki/node.crt\n    client-key: pki/node.key');
    const t = kubeconfigTarget(p);
    expect([t.server.href, t.ca?.toString(), t.cert?.toString(), t.key?.toString(), t.insecure, t.origin]).toEqual([
      'https://10.0.0.1:6443/',
      'CA PEM',
      'CERT PEM',
      'KEY PEM',
      false,
      `kubeconfig ${p} context lab`,
    ]);
    expect(await t.authorization()).toBeUndefined();
  });

  it('reads inline data, tokens and token files', async () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const inline = kubeconfigTarget(
      config('inline', '    token: abc.def', `    server: https://[fd00::1]:6443/k8s/clusters/c-x\n    certificate-authority-data: ${b64('INLINE CA')}\n    insecure-skip-tls-verify: true`),
    );
    expect([inline.server.hostname, inline.server.pathname, inline.ca?.toString(), inline.insecure, await inline.authorization()]).toEqual([
      '[fd00::1]',
      '/k8s/clusters/c-x',
      'INLINE CA',
      true,
      'Bearer abc.def',
    ]);
    const tf = kubeconfigTarget(config('tokenfile', '    tokenFile: token'));
    expect(await tf.authorization()).toBe('Bearer file-token');
  });

  it('runs an exec credential plugin and caches its token until it expires', async () => {
    const plugin = join(dir, 'plugin.sh');
    const count = join(dir, 'plugin.count');
    writeFileSync(
      plugin,
      `#!/bin/sh
echo x >> ${count}
test "$DT_PLUGIN_ENV" = set || exit 3
echo "$KUBERNETES_EXEC_INFO" | grep -q '"interactive":false' || exit 4
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"exec-%s","expirationTimestamp":"2999-01-01T00:00:00Z"}}' "$1"
`,
    );
    chmodSync(plugin, 0o755);
    const t = kubeconfigTarget(
      config(
        'exec',
        `    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ./plugin.sh
      args:
      - arg1
      env:
      - name: DT_PLUGIN_ENV
        value: set
      interactiveMode: Never`,
      ),
    );
    expect([await t.authorization(), await t.authorization()]).toEqual(['Bearer exec-arg1', 'Bearer exec-arg1']);
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(count, 'utf8')).toBe('x\n');
    const bad = kubeconfigTarget(config('exec-bad', '    exec:\n      command: /bin/false'));
    await expect(bad.authorization()).rejects.toThrow('exec credential plugin /bin/false failed: Command failed: /bin/false');
  });

  it('names the file and the problem', () => {
    expect(
      [
        () => kubeconfigTarget(join(dir, 'missing')),
        () => kubeconfigTarget(config('yaml', '    token: x\n\tuser: x')),
        () => kubeconfigTarget(config('nocert', '    client-certificate: pki/node.crt')),
        () => kubeconfigTarget(config('nofile', '    client-certificate: pki/gone.crt\n    client-key: pki/node.key')),
        () => kubeconfigTarget(config('authprov', '    auth-provider:\n      name: gcp')),
        () => kubeconfigTarget(config('noserver', '    token: x', '    certificate-authority: pki/ca.crt')),
        () => kubeconfigTarget(config('ctx', '    token: x'), { context: 'prod' }),
        () => kubeconfigTarget(config('http', '    token: x', '    server: http://10.0.0.1:8080')),
        () => kubeconfigTarget(config('alias', '    token: *nowhere')),
      ].map(fail),
    ).toEqual([
      `kubeconfig ${join(dir, 'missing')}: cannot read it (ENOENT)`,
      `kubeconfig ${join(dir, 'yaml')}: line 18 column 1: tabs are not allowed as indentation`,
      `kubeconfig ${join(dir, 'nocert')}: line 17: user "me" has a client certificate but no client key`,
      `kubeconfig ${join(dir, 'nofile')}: cannot read client-certificate ${join(dir, 'pki', 'gone.crt')} (ENOENT)`,
      `kubeconfig ${join(dir, 'authprov')}: line 17: user "me" uses an auth-provider, which droptrace does not support (use a token, a client certificate or an exec plugin)`,
      `kubeconfig ${join(dir, 'noserver')}: line 6: cluster "lab" has no valid server URL`,
      `kubeconfig ${join(dir, 'ctx')}: no context named "prod"`,
      `kubeconfig ${join(dir, 'http')}: line 6: cluster "lab": server http://10.0.0.1:8080 is plain http, which sends the credentials in clear (use https://, or pass --kube-allow-http for a local proxy)`,
      `kubeconfig ${join(dir, 'alias')}: line 17 column 12: alias *nowhere has no anchor`,
    ]);
  });

  it('takes a plain http:// server only when allowed', async () => {
    const t = kubeconfigTarget(config('http-ok', '    token: x', '    server: http://127.0.0.1:8001'), { allowHttp: true });
    expect([t.server.href, await t.authorization()]).toEqual(['http://127.0.0.1:8001/', 'Bearer x']);
  });

  it('reads block scalars, anchors, aliases and merge keys, as real kubeconfigs have them', async () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const path = join(dir, 'rich');
    writeFileSync(
      path,
      `apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: &prod
    server: https://10.0.0.1:6443
    certificate-authority-data: >-
      ${b64('FOLDED CA')}
- name: prod-internal
  cluster:
    <<: *prod
    tls-server-name: kubernetes.default
contexts:
- name: ops
  context: {cluster: prod-internal, user: ops}
- name: copy
  context: {cluster: prod, user: ops-copy}
current-context: ops
users:
- name: ops
  user:
    exec:
      command: /bin/echo
      args: &args
      - '{"status": {"token": "t-1"}}'
      env: []
- name: ops-copy
  user:
    token: |
      literal-token
`,
    );
    const t = kubeconfigTarget(path);
    expect([t.server.href, t.ca?.toString(), t.tlsServerName, await t.authorization()]).toEqual([
      'https://10.0.0.1:6443/',
      'FOLDED CA',
      'kubernetes.default',
      'Bearer t-1',
    ]);
    // a literal block scalar ends in a newline, which must not reach the Authorization header
    const copy = kubeconfigTarget(path, { context: 'copy' });
    expect([copy.origin, copy.tlsServerName, await copy.authorization()]).toEqual([`kubeconfig ${path} context copy`, undefined, 'Bearer literal-token']);
  });
});

describe('inClusterTarget', () => {
  it('uses the service account when running in a pod, re-reading the token each time', async () => {
    const sa = join(dir, 'sa');
    mkdirSync(sa);
    writeFileSync(join(sa, 'token'), 'tok-1');
    writeFileSync(join(sa, 'ca.crt'), 'SA CA');
    const t = inClusterTarget({ env: { KUBERNETES_SERVICE_HOST: 'fd00:96::1', KUBERNETES_SERVICE_PORT: '443' }, dir: sa });
    expect([t?.server.href, t?.ca?.toString(), await t?.authorization()]).toEqual(['https://[fd00:96::1]/', 'SA CA', 'Bearer tok-1']);
    writeFileSync(join(sa, 'token'), 'tok-2'); // the kubelet rotated it
    expect(await t?.authorization()).toBe('Bearer tok-2');
    expect(inClusterTarget({ env: {}, dir: sa })).toBeNull();
    expect(inClusterTarget({ env: { KUBERNETES_SERVICE_HOST: '10.96.0.1' }, dir: join(dir, 'nope') })).toBeNull();
  });
});

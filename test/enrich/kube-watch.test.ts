/**
 * The API client against a stand-in API server (real protocol, HTTPS, real Pod objects), and
 * the stand-in against real kubectl.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { inClusterTarget } from '../../src/enrich/kube-config.js';
import { PodWatcher } from '../../src/enrich/kube-watch.js';
import type { PodWatcherOptions } from '../../src/enrich/kube-watch.js';
import { PodIndex } from '../../src/enrich/pod-index.js';
import { startPodAttribution } from '../../src/enrich/pods.js';
import type { DropEvent } from '../../src/pipeline/events.js';
import type { PodAttribution } from '../../src/enrich/pods.js';
import { FakeApiServer, makeTls } from './fake-apiserver.js';
import type { Tls } from './fake-apiserver.js';
import { podObject } from './pod-objects.js';

const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.dt-test-token';
const ms = (hms: string) => Date.parse(`2026-03-01T${hms}Z`);

async function waitFor(what: string, pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let dir: string;
let tls: Tls;
const closers: Array<() => unknown> = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dt-kube-'));
  tls = makeTls(dir);
});
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function server(): Promise<FakeApiServer> {
  const s = new FakeApiServer(tls, TOKEN);
  await s.listen(0);
  closers.push(() => s.stop());
  return s;
}

/** A service-account directory and environment pointing at `s`, as in a pod. */
function inCluster(s: FakeApiServer) {
  const sa = join(dir, `sa-${s.port}`);
  mkdirSync(sa, { recursive: true });
  writeFileSync(join(sa, 'token'), `${TOKEN}\n`);
  writeFileSync(join(sa, 'ca.crt'), tls.ca);
  writeFileSync(join(sa, 'namespace'), 'droptrace');
  const target = inClusterTarget({ env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(s.port) }, dir: sa });
  if (!target) throw new Error('no in-cluster target');
  return target;
}

const fast: PodWatcherOptions = { node: 'dt-node1', minBackoffMs: 20, maxBackoffMs: 200, watchTimeoutSeconds: 30, random: () => 0.5 };

function watcher(s: FakeApiServer, clock: { t: number }, extra: PodWatcherOptions = {}) {
  const idx = new PodIndex({ now: () => clock.t });
  const w = new PodWatcher(idx, inCluster(s), { ...fast, now: () => clock.t, ...extra });
  closers.push(() => w.close());
  w.start();
  return { idx, w };
}

const WEB_A = 'a1a1a1a1-0000-4000-8000-00000000000a';
const WEB_B = 'b2b2b2b2-0000-4000-8000-00000000000b';
const CART = 'c3c3c3c3-0000-4000-8000-00000000000c';
const JOB = 'd4d4d4d4-0000-4000-8000-00000000000d';
const KP = 'e5e5e5e5-0000-4000-8000-00000000000e';
const ELSEWHERE = 'f6f6f6f6-0000-4000-8000-00000000000f';

function seed(s: FakeApiServer): void {
  s.put(podObject({ name: 'web-6b7f9c8d4d-aaaaa', uid: WEB_A, ips: ['10.244.1.7', 'fd00:10:244:1::7'], networkReady: '2026-03-01T10:00:03Z' }));
  s.put(podObject({ name: 'cart-0', uid: CART }));
  s.put(podObject({ name: 'kube-proxy-x7k2p', namespace: 'kube-system', uid: KP, hostNetwork: true, networkReady: '2026-03-01T09:00:00Z' }));
  s.put(podObject({ name: 'web-6b7f9c8d4d-zzzzz', uid: ELSEWHERE, node: 'dt-node2', ips: ['10.244.2.5'], networkReady: '2026-03-01T10:00:03Z' }));
}

describe('PodWatcher against a stand-in API server', () => {
  it("lists this node's pods, then follows deletes, adds, IP reuse and completed jobs", async () => {
    const s = await server();
    seed(s);
    const clock = { t: ms('10:01:00') };
    const { idx, w } = watcher(s, clock);
    expect(await w.synced(5000)).toBe(true);
    expect(s.requests[0]).toEqual({ path: '/api/v1/pods', query: { fieldSelector: 'spec.nodeName=dt-node1', limit: '500' }, auth: 'token', status: 200 });
    expect([...idx.pods()].map((p) => [p.pod.name, p.hostNetwork, [...p.ips]])).toEqual([
      ['kube-proxy-x7k2p', true, []],
      ['cart-0', false, []],
      ['web-6b7f9c8d4d-aaaaa', false, ['10.244.1.7', 'fd00:10:244:1::7']],
    ]);
    expect(idx.byIp('10.0.0.11', ms('10:01:00'))).toBeUndefined();
    await waitFor('the watch', () => s.watchCount() === 1);
    const watchReq = s.requests[1]!;
    expect(watchReq.query).toEqual({
      fieldSelector: 'spec.nodeName=dt-node1',
      watch: 'true',
      resourceVersion: String(s.rv),
      allowWatchBookmarks: 'true',
      timeoutSeconds: '30',
    });

    // rolling update: web-a goes at 10:05:00, web-b gets its IP at 10:05:02
    clock.t = ms('10:05:00');
    s.delete(WEB_A);
    await waitFor('web-a to end', () => idx.get(WEB_A)?.end === ms('10:05:00'));
    clock.t = ms('10:05:02');
    s.put(podObject({ name: 'web-6b7f9c8d4d-bbbbb', uid: WEB_B, ips: ['10.244.1.7'], created: '2026-03-01T10:04:58Z', networkReady: '2026-03-01T10:05:02Z' }));
    await waitFor('web-b', () => idx.get(WEB_B) !== undefined);
    expect(['10:04:59', '10:05:01', '10:05:02', '10:30:00'].map((t) => idx.byIp('10.244.1.7', ms(t))?.pod.name ?? null)).toEqual([
      'web-6b7f9c8d4d-aaaaa',
      null,
      'web-6b7f9c8d4d-bbbbb',
      'web-6b7f9c8d4d-bbbbb',
    ]);
    // web-a's IPv6 was not reused: its claim still ends with the pod
    expect(idx.byIp('fd00:10:244:1::7', ms('10:06:00'))).toBeUndefined();

    // a pending pod gets its IP; a job completes and its IP is free from then on
    s.put(podObject({ name: 'cart-0', uid: CART, ips: ['10.244.1.20'], networkReady: '2026-03-01T10:06:00Z' }));
    s.put(podObject({ name: 'backup-29012345-abcde', uid: JOB, ips: ['10.244.1.30'], networkReady: '2026-03-01T10:06:30Z' }));
    s.put(podObject({ name: 'backup-29012345-abcde', uid: JOB, ips: ['10.244.1.30'], phase: 'Succeeded', networkReady: '2026-03-01T10:06:30Z', finished: '2026-03-01T10:07:00Z' }));
    // a pod of another node never reaches us; a bookmark shows when everything before it was read
    s.put(podObject({ name: 'web-6b7f9c8d4d-yyyyy', uid: '99999999-0000-4000-8000-000000000099', node: 'dt-node2', ips: ['10.244.2.6'] }));
    s.bookmark();
    await waitFor('the bookmark', () => w.stats.resourceVersion === String(s.rv));
    expect(idx.byIp('10.244.1.20', ms('10:06:01'))?.pod.name).toBe('cart-0');
    expect(['10:06:59', '10:07:01'].map((t) => idx.byIp('10.244.1.30', ms(t))?.pod.name ?? null)).toEqual(['backup-29012345-abcde', null]);
    expect(idx.get('99999999-0000-4000-8000-000000000099')).toBeUndefined();
    expect(w.stats).toMatchObject({ lists: 1, relists: 0, watches: 1, failures: 0, events: 6 });
  });

  it('resumes from its resourceVersion after an API server restart, without a new list', async () => {
    const s = await server();
    seed(s);
    const clock = { t: ms('10:01:00') };
    const statuses: string[] = [];
    const { idx, w } = watcher(s, clock, { onStatus: (st) => statuses.push(st.error ? `${st.state}: ${st.error}` : st.state) });
    await w.synced(5000);
    await waitFor('the watch', () => s.watchCount() === 1);
    const rv = w.stats.resourceVersion;
    const port = s.port;
    await s.stop();
    s.put(podObject({ name: 'late-0', uid: JOB, ips: ['10.244.1.40'], networkReady: '2026-03-01T10:02:00Z' }));
    await waitFor('a failed reconnect', () => w.stats.failures >= 1);
    const before = s.requests.length;
    await s.listen(port);
    await waitFor('the pod added while the server was down', () => idx.byIp('10.244.1.40', ms('10:03:00')) !== undefined);
    const after = s.requests.slice(before);
    expect(after.map((r) => [r.query.watch ?? 'list', r.query.resourceVersion])).toEqual([['true', rv]]);
    expect(w.stats.lists).toBe(1);
    expect(statuses[0]).toBe('synced');
    expect(statuses[1]).toMatch(/^retrying: /);
    expect(statuses[2]).toBe('synced');
  });

  it('lists again on 410 Gone and ends the pods deleted while it could not watch', async () => {
    const s = await server();
    seed(s);
    const clock = { t: ms('10:01:00') };
    const { idx, w } = watcher(s, clock);
    await w.synced(5000);
    await waitFor('the watch', () => s.watchCount() === 1);
    const port = s.port;
    await s.stop();
    clock.t = ms('10:10:00');
    s.delete(CART);
    s.compact();
    await s.listen(port);
    await waitFor('the relist', () => w.stats.relists === 1 && w.stats.lists === 2);
    await waitFor('the new watch', () => s.watchCount() === 1);
    expect(idx.get(CART)?.end).toBe(ms('10:10:00'));
    expect(idx.get(WEB_A)?.end).toBe(Infinity);
    const tail = s.requests.filter((r) => r.path === '/api/v1/pods').slice(-3);
    expect(tail.map((r) => [r.query.watch ?? 'list', r.status])).toEqual([
      ['true', 200], // the ERROR event with code 410 comes inside a 200 stream
      ['list', 200],
      ['true', 200],
    ]);
  });

  it('pages a large list and starts over when the continue token expires', async () => {
    const s = await server();
    for (let i = 0; i < 5; i++) s.put(podObject({ name: `p-${i}`, uid: `00000000-0000-4000-8000-00000000000${i}`, ips: [`10.244.1.${100 + i}`] }));
    let pages = 0;
    s.onRequest = (r) => {
      // between the first two pages, something changes and etcd compacts past the list's version
      if (r.query.continue && pages++ === 0) {
        s.put(podObject({ name: 'elsewhere-0', uid: ELSEWHERE, node: 'dt-node2' }));
        s.compact();
      }
    };
    const { idx, w } = watcher(s, { t: ms('10:01:00') }, { pageSize: 2 });
    expect(await w.synced(5000)).toBe(true);
    expect(idx.size).toBe(5);
    const lists = s.requests.filter((r) => r.query.watch === undefined);
    expect(lists.map((r) => [r.query.limit, r.query.continue ? 'continue' : '-', r.status])).toEqual([
      ['2', '-', 200],
      ['2', 'continue', 410],
      ['2', '-', 200],
      ['2', 'continue', 200],
      ['2', 'continue', 200],
    ]);
  });

  it('says why the API refuses (RBAC) and keeps retrying with backoff', async () => {
    const s = await server();
    s.failWith = 403;
    const { w } = watcher(s, { t: 0 });
    await waitFor('two failures', () => w.stats.failures >= 2);
    expect(w.stats.lastError).toBe(
      'HTTP 403: pods is forbidden: User "system:serviceaccount:droptrace:droptrace" cannot list resource "pods" in API group "" at the cluster scope',
    );
    s.failWith = null;
    expect(await w.synced(5000)).toBe(true);
  });
});

describe('startPodAttribution with --kubeconfig (client certificate)', () => {
  it('starts while the API is down, warns once, counts failures, and recovers', async () => {
    const s = new FakeApiServer(tls, TOKEN);
    await s.listen(0);
    const port = s.port;
    await s.stop();
    closers.push(() => s.stop());
    seed(s);
    const kubeconfig = join(dir, 'kubelet.conf');
    writeFileSync(
      kubeconfig,
      `apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: ca.crt
    server: https://127.0.0.1:${port}
  name: default-cluster
contexts:
- context:
    cluster: default-cluster
    namespace: default
    user: default-auth
  name: default-context
current-context: default-context
preferences: {}
users:
- name: default-auth
  user:
    client-certificate: client.crt
    client-key: client.key
`,
    );
    const warnings: string[] = [];
    const pods: PodAttribution = await startPodAttribution({
      kubeconfig,
      node: 'dt-node1',
      discovery: false,
      syncTimeoutMs: 300,
      warn: (l) => warnings.push(l),
      watcherOptions: fast,
    });
    closers.push(() => pods.close());
    expect(pods.describe()).toBe(`api (kubeconfig ${kubeconfig} context default-context, node dt-node1)`);
    expect(pods.failures()).toBeGreaterThan(0);
    expect(warnings).toEqual([
      `kubernetes api (kubeconfig ${kubeconfig} context default-context): connect ECONNREFUSED 127.0.0.1:${port}; pods from other sources only, retrying`,
    ]);
    await s.listen(port);
    expect(await pods.watcher!.synced(5000)).toBe(true);
    expect(s.requests[0]?.auth).toBe('cert:system:node:dt-node1');
    expect(pods.index.byIp('10.244.1.7', ms('10:01:00'))?.pod.name).toBe('web-6b7f9c8d4d-aaaaa');
    expect(warnings[1]).toBe(`kubernetes api (kubeconfig ${kubeconfig} context default-context): back`);

    const drop: DropEvent = {
      type: 'drop',
      time: '2026-03-01T10:01:00.000000001Z',
      family: 'netfilter',
      kind: 'conntrack_table_full',
      reason: 'NF_CONNTRACK_FULL',
      location: 'nf_conntrack_in+0x5d6',
      netns: 4026531840,
      ifname: 'eth0',
      ifindex: 2,
      flow: { proto: 'udp', src: '192.0.2.1', dst: '10.244.1.7', sport: 40000, dport: 8080 },
      pod: null,
      count: 1,
      explain: '',
      hint: '',
    };
    pods.enricher.enrich(drop);
    expect([drop.pod?.name, drop.pod_match]).toEqual(['web-6b7f9c8d4d-aaaaa', 'dst']);
  });
});

/** kubectl binaries to check the stand-in against: $DROPTRACE_KUBECTL (colon-separated), else kubectl on PATH. */
const kubectls = (process.env.DROPTRACE_KUBECTL ?? 'kubectl')
  .split(':')
  .filter((k) => k && spawnSync(k, ['version', '--client'], { stdio: 'ignore', timeout: 10_000 }).status === 0);
if (kubectls.length === 0) console.warn('skipping the kubectl checks of the stand-in API server: no kubectl');

describe.skipIf(kubectls.length === 0)('the stand-in API server speaks the real protocol', () => {
  for (const kubectl of kubectls) {
    it(`${kubectl}: lists and watches pods through it`, async () => {
      const s = await server();
      seed(s);
      const kubeconfig = join(dir, `kubeconfig-${s.port}`);
      writeFileSync(
        kubeconfig,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'stand-in', cluster: { server: s.url, 'certificate-authority-data': tls.ca.toString('base64') } }],
          users: [{ name: 'sa', user: { token: TOKEN } }],
          contexts: [{ name: 'stand-in', context: { cluster: 'stand-in', user: 'sa' } }],
          'current-context': 'stand-in',
        }),
      );
      const env = { ...process.env, HOME: dir, KUBECACHEDIR: join(dir, `cache-${s.port}`) };
      // never spawnSync: the stand-in answers from this very event loop
      const run = (...args: string[]) =>
        new Promise<string>((resolve, reject) =>
          execFile(kubectl, ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8', env, timeout: 30_000 }, (e, stdout, stderr) =>
            e ? reject(new Error(`${kubectl} ${args.join(' ')}: ${stderr}`)) : resolve(stdout),
          ),
        );
      const list = JSON.parse(await run('get', 'pods', '-A', '-o', 'json')) as { kind: string; items: Array<{ metadata: { namespace: string; name: string } }> };
      expect(list.kind).toBe('List');
      expect(list.items.map((i) => `${i.metadata.namespace}/${i.metadata.name}`)).toEqual([
        'kube-system/kube-proxy-x7k2p',
        'shop/cart-0',
        'shop/web-6b7f9c8d4d-aaaaa',
        'shop/web-6b7f9c8d4d-zzzzz',
      ]);
      expect((await run('get', 'pods', '-n', 'shop', '--field-selector', 'spec.nodeName=dt-node1', '-o', 'name')).trim().split('\n')).toEqual([
        'pod/cart-0',
        'pod/web-6b7f9c8d4d-aaaaa',
      ]);

      const child = spawn(kubectl, ['--kubeconfig', kubeconfig, 'get', 'pods', '-A', '--watch', '--output-watch-events', '-o', 'json', '--field-selector', 'spec.nodeName=dt-node1'], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      closers.push(() => child.kill());
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      // one WatchEvent per line: {"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod",...}}
      const events = () =>
        out
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as { type: string; object: { kind: string; metadata: { name: string } } })
          .map((e) => `${e.type} ${e.object.kind} ${e.object.metadata.name}`);
      await waitFor(`kubectl's initial list (stderr: ${err})`, () => events().length >= 3, 15_000);
      await waitFor('kubectl to watch', () => s.watchCount() === 1, 15_000);
      s.delete(WEB_A);
      s.put(podObject({ name: 'web-6b7f9c8d4d-bbbbb', uid: WEB_B, ips: ['10.244.1.7'], networkReady: '2026-03-01T10:05:02Z' }));
      await waitFor('the watch events', () => events().length >= 5, 15_000);
      expect(events()).toEqual([
        'ADDED Pod kube-proxy-x7k2p',
        'ADDED Pod cart-0',
        'ADDED Pod web-6b7f9c8d4d-aaaaa',
        'DELETED Pod web-6b7f9c8d4d-aaaaa',
        'ADDED Pod web-6b7f9c8d4d-bbbbb',
      ]);
      const watch = s.requests.find((r) => r.query.watch === 'true' || r.query.watch === '1');
      expect(watch?.query.fieldSelector).toBe('spec.nodeName=dt-node1');
      expect(Number(watch?.query.resourceVersion)).toBeGreaterThan(1000);
    }, 60_000);
  }
});

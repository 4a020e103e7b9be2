/**
 * The API client against a broken or hostile API server: an endless watch line, an endless list
 * body, a list page of 200,000 items, a trickle and a watch gone silent (a half-open connection).
 * Caps and timeouts are set small here; each test waits on the watcher's counters, never on time.
 */
import type { ServerResponse } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { inClusterTarget } from '../../src/enrich/kube-config.js';
import { PodWatcher } from '../../src/enrich/kube-watch.js';
import type { PodWatcherOptions } from '../../src/enrich/kube-watch.js';
import { PodIndex } from '../../src/enrich/pod-index.js';
import { FakeApiServer, makeTls } from './fake-apiserver.js';
import type { RequestLog, Tls } from './fake-apiserver.js';
import { podObject } from './pod-objects.js';

const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.dt-test-token';
const WEB = 'a1a1a1a1-0000-4000-8000-00000000000a';
const LATE = 'b2b2b2b2-0000-4000-8000-00000000000b';

async function waitFor(what: string, pred: () => boolean, timeoutMs = 10_000): Promise<void> {
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
  dir = mkdtempSync(join(tmpdir(), 'dt-kube-limits-'));
  tls = makeTls(dir);
});
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function setup(extra: PodWatcherOptions, intercept: (log: RequestLog, res: ServerResponse) => boolean) {
  const s = new FakeApiServer(tls, TOKEN);
  await s.listen(0);
  closers.push(() => s.stop());
  s.put(podObject({ name: 'web-0', uid: WEB, ips: ['10.244.1.7'] }));
  s.intercept = intercept;
  const sa = join(dir, `sa-${s.port}`);
  mkdirSync(sa, { recursive: true });
  writeFileSync(join(sa, 'token'), TOKEN);
  writeFileSync(join(sa, 'ca.crt'), tls.ca);
  const target = inClusterTarget({ env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(s.port) }, dir: sa })!;
  const idx = new PodIndex();
  const w = new PodWatcher(idx, target, { node: 'dt-node1', minBackoffMs: 20, maxBackoffMs: 100, watchTimeoutSeconds: 60, random: () => 0.5, ...extra });
  closers.push(() => w.close());
  w.start();
  return { s, idx, w };
}

/** Writes `chunk` again and again until the client goes away; returns how many bytes went out. */
function endless(res: ServerResponse, head: string, chunk: string): { bytes: number } {
  const sent = { bytes: 0 };
  res.writeHead(200, { 'content-type': 'application/json' });
  res.write(head);
  let closed = false;
  res.on('close', () => (closed = true));
  const more = () => {
    if (closed) return;
    sent.bytes += chunk.length;
    if (res.write(chunk)) setImmediate(more);
    else res.once('drain', more);
  };
  more();
  return sent;
}

/** One byte every 20 ms, never a newline. */
function trickle(res: ServerResponse, head: string): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.write(head);
  const t = setInterval(() => res.write(' '), 20);
  res.on('close', () => clearInterval(t));
}

const isWatch = (log: RequestLog) => log.query.watch === 'true';

describe('PodWatcher against a broken API server', () => {
  it('drops a watch line past its cap instead of buffering it, then watches again', async () => {
    let streams = 0;
    const { s, idx, w } = await setup({ maxLineBytes: 64 * 1024 }, (log, res) => {
      if (!isWatch(log) || streams++ > 0) return false;
      endless(res, '{"type":"ADDED","object":{"metadata":{"annotations":{"x":"', 'x'.repeat(16 * 1024));
      return true;
    });
    await waitFor('the failure', () => w.stats.failures === 1);
    expect(w.stats.lastError).toBe('watch line longer than 64 KiB');
    await waitFor('a second watch', () => s.watchCount() === 1);
    s.put(podObject({ name: 'late-0', uid: LATE, ips: ['10.244.1.9'] }));
    await waitFor('the pod from the new watch', () => idx.get(LATE) !== undefined);
    expect([w.stats.lists, w.stats.failures, w.stats.idleRestarts]).toEqual([1, 1, 0]);
  });

  it('drops a list page past its cap, and lists again', async () => {
    let lists = 0;
    const { w, idx } = await setup({ maxBodyBytes: 256 * 1024 }, (log, res) => {
      if (isWatch(log) || lists++ > 0) return false;
      endless(res, '{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[', '{},'.repeat(4096));
      return true;
    });
    expect(await w.synced(10_000)).toBe(true);
    expect([w.stats.failures, w.stats.lastError, w.stats.lists]).toEqual([1, 'pod list page larger than 256 KiB', 1]);
    expect(idx.get(WEB)?.pod.name).toBe('web-0');
  });

  it('takes a list page of 200,000 items', async () => {
    const { w } = await setup({}, (log, res) => {
      if (isWatch(log)) return false;
      res.writeHead(200, { 'content-type': 'application/json' });
      // items that are not pods are skipped: the page size is what is tested
      res.end(`{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[${Array(200_000).fill('{}').join(',')}]}`);
      return true;
    });
    expect(await w.synced(10_000)).toBe(true);
    expect([w.stats.lists, w.stats.failures, w.stats.resourceVersion]).toEqual([1, 0, '7']);
  });

  it('gives up a list trickled a byte at a time at its deadline', async () => {
    let lists = 0;
    const { w } = await setup({ requestTimeoutMs: 300 }, (log, res) => {
      if (isWatch(log) || lists++ > 0) return false;
      trickle(res, '{"kind":"PodList","items":[');
      return true;
    });
    expect(await w.synced(10_000)).toBe(true);
    expect([w.stats.failures, w.stats.lastError, w.stats.lists]).toEqual([1, 'pod list page not complete within 0.3 s', 1]);
  });

  it('restarts a watch that trickles bytes but no line, from the same resourceVersion', async () => {
    let streams = 0;
    const { s, idx, w } = await setup({ watchIdleMs: 300 }, (log, res) => {
      if (!isWatch(log) || streams++ > 0) return false;
      trickle(res, '{"type":"ADDED"');
      return true;
    });
    await waitFor('the idle restart', () => w.stats.idleRestarts === 1);
    await waitFor('a second watch', () => s.watchCount() === 1);
    const watches = s.requests.filter(isWatch);
    expect(watches.map((r) => r.query.resourceVersion)).toEqual([w.stats.resourceVersion, w.stats.resourceVersion]);
    s.put(podObject({ name: 'late-0', uid: LATE, ips: ['10.244.1.9'] }));
    await waitFor('the pod from the new watch', () => idx.get(LATE) !== undefined);
    // a silent watch is not an API failure: no relist, nothing in failures
    expect([w.stats.lists, w.stats.relists, w.stats.failures]).toEqual([1, 0, 0]);
  });

  it('notices a watch gone silent (half-open) and resumes it', async () => {
    let streams = 0;
    const held: ServerResponse[] = [];
    const { s, idx, w } = await setup({ watchIdleMs: 300 }, (log, res) => {
      if (!isWatch(log) || streams++ > 1) return false;
      if (streams === 1) {
        // headers, then nothing, ever: what a client sees of a peer that vanished
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
      }
      // the second watch never even gets its headers
      held.push(res);
      return true;
    });
    closers.push(() => held.forEach((r) => r.destroy()));
    await waitFor('two idle restarts', () => w.stats.idleRestarts === 2);
    await waitFor('a third watch', () => s.watchCount() === 1);
    s.put(podObject({ name: 'late-0', uid: LATE, ips: ['10.244.1.9'] }));
    await waitFor('the pod from the new watch', () => idx.get(LATE) !== undefined);
    // every watch after the first began with an idle restart, none with a failure (on a loaded
    // machine the third watch may itself go silent for 0.3 s before the pod comes: a fourth)
    const watches = s.requests.filter(isWatch).length;
    expect([w.stats.lists, w.stats.relists, w.stats.failures, watches - w.stats.idleRestarts]).toEqual([1, 0, 0, 1]);
  });
});

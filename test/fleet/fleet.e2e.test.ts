/**
 * End to end, as root: three droptrace processes play three nodes (each its own --node-name,
 * its own namespace pair via --netns, its own metrics port), a real Prometheus (Debian's,
 * test/helpers/prometheus.ts, 1 s scrapes) scrapes them, drops of different kinds are made on
 * each (an iptables DROP rule: netfilter_rule; a UDP port nobody listens on: no_socket). Then
 * `droptrace top --prometheus` in tmux must show the three nodes ranked with the right kinds and
 * drill into one, and `droptrace stream --prometheus` must give the counts each node's own
 * /metrics says, exactly. Waits on conditions (lines, screens, scrapes), never on sleeps.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePair, sendUdp } from '../helpers/netns.js';
import type { Pair } from '../helpers/netns.js';
import { freePort, prometheusMissing, startPrometheus } from '../helpers/prometheus.js';
import type { Prometheus } from '../helpers/prometheus.js';
import { schemaErrors } from '../helpers/schema.js';
import { CLI, startStream } from '../helpers/stream.js';
import type { StreamRun } from '../helpers/stream.js';

const isRoot = process.getuid?.() === 0;
const hasTmux = spawnSync('tmux', ['-V']).status === 0;
const why = !isRoot
  ? 'it needs root'
  : !hasTmux
    ? 'tmux is not installed'
    : !existsSync(CLI)
      ? 'dist/ is not built (npx tsc -p tsconfig.json)'
      : prometheusMissing();
if (why) console.warn(`skipping the fleet view end-to-end test (droptrace top/stream --prometheus): ${why}`);

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What one node gets: UDP to a dropped port (netfilter_rule) and to a closed one (no_socket). */
interface Plan {
  name: string;
  netfilter: number;
  noSocket: number;
}

/** `sum by (kind)` of droptrace_drops_total in a /metrics text. */
function kindsOf(metrics: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of metrics.matchAll(/^droptrace_drops_total\{([^}]*)\} (\S+)$/gm)) {
    const kind = /(?:^|,)kind="([^"]*)"/.exec(m[1]!)![1]!;
    out[kind] = (out[kind] ?? 0) + Number(m[2]);
  }
  // by name: a series' place in /metrics is when its first drop came, and rule drops wait for
  // their rule's snapshot, so a no_socket drop sent after them may be exposed first
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

const expected = (p: Plan): Record<string, number> => ({ ...(p.netfilter ? { netfilter_rule: p.netfilter } : {}), ...(p.noSocket ? { no_socket: p.noSocket } : {}) });

describe.skipIf(why !== '')('the fleet view over a real Prometheus and three droptrace nodes', () => {
  const id = randomBytes(3).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), 'dtfleet-e2e-'));
  const sock = join(dir, 'tmux.sock');
  const tmux = (...args: string[]) => sh('tmux', ['-S', sock, ...args]);
  // ranked by drops: a, then b, then c; a has both kinds, b and c one each
  const plans: Plan[] = [
    { name: `fleet-a-${id}`, netfilter: 60, noSocket: 10 },
    { name: `fleet-b-${id}`, netfilter: 30, noSocket: 0 },
    { name: `fleet-c-${id}`, netfilter: 0, noSocket: 15 },
  ];
  const pairs: Pair[] = [];
  const nodes: { plan: Plan; pair: Pair; port: number; run: StreamRun }[] = [];
  let prom: Prometheus | undefined;

  beforeAll(async () => {
    try {
      for (const [i, plan] of plans.entries()) {
        const pair = makePair({ names: [`dtfl${id}${i}a`, `dtfl${id}${i}b`], devs: [`dtfa${id}${i}`, `dtfb${id}${i}`], ipv6: false, drop: [{ proto: 'udp', dport: 5301 }] });
        pairs.push(pair);
        const pods = join(dir, `pods-${i}.json`);
        writeFileSync(pods, JSON.stringify([{ namespace: 'shop', name: `web-${i}`, uid: `${id}-${i}`, ips: [pair.ipB], netns: pair.netnsB }]));
        const port = await freePort();
        const run = startStream(['--netns', String(pair.netnsB), '--metrics', `127.0.0.1:${port}`, '--node-name', plan.name, '--pods', pods, '--no-pod-discovery', '--nics', 'none']);
        nodes.push({ plan, pair, port, run });
      }
      await Promise.all(nodes.map((n) => n.run.ready));
      // a long deadline: on a loaded machine a scrape can miss the helper's 1 s scrape timeout for a while
      prom = await startPrometheus({ targets: nodes.map((n) => ({ address: `127.0.0.1:${n.port}`, instance: n.plan.name })), timeoutMs: 90_000 });
    } catch (e) {
      await cleanup();
      throw e;
    }
  }, 180_000);

  async function cleanup() {
    spawnSync('tmux', ['-S', sock, 'kill-server'], { stdio: 'ignore' });
    await Promise.all(nodes.map((n) => n.run.stop()));
    await prom?.stop();
    for (const p of pairs) p.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
  afterAll(cleanup, 60_000);

  const screen = (s: string) => tmux('capture-pane', '-p', '-t', s);
  async function until(session: string, what: string, pred: (s: string) => boolean, timeoutMs = 30_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    let s = '';
    while (Date.now() < end) {
      s = screen(session);
      if (pred(s)) return s;
      if (existsSync(join(dir, `${session}.rc`))) break;
      await sleep(100);
    }
    const err = existsSync(join(dir, `${session}.err`)) ? readFileSync(join(dir, `${session}.err`), 'utf8') : '';
    throw new Error(`timed out waiting for ${what}; screen:\n${s}\nstderr: ${err}`);
  }
  function startTop(session: string, url: string) {
    // CI must not be set for the TUI: Ink then writes no frames until exit
    const cmd = `env -u CI NO_COLOR=1 LANG=C.UTF-8 ${process.execPath} ${CLI} top --prometheus ${url} --since 10m 2>${dir}/${session}.err; echo $? >${dir}/${session}.rc`;
    tmux('-f', '/dev/null', 'new-session', '-d', '-s', session, '-x', '140', '-y', '30', cmd);
  }
  async function quit(session: string) {
    tmux('send-keys', '-t', session, 'q');
    const rc = join(dir, `${session}.rc`);
    const end = Date.now() + 10_000;
    while (!existsSync(rc) && Date.now() < end) await sleep(50);
    expect(readFileSync(rc, 'utf8').trim()).toBe('0');
    expect(readFileSync(join(dir, `${session}.err`), 'utf8').replace(/\x1b\[\?25h/g, '')).toBe('');
  }

  it('says in its header that Prometheus is down, retries, and quits with q', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    startTop('down', url);
    const s = await until('down', 'the down header', (x) => x.includes('PROMETHEUS DOWN'));
    expect(s).toMatch(new RegExp(`^prometheus ${url.replace(/\./g, '\\.')}: connection refused, retrying in [1-5]s$`, 'm'));
    await quit('down');
  });

  it('ranks the three nodes with their kinds, drills into one, and stream gives each node\'s exact counts', async () => {
    for (const n of nodes) {
      if (n.plan.netfilter) sendUdp(n.pair.a, n.pair.ipA, 41000, n.pair.ipB, 5301, n.plan.netfilter);
      if (n.plan.noSocket) sendUdp(n.pair.a, n.pair.ipA, 41001, n.pair.ipB, 5999, n.plan.noSocket);
    }
    // each node's own metrics have every drop (the drops stopped), ...
    const own: Record<string, Record<string, number>> = {};
    for (const n of nodes) {
      const end = Date.now() + 20_000;
      for (;;) {
        own[n.plan.name] = kindsOf(await (await fetch(`http://127.0.0.1:${n.port}/metrics`)).text());
        if (JSON.stringify(own[n.plan.name]) === JSON.stringify(expected(n.plan))) break;
        if (Date.now() > end) throw new Error(`${n.plan.name}'s /metrics never had ${JSON.stringify(expected(n.plan))}: ${JSON.stringify(own[n.plan.name])}`);
        await sleep(200);
      }
    }
    // ... and Prometheus has scraped them since
    const ids = plans.map((p) => p.name).join('|');
    const norm = (x: Record<string, Record<string, number>>) => JSON.stringify(Object.entries(x).map(([k, v]) => [k, Object.entries(v).sort()]).sort());
    await prom!.waitFor(`sum by (node, kind) (droptrace_drops_total{node=~"${ids}"})`, (r) => {
      const got: Record<string, Record<string, number>> = {};
      for (const s of r.result as { metric: Record<string, string>; value: [number, string] }[]) (got[s.metric.node!] ??= {})[s.metric.kind!] = Number(s.value[1]);
      return norm(got) === norm(own);
    });

    // the NDJSON form: one line per node, ranked, with the counts each node's metrics say
    const r = spawnSync(process.execPath, [CLI, 'stream', '--prometheus', prom!.url, '--since', '1h'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; node: string; rank: number; drops: number; kinds: { kind: string; drops: number }[]; pods: { namespace: string; pod: string; drops: number }[]; lost_events: number });
    expect(schemaErrors(lines)).toEqual([]);
    expect(lines.map((l) => [l.type, l.node, l.rank])).toEqual(plans.map((p, i) => ['fleet_node', p.name, i + 1]));
    for (const [i, l] of lines.entries()) {
      const want = own[l.node]!;
      expect(Object.fromEntries(l.kinds.map((k) => [k.kind, k.drops]))).toEqual(want);
      expect(l.drops).toBe(Object.values(want).reduce((a, b) => a + b, 0));
      expect(l.pods).toEqual([{ namespace: 'shop', pod: `web-${i}`, drops: l.drops }]);
      expect(l.lost_events).toBe(0);
    }

    if (process.env.DT_FLEET_RECORD) {
      const { fleetQueries, podKindsQuery } = await import('../../src/fleet/model.js');
      const w = { sinceS: 3600, rateS: 300 };
      const time = Date.now() / 1000;
      const qs: Record<string, string> = { ...fleetQueries(w), podKinds: podKindsQuery(plans[0]!.name, w) };
      const answers: Record<string, unknown> = {};
      for (const [k, q] of Object.entries(qs)) answers[k] = await (await fetch(`${prom!.url}/api/v1/query`, { method: 'POST', body: new URLSearchParams({ query: q, time: String(time) }) })).json();
      writeFileSync(process.env.DT_FLEET_RECORD, JSON.stringify({ time, window: w, node: plans[0]!.name, own, answers }, null, 1));
    }
    // the screen: the same three nodes in the same order, each with its kinds
    startTop('fleet', prom!.url);
    const row = (p: Plan, sel: boolean) =>
      new RegExp(`^${sel ? '›' : ' '}${p.name} +\\d+\\.\\d +${p.netfilter + p.noSocket} +(\\d+%|-) +(\\d+%|-) +0 +0  ${Object.entries(expected(p)).sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${v}`).join(' · ')}$`, 'm');
    let s = await until('fleet', 'three ranked nodes', (x) => plans.every((p, i) => row(p, i === 0).test(x)));
    const order = plans.map((p) => s.indexOf(p.name));
    expect([...order].sort((x, y) => x - y)).toEqual(order);
    expect(s).toMatch(/^droptrace fleet  LIVE   prometheus http:\/\/127\.0\.0\.1:\d+  nodes 3  drops in 10m, rates over 5m$/m);

    // enter: the first node's kinds and its pod with the pod's kinds
    tmux('send-keys', '-t', 'fleet', 'Enter');
    s = await until('fleet', 'the drill-in with the pod\'s kinds', (x) => /^ shop\/web-0 +70 {2}netfilter_rule 60 · no_socket 10$/m.test(x));
    expect(s).toMatch(new RegExp(`^─ ${plans[0]!.name} · drops by kind ─+$`, 'm'));
    expect(s).toMatch(/^ netfilter_rule +\d+\.\d +60$/m);
    expect(s).toMatch(/^ no_socket +\d+\.\d +10$/m);
    tmux('send-keys', '-t', 'fleet', 'Left');
    await until('fleet', 'the node list again', (x) => x.includes('─ nodes by drops/s'));
    await quit('fleet');
  }, 180_000);
});

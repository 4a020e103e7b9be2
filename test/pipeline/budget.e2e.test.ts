/**
 * The global detail budget (--detail-budget), end to end as root: a real many-flows flood
 * (bench/flood.c, 16,384 destination ports, each a flow and a key of its own) into a DROP rule
 * in a throw-away namespace. The per-key limit alone would let a detail event per key through;
 * the budget bounds them all, while every drop is still counted exactly.
 *
 * The bound is counted, not timed. Each CPU opens a budget window at a drop at least a window
 * (1 s of the kernel's window clock) after its last one opened, so over a stream that lived D
 * seconds (measured around it: no drop is counted before attach or after detach) a CPU has at
 * most floor(D / window) + 1 windows, one more for the switch of the window clock from the
 * precise clock to jiffies (probes/droptrace.bpf.c window_clock), and the window clock may run
 * up to CLOCK_SLACK fast against CLOCK_MONOTONIC (a jiffy's length measured over half a second).
 * In each window a CPU sends at most 2 x budget (a key's first event may use a second budget).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inNs, makePair } from '../helpers/netns.js';
import type { Pair } from '../helpers/netns.js';
import { schemaErrors } from '../helpers/schema.js';
import { ROOT, drops, startStream, sumCount } from '../helpers/stream.js';
import type { Line } from '../helpers/stream.js';

const isRoot = process.getuid?.() === 0;
const hasCc = spawnSync('sh', ['-c', 'command -v cc'], { stdio: 'ignore' }).status === 0;
const why = !isRoot ? 'they need root (BPF programs, network namespaces)' : !hasCc ? 'no C compiler (cc) to build bench/flood.c' : '';
if (why) console.warn(`skipping the detail budget e2e tests: ${why}`);

/** many flows, each a key; fewer than the bench's 16,384 so a slow test reader keeps up with the folded lines */
const FLOWS = 4096;
const BASE_PORT = 20000;
const WINDOW_S = 1;
const CLOCK_SLACK = 1.05;

/** Runs bench/flood.c in `ns` for `seconds`; resolves with what it says it sent. */
function flood(bin: string, ns: string, dst: string, seconds: number): Promise<{ sent: number; errors: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, bin, dst, String(BASE_PORT), String(seconds), '-1', String(FLOWS)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as { sent: number; errors: number }) : reject(new Error(`flood exited ${code}: ${err.trim()}`))));
  });
}

/** Packets the DROP rule of the flood ports dropped (iptables' own exact counter). */
function ruleDrops(ns: string): number {
  const out = inNs(ns, 'iptables', ['-L', 'INPUT', '-v', '-x', '-n']);
  const row = out.split('\n').find((l) => l.includes(`dpts:${BASE_PORT}:${BASE_PORT + FLOWS - 1}`));
  if (!row) throw new Error(`no flood rule in:\n${out}`);
  return Number(row.trim().split(/\s+/)[0]);
}

const inFlood = (l: Line) => {
  const port = (l.flow as { dport?: number } | null)?.dport;
  return port !== undefined && port >= BASE_PORT && port < BASE_PORT + FLOWS;
};

describe.skipIf(why !== '')('detail budget under a many-flows flood, end to end', () => {
  let p: Pair;
  let dir: string;
  let bin: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'droptrace-budget-'));
    bin = join(dir, 'flood');
    execFileSync('cc', ['-O2', '-Wall', '-o', bin, join(ROOT, 'bench', 'flood.c')]);
    p = makePair();
    inNs(p.b, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', `${BASE_PORT}:${BASE_PORT + FLOWS - 1}`, '-j', 'DROP']);
  });
  afterAll(() => {
    p?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Streams the netns through a flood of `seconds`, until a stats line shows the kernel counted
   * every drop of the rule; returns the lines and the stream's lifetime (measured around it:
   * nothing is counted before attach or after detach).
   */
  async function run(args: string[], seconds: number) {
    inNs(p.b, 'iptables', ['-Z', 'INPUT']);
    const t0 = process.hrtime.bigint();
    const s = startStream(['--netns', String(p.netnsB), '--counters-interval', '0', '--no-rules', '--stats-interval', '1', ...args]);
    try {
      await s.ready;
      await flood(bin, p.a, p.ipB, seconds);
      const dropped = ruleDrops(p.b);
      let seen = 0;
      let counted = 0;
      // checked on every line: only the new ones (a scan of all would be quadratic)
      await s.until((ls) => {
        for (; seen < ls.length; seen++) {
          const l = ls[seen]!;
          if (l.type === 'stats') counted = (l.kernel as { by_reason: Record<string, number> }).by_reason.NETFILTER_DROP ?? 0;
        }
        return counted >= dropped;
      }, 30_000);
      // detached, the last fold and the final stats line written
      expect((await s.stop()).code).toBe(0);
      const lifetimeS = Number(process.hrtime.bigint() - t0) / 1e9;
      const st = s.lines.find((l) => l.type === 'stats' && l.final === true)!;
      return { lines: s.lines, st, dropped, lifetimeS };
    } finally {
      await s.stop();
    }
  }

  it('sends at most 2 x budget detail events per CPU per window, and counts every drop exactly', async () => {
    const BUDGET = 1;
    const { lines, st, dropped, lifetimeS } = await run(['--detail-budget', String(BUDGET)], 3);
    expect(dropped).toBeGreaterThan(2 * FLOWS); // a real flood: every flow hit, most more than once
    const kernel = st.kernel as { drops: number; by_reason: Record<string, number> };
    const lost = st.lost as { ring_buffer: number; userspace: number; stdout: number };
    // exact: the kernel counted every drop of the rule (iptables' own count), and every drop
    // is in a line (delivered or folded), or counted as skipped when the test read too slowly
    expect(kernel.by_reason.NETFILTER_DROP).toBe(dropped);
    expect((st.events as number) + (st.folded as number)).toBe(kernel.drops);
    expect(sumCount(drops(lines)) + lost.stdout).toBe(kernel.drops);
    expect([lost.ring_buffer, lost.userspace]).toEqual([0, 0]);

    const windows = Math.floor((lifetimeS * CLOCK_SLACK) / WINDOW_S) + 2;
    const bound = cpus().length * 2 * BUDGET * windows;
    expect(st.events as number).toBeGreaterThan(0);
    expect(st.events as number).toBeLessThanOrEqual(bound);
    // keys that never had a detail event come out as folded lines made from the key, at a
    // sibling's place and on its device (every flood key is of one group: same reason, netns,
    // device, IPv4, UDP)
    const flood = drops(lines).filter(inFlood);
    const folded = flood.filter((l) => l.folded === true);
    if (lost.stdout === 0) expect(new Set(folded.map((l) => (l.flow as { dport: number }).dport)).size).toBeGreaterThan(FLOWS - bound);
    for (const l of folded) {
      expect(l).toMatchObject({ kind: 'netfilter_rule', reason: 'NETFILTER_DROP', netns: p.netnsB, flow: { proto: 'udp', src: p.ipA, dst: p.ipB } });
    }
    const firstDelivered = flood.findIndex((l) => l.folded !== true);
    expect(firstDelivered).toBeGreaterThanOrEqual(0);
    const delivered = flood[firstDelivered]!;
    expect(delivered).toMatchObject({ ifname: p.vethB });
    expect(delivered.location).not.toMatch(/^0x/);
    // folded after a sibling reached the folder (the stream's order): its place and device. (A
    // fold may run before the first delivered event reached JS; its lines have neither.)
    const afterSibling = flood.slice(firstDelivered).filter((l) => l.folded === true);
    expect(afterSibling.length).toBeGreaterThan(folded.length / 2);
    for (const l of afterSibling) {
      expect(l).toMatchObject({ location: delivered.location, ifname: p.vethB, ifindex: delivered.ifindex });
      expect(l.explain).toBe(delivered.explain);
    }
    expect(schemaErrors(lines)).toEqual([]);
  }, 90_000);

  it('the bound is not vacuous: with --detail-budget 0 the same flood sends far more detail', async () => {
    const { st, lifetimeS } = await run(['--detail-budget', '0'], 1);
    const kernel = st.kernel as { drops: number };
    const lost = st.lost as { ring_buffer: number; userspace: number };
    const windows = Math.floor((lifetimeS * CLOCK_SLACK) / WINDOW_S) + 2;
    // every key's first drop alone is a detail event, unless the ring buffer or userspace lost it
    expect((st.events as number) + lost.ring_buffer + lost.userspace).toBeGreaterThan(cpus().length * 2 * windows);
    expect((st.events as number) + (st.folded as number)).toBe(kernel.drops);
  }, 60_000);
});

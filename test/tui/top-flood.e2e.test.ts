/**
 * End to end, as root: droptrace top in tmux while a many-flows flood (bench/flood.c, 16,384
 * destination ports, each its own key) hits a DROP rule in a throw-away namespace. The screen
 * must keep moving during the flood (the view sheds detail it has no time for, counted per key
 * and folded back), its total and its exact kernel count must both end equal to the rule's own
 * packet count, and `q` must end the process.
 * Waits on the screen, the flood's exit and the process's exit; no sleeps, no time limits of its own.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { count } from '../../src/tui/format.js';
import { Tmux } from '../helpers/tmux.js';

const ROOT = join(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'dist', 'src', 'cli.js');
const FLOWS = 16384;
const BASE_PORT = 20000;
const FLOOD_SECONDS = 6;
/** floods of FLOOD_SECONDS at most, until the screen was seen moving */
const MAX_FLOODS = 10;
const isRoot = process.getuid?.() === 0;
const hasTmux = spawnSync('tmux', ['-V']).status === 0;
const hasCc = spawnSync('cc', ['--version']).status === 0;
const built = existsSync(MAIN);
const why = !isRoot ? 'it needs root' : !hasTmux ? 'tmux is not installed' : !hasCc ? 'no C compiler for bench/flood.c' : !built ? 'dist/ is not built (npx tsc -p tsconfig.json)' : '';
if (why) console.warn(`skipping the flood test of droptrace top: ${why}`);

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

interface HeaderNumbers {
  total: string;
  kernel: string | null;
}

/** The header's second line: `12.3k drops/s  lost 0  total 1.23M  kernel exact 4.56M  detail shed …` */
function header(screen: string): HeaderNumbers | null {
  // (benign drops, when the namespaces have any, are counted between the two)
  const m = /^\S+ drops\/s {2}lost .*? {2}total (\S+)(?: {2}benign \S+ (?:hidden|shown))?(?: {2}kernel exact (\S+))?/m.exec(screen);
  return m ? { total: m[1]!, kernel: m[2] ?? null } : null;
}

describe.skipIf(why !== '')('droptrace top under a many-flows flood, in tmux', () => {
  const id = randomBytes(3).toString('hex');
  const a = `dttf-${id}-a`;
  const b = `dttf-${id}-b`;
  const n = 100 + (randomBytes(1)[0]! % 100);
  const ipA = `198.18.${n}.1`;
  const ipB = `198.18.${n}.2`;
  const dir = mkdtempSync(join(tmpdir(), 'dttf-e2e-'));
  const t = new Tmux(dir);
  const tmux = (...args: string[]) => t.tmux(...args);
  const screen = () => t.screen();
  // no bound of its own: the flood's test timeout is
  const until = (what: string, pred: (s: string) => boolean) => t.until(what, pred);
  const flood = join(dir, 'flood');
  let inode = 0;


  /** Packets the DROP rule of the flood's port range matched (the kernel's own count). */
  const ruleCount = (): number => {
    const out = sh('ip', ['netns', 'exec', b, 'iptables', '-L', 'INPUT', '-v', '-x', '-n']);
    const line = out.split('\n').find((l) => l.includes('DROP') && l.includes(`dpts:${BASE_PORT}:${BASE_PORT + FLOWS - 1}`));
    if (!line) throw new Error(`no DROP rule in ${b}:\n${out}`);
    return Number(line.trim().split(/\s+/)[0]);
  };

  beforeAll(() => {
    try {
      sh('cc', ['-O2', '-Wall', '-o', flood, join(ROOT, 'bench', 'flood.c')]);
      sh('ip', ['netns', 'add', a]);
      sh('ip', ['netns', 'add', b]);
      sh('ip', ['link', 'add', `dtfa${id}`, 'netns', a, 'type', 'veth', 'peer', 'name', `dtfb${id}`, 'netns', b]);
      for (const [ns, dev, ip] of [
        [a, `dtfa${id}`, ipA],
        [b, `dtfb${id}`, ipB],
      ] as const) {
        // no IPv6: no MLD/ND chatter counted next to the flood's drops
        sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
        sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
        sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', dev]);
        sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
      }
      // a permanent neighbour: no ARP, no neighbour-queue drops at the start of the flood
      const mac = (JSON.parse(sh('ip', ['-n', b, '-j', 'link', 'show', `dtfb${id}`])) as Array<{ address: string }>)[0]!.address;
      sh('ip', ['-n', a, 'neigh', 'replace', ipB, 'lladdr', mac, 'dev', `dtfa${id}`, 'nud', 'permanent']);
      sh('ip', ['netns', 'exec', b, 'iptables', '-A', 'INPUT', '-p', 'udp', '--dport', `${BASE_PORT}:${BASE_PORT + FLOWS - 1}`, '-j', 'DROP']);
      inode = statSync(`/run/netns/${b}`).ino;
    } catch (e) {
      cleanup();
      throw e;
    }
  });

  function cleanup() {
    t.kill();
    for (const ns of [a, b]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  }
  afterAll(cleanup);

  it('keeps drawing during the flood, ends on the kernel count, and q ends the process', async () => {
    const cmd = `env -u CI NO_COLOR=1 LANG=C.UTF-8 ${process.execPath} ${MAIN} top --netns ${inode} 2>${dir}/err; echo $? >${dir}/rc`;
    tmux('-f', '/dev/null', 'new-session', '-d', '-s', 'top', '-x', '120', '-y', '40', cmd);
    await until('the LIVE header', (s) => /^droptrace {2}LIVE /m.test(s));

    /** One flood of FLOOD_SECONDS; resolves with what it sent, once it has exited. */
    const floodOnce = () => {
      const gen = spawn('ip', ['netns', 'exec', a, flood, ipB, String(BASE_PORT), String(FLOOD_SECONDS), '-1', String(FLOWS)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      gen.stdout.on('data', (d: Buffer) => (out += d.toString()));
      return new Promise<{ code: number | null; sent: number }>((resolve) =>
        gen.on('exit', (code) => resolve({ code, sent: code === 0 ? (JSON.parse(out.trim().split('\n').pop()!) as { sent: number }).sent : 0 })),
      );
    };

    // While floods run, the header's total keeps changing (the screen is not frozen). On a
    // machine other work starves, a frame may take seconds: flood again until two totals were
    // drawn during floods (a frozen screen never gets there; the test's timeout is the bound).
    const totals = new Set<string>();
    const kernels = new Set<string>();
    let floods = 0;
    while (totals.size < 2 && floods < MAX_FLOODS) {
      floods++;
      let done = false;
      const run = floodOnce().finally(() => (done = true));
      while (!done) {
        const h = header(screen());
        if (h && h.total !== '0') totals.add(h.total);
        if (h?.kernel && h.kernel !== '0') kernels.add(h.kernel);
        await new Promise((r) => setTimeout(r, 200));
      }
      const f = await run;
      expect(f.code).toBe(0);
      expect(f.sent).toBeGreaterThan(0);
    }
    expect(totals.size).toBeGreaterThanOrEqual(2);
    expect(kernels.size).toBeGreaterThanOrEqual(1);

    // every packet the rule dropped ends up in the header's exact kernel count, and in its
    // total: what the view had no time to describe is folded back per key
    const dropped = ruleCount();
    expect(dropped).toBeGreaterThan(0);
    const want = count(dropped);
    await until(`total ${want}  kernel exact ${want}`, (x) => {
      const h = header(x);
      return h?.kernel === want && h.total === want;
    });

    tmux('send-keys', '-t', 'top', 'q');
    // the process's exit, whenever it comes (the test's own timeout is the bound)
    expect(await t.exitCode(Infinity)).toBe('0');
    expect(readFileSync(join(dir, 'err'), 'utf8').replace(/\x1b\[\?25h/g, '')).toBe('');
  }, 300_000);
});

/**
 * End to end, as root: the real TUI (droptrace top) in tmux on a private socket, live
 * BPF probes, real drops from a throw-away namespace pair (dttui-<id>-a → dttui-<id>-b, an
 * iptables DROP rule, 198.18.x.x only) whose pods come from a --pods file. Asserts what the
 * on-call engineer would read off the screen with capture-pane. Waits on what the screen says
 * (LIVE, then the drops), never on sleeps.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePair, sendUdp } from '../helpers/netns.js';
import type { Pair } from '../helpers/netns.js';
import { Tmux } from '../helpers/tmux.js';

const ROOT = join(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'dist', 'src', 'cli.js');
const isRoot = process.getuid?.() === 0;
const hasTmux = spawnSync('tmux', ['-V']).status === 0;
const built = existsSync(MAIN);
const why = !isRoot ? 'they need root' : !hasTmux ? 'tmux is not installed' : !built ? 'dist/ is not built (npx tsc -p tsconfig.json)' : '';
if (why) console.warn(`skipping the tmux end-to-end test of droptrace top: ${why}`);

describe.skipIf(why !== '')('droptrace top in tmux, end to end', () => {
  const id = randomBytes(3).toString('hex');
  const a = `dttui-${id}-a`;
  const b = `dttui-${id}-b`;
  const n = 100 + (randomBytes(1)[0]! % 100);
  const ipA = `198.18.${n}.1`;
  const ipB = `198.18.${n}.2`;
  const dir = mkdtempSync(join(tmpdir(), 'dttui-e2e-'));
  const t = new Tmux(dir);
  const tmux = (...args: string[]) => t.tmux(...args);
  const screen = (escapes = false) => t.screen(escapes);
  const until = (what: string, pred: (s: string) => boolean) => t.until(what, pred, 15_000);
  let inode = 0;
  let pair: Pair | undefined;


  beforeAll(() => {
    try {
      pair = makePair({ names: [a, b], devs: [`dtua${id}`, `dtub${id}`], subnet: n, drop: [{ proto: 'udp', dport: 5301 }] });
      inode = statSync(`/run/netns/${b}`).ino;
      // pods as a node without Kubernetes declares them (--pods): b is the server's netns
      const pod = (name: string, ip: string, netns: number) => ({ namespace: 'shop', name, uid: `${id}-${name}`, ips: [ip], netns });
      writeFileSync(join(dir, 'pods.json'), JSON.stringify([pod('web-1', ipB, inode), pod('client-1', ipA, statSync(`/run/netns/${a}`).ino)]));
      // resolve the neighbour first, so the drops do not wait on ARP
      sendUdp(a, ipA, 40999, ipB, 9, 1);
    } catch (e) {
      cleanup();
      throw e;
    }
  });

  function cleanup() {
    t.kill();
    pair?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
  afterAll(cleanup);

  it('shows the kind, the pod, the flow and the table fill of live drops; q quits cleanly', async () => {
    // CI must not be set for the TUI: Ink then writes no frames until exit
    const cmd = `env -u CI NO_COLOR=1 LANG=C.UTF-8 ${process.execPath} ${MAIN} top --netns ${inode} --counters-interval 1 --pods ${dir}/pods.json --no-pod-discovery 2>${dir}/err; echo $? >${dir}/rc`;
    tmux('-f', '/dev/null', 'new-session', '-d', '-s', 'top', '-x', '100', '-y', '30', cmd);
    // LIVE is drawn once the start line came: every probe is attached
    await until('the LIVE header', (s) => /^droptrace {2}LIVE /m.test(s) && /^probes ✓ kfree_skb/m.test(s));

    sendUdp(a, ipA, 41000, ipB, 5301, 120);
    // drops, then a stats line after them (lost events and exact kernel counts, every 2 s)
    let s = await until('120 netfilter_rule drops and a stats line', (x) => /^›netfilter_rule +120 /m.test(x) && /kernel exact (1[2-9]\d|[2-9]\d\d)/.test(x));
    // the namespace may add a few IPv6 multicast drops of its own (benign, hidden): at least our 120
    expect(s).toMatch(new RegExp(`^\\d+(\\.\\d)? drops/s {2}lost 0 {2}total \\d+( {2}benign \\d+ hidden)? {2}kernel exact \\d+ {2}only netns ${inode}$`, 'm'));
    // the kernel tables: neighbour entries against gc_thresh3, as a fill level
    expect(s).toMatch(/^ {2}arp_cache ipv4 +\d+\/\d+ +\d+% [█░]{10} {2}of gc_thresh3/m);

    // the drops hit the pod owning the netns they happened in
    tmux('send-keys', '-t', 'top', 'g');
    s = await until('the pod group', (x) => x.includes('─ drops by pod'));
    expect(s).toMatch(/^─ drops by pod · sort rate · pods from file \(2 pods\) ─+$/m);
    expect(s).toMatch(/^›shop\/web-1 +(1[2-9]\d|[2-9]\d\d) /m);

    tmux('send-keys', '-t', 'top', 'g');
    s = await until('the flow group', (x) => x.includes('─ drops by flow'));
    expect(s).toMatch(new RegExp(`^›udp ${ipA.replace(/\./g, '\\.')} → ${ipB.replace(/\./g, '\\.')}:5301 +120 `, 'm'));

    // 100x30 has room: the detail pane is open without a key
    s = await until('the detail pane', (x) => x.includes('─ detail: udp'));
    expect(s).toMatch(new RegExp(`^flows {3}udp ${ipA.replace(/\./g, '\\.')}:41000 → ${ipB.replace(/\./g, '\\.')}:5301 ×120 at `, 'm'));
    expect(s).toMatch(/^kernel {2}reason NETFILTER_DROP ×120 \(kernel 120\) {2}at nft_do_chain ×120/m);
    expect(s).toMatch(/^pods {4}shop\/web-1 ×120$/m);

    // NO_COLOR: inverse, bold and dim only, no colour codes
    const colours = [...screen(true).matchAll(/\x1b\[([\d;]*)m/g)]
      .flatMap((m) => m[1]!.split(';').map(Number))
      .filter((p) => (p >= 30 && p <= 38) || (p >= 40 && p <= 48) || (p >= 90 && p <= 107));
    expect(colours).toEqual([]);

    tmux('send-keys', '-t', 'top', 'q');
    expect(await t.exitCode()).toBe('0');
    // stderr holds only the terminal's cursor-show sequence, never an error
    expect(readFileSync(join(dir, 'err'), 'utf8').replace(/\x1b\[\?25h/g, '')).toBe('');
  });
});

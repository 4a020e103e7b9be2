/**
 * End to end, as root: `droptrace top` in tmux (120x40, a private socket) while the
 * neigh-overflow lab scenario runs (IPv6, throw-away namespaces on fd99::/16, gc_thresh lowered
 * for the burst and restored). Without a key press, the first screen answers: the top group's
 * detail is open with its kind, the pod (from a --pods file), the flow, the neighbour table's
 * fill and what to do. Waits on what the screen says, never on sleeps.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { scenarios } from '../../src/lab/index.js';
import { Tmux } from '../helpers/tmux.js';

const ROOT = join(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'dist', 'src', 'cli.js');
const isRoot = process.getuid?.() === 0;
const hasTmux = spawnSync('tmux', ['-V']).status === 0;
const built = existsSync(MAIN);
const why = !isRoot ? 'it needs root' : !hasTmux ? 'tmux is not installed' : !built ? 'dist/ is not built (npx tsc -p tsconfig.json)' : '';
if (why) console.warn(`skipping the first-screen tmux test of droptrace top: ${why}`);

describe.skipIf(why !== '')('droptrace top, first screen during neigh-overflow', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dttui-first-'));
  const t = new Tmux(dir);
  const tmux = (...args: string[]) => t.tmux(...args);

  const until = (what: string, pred: (s: string) => boolean) => t.until(what, pred, 20_000);

  afterAll(() => {
    t.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows the kind, the pod, the flow, the table fill and the hint without a key press', async () => {
    const scenario = scenarios.find((x) => x.name === 'neigh-overflow')!;
    let netnsA = 0;
    const result = await scenario.run({
      durationMs: 1500,
      beforeProvoke: async (namespaces) => {
        const a = namespaces.find((n) => n.name.endsWith('-a'))!;
        netnsA = a.netns;
        // the sender's namespace is a pod, as a node without Kubernetes declares it (--pods)
        writeFileSync(join(dir, 'pods.json'), JSON.stringify([{ namespace: 'lab', name: 'burst-1', uid: 'u-burst-1', ips: ['fd99::1', '198.18.0.1'], netns: a.netns }]));
        const cmd =
          `env -u CI NO_COLOR=1 LANG=C.UTF-8 ${process.execPath} ${MAIN} top --netns ${a.netns} --counters-interval 0.5 ` +
          `--pods ${dir}/pods.json --no-pod-discovery 2>${dir}/err; echo $? >${dir}/rc`;
        tmux('-f', '/dev/null', 'new-session', '-d', '-s', 'top', '-x', '120', '-y', '40', cmd);
        await until('the LIVE header', (s) => /^droptrace {2}LIVE /m.test(s) && /^probes ✓ kfree_skb/m.test(s));
      },
    });
    const full = result.expect.find((e) => e.kind === 'neigh_table_full')!;
    const failed = result.expect.find((e) => e.kind === 'neigh_resolution_failed')!;
    // both kinds arrived; the one with more drops is the top group (sorted by rate, then total)
    const s = await until(
      'both neighbour kinds',
      (x) => /^[› ]neigh_table_full +\d{3} /m.test(x) && new RegExp(`^[› ]neigh_resolution_failed +${failed.count} `, 'm').test(x),
    );
    const lines = s.split('\n');
    // DT_SCREEN_OUT=FILE keeps the screen: the capture in docs/tui.txt was taken so
    if (process.env.DT_SCREEN_OUT) writeFileSync(process.env.DT_SCREEN_OUT, s);
    const top = /^›(\S+) /m.exec(s)![1]!;
    expect(['neigh_table_full', 'neigh_resolution_failed']).toContain(top);
    // the detail of the top group, open without a key
    expect(lines.find((l) => l.startsWith('─ detail: '))).toMatch(new RegExp(`^─ detail: ${top} · \\d+ drops · `));
    expect(lines.find((l) => l.startsWith('pods '))).toMatch(/^pods {4}lab\/burst-1 ×\d+$/);
    // one of the burst's flows is listed (the netns's own MLD reports, icmpv6 to ff02::16, can
    // die on the full table too and come first)
    const flows = lines.findIndex((l) => l.startsWith('flows '));
    expect(flows).toBeGreaterThanOrEqual(0);
    expect(lines.slice(flows, flows + 6).some((l) => /^(flows)? +udp \[fd99::1\]:\d+ → \[fd99::[0-9a-f:]+\]:9 ×1 at \d\d:\d\d:\d\d$/.test(l))).toBe(true);
    // the table that explains it: ndisc_cache against gc_thresh3, in the detail and in the tables panel
    expect(lines.find((l) => l.startsWith('table ') && l.includes('ndisc_cache'))).toMatch(/^table {3}(! )?ndisc_cache ipv6 \d+\/\d+ \(\d+%\)/);
    expect(s).toMatch(/^[! ] ndisc_cache ipv6 +\d+\/\d+ +\d+% [█░]{10}/m);
    expect(lines.find((l) => l.startsWith('do '))).toMatch(/^do {6}raise net\.ipv6\.neigh\.default\.gc_thresh3 \(now \d+\)/);
    expect(full.netns).toBe(netnsA);

    tmux('send-keys', '-t', 'top', 'q');
    expect(await t.exitCode()).toBe('0');
  });
});

/**
 * 250 network namespaces whose conntrack holds entries (a sidecar mesh's node), under the real
 * `droptrace stream`: every line it writes stays under containerd's 16 KiB cut, and the lines of
 * a full sample together list all 250 netns. Each netns: lo up, a conntrack match in OUTPUT
 * (without a rule that uses conntrack the kernel tracks nothing there), its own UDP timeout
 * raised to 600 s (a per-netns sysctl) so no entry expires during the test, and one datagram to
 * 127.0.0.1:9 through bash's /dev/udp: one conntrack entry. Then a `sleep` in each, as a pod has
 * its processes (droptrace reads their /proc/<pid>/net/stat/nf_conntrack, no spawn per netns).
 * Root only; the sleeps are killed and the namespaces deleted in afterAll, also when a test fails.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CountersLine } from '../../src/host/counters-line.js';
import { CountersMerger } from '../../src/host/counters-merge.js';
import { CRI_LINE_BYTES } from '../../src/host/counters-split.js';
import { sh } from '../helpers/netns.js';
import { startStream } from '../helpers/stream.js';
import type { StreamRun } from '../helpers/stream.js';

const COUNT = 250;
const PREFIX = `dtl${process.pid}-`;
const have = (cmd: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const missing = ['ip', 'iptables', 'bash', 'nsenter'].find((c) => !have(c));
const why =
  process.getuid?.() !== 0
    ? 'it needs root'
    : !existsSync('/proc/sys/net/netfilter/nf_conntrack_max')
      ? 'nf_conntrack is not loaded'
      : missing !== undefined
        ? `${missing} is not installed`
        : null;
if (why !== null) console.warn(`skipping the ${COUNT}-netns counters line test: ${why}`);

function bySample(lines: CountersLine[]): Map<number, CountersLine[]> {
  const m = new Map<number, CountersLine[]>();
  for (const l of lines) m.set(l.sample!, [...(m.get(l.sample!) ?? []), l]);
  return m;
}

const names = Array.from({ length: COUNT }, (_, i) => `${PREFIX}${i}`);

function removeAll(): void {
  const left = existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(PREFIX)) : [];
  if (left.length > 0) sh('ip', ['-batch', '-'], left.map((n) => `netns del ${n}\n`).join(''));
}

describe.skipIf(why !== null)(`counters lines with ${COUNT} netns that hold conntrack entries`, () => {
  let run: StreamRun | null = null;
  const inodes = new Map<number, string>();
  let longest = { bytes: 0, type: '' };
  const pids: number[] = [];

  beforeAll(() => {
    sh('ip', ['-batch', '-'], names.map((n) => `netns add ${n}\n`).join(''));
    const setup = [
      'ip link set lo up',
      'echo 600 > /proc/sys/net/netfilter/nf_conntrack_udp_timeout',
      'iptables -w 5 -A OUTPUT -m conntrack --ctstate NEW -j ACCEPT',
      'echo x > /dev/udp/127.0.0.1/9',
      'test "$(cat /proc/sys/net/netfilter/nf_conntrack_count)" -ge 1',
    ].join(' && ');
    // one bash for the loop: 250 setups cost ~100 ms each, not 250 spawns from Node
    sh('bash', ['-c', `set -e; for ns in "$@"; do ip netns exec "$ns" bash -c '${setup}'; done`, 'setup', ...names]);
    // ip netns exec execs sleep: $! is the sleep's pid
    const out = sh('bash', ['-c', `for ns in "$@"; do ip netns exec "$ns" sleep 900 </dev/null >/dev/null 2>&1 & echo $!; done`, 'sleeps', ...names]);
    pids.push(...out.trim().split('\n').map(Number));
    expect(pids.length).toBe(COUNT);
    for (const n of names) inodes.set(statSync(`/run/netns/${n}`).ino, n);
    expect(inodes.size).toBe(COUNT);
  }, 300_000);

  afterAll(async () => {
    try {
      if (run && run.child.exitCode === null) await run.stop();
    } finally {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      removeAll();
    }
    expect(readdirSync('/run/netns').filter((n) => n.startsWith(PREFIX))).toEqual([]);
  }, 120_000);

  it('keeps every line under 16 KiB, and a full sample lists every netns across its lines', async () => {
    run = startStream(['--counters-interval', '1', '--stats-interval', '1', '--nics', 'none', '--no-pod-discovery']);
    // every line as written, in bytes with its newline
    let rest = Buffer.alloc(0);
    run.child.stdout.on('data', (d: Buffer) => {
      let buf = Buffer.concat([rest, d]);
      for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10)) {
        if (nl + 1 > longest.bytes) longest = { bytes: nl + 1, type: /"type":"(\w+)"/.exec(buf.subarray(0, Math.min(nl, 64)).toString())?.[1] ?? '?' };
        buf = buf.subarray(nl + 1);
      }
      rest = buf;
    });
    await run.ready;
    const counters = (): CountersLine[] => run!.lines.filter((l) => l.type === 'counters') as unknown as CountersLine[];
    const ours = (l: CountersLine) => (l.conntrack?.netns ?? []).filter((n) => inodes.has(n.netns));
    /** the first sample that came whole and lists all of ours, and a later one sent as changes */
    const fullSample = () => {
      for (const lines of bySample(counters()).values()) {
        if (lines[0]!.full !== true || new Set(lines.map((l) => l.part)).size !== lines[0]!.parts) continue;
        if (lines.reduce((n, l) => n + ours(l).length, 0) === COUNT) return lines;
      }
      return null;
    };
    /** a sample sent as changes that lists fewer than all of ours (idle netns stay out) */
    const quietDelta = () =>
      [...bySample(counters().filter((l) => l.full === false)).values()].find(
        (ls) => ls.length === ls[0]!.parts && ls.reduce((n, l) => n + ours(l).length, 0) < COUNT,
      );
    // the second sample lists them all again: their rates went from null (first sample) to 0
    await run.until(() => fullSample() !== null && quietDelta() !== undefined, 180_000);
    const exited = await run.stop();
    expect(exited.code).toBe(0);
    expect(run.bad).toEqual([]);

    const full = fullSample()!;
    // what was one line per sample is now several, each netns in exactly one of them
    const fullBytes = full.reduce((n, l) => n + Buffer.byteLength(JSON.stringify(l)), 0);
    expect(fullBytes).toBeGreaterThan(3 * CRI_LINE_BYTES);
    expect(full.length).toBeGreaterThan(3);
    const listed = full.flatMap(ours);
    expect(new Set(listed.map((n) => n.netns))).toEqual(new Set(inodes.keys()));
    expect(listed.length).toBe(COUNT);
    expect(listed.every((n) => n.count >= 1 && n.name === inodes.get(n.netns) && n.comm === 'sleep')).toBe(true);
    // idle netns do not change: a sample of changes lists fewer than all, in fewer lines
    const quiet = quietDelta()!;
    expect(quiet.length).toBeLessThan(full.length);

    // a reader of the whole stream ends with all of them (the sample at stop is full, or, when it
    // comes too late, the last one is repeated: the changes since the last full sample)
    const m = new CountersMerger();
    let picture: CountersLine | null = null;
    for (const l of counters()) picture = m.add(l) ?? picture;
    expect(m.incomplete).toBe(0);
    expect(new Set(picture!.conntrack!.netns.filter((n) => inodes.has(n.netns)).map((n) => n.netns)).size).toBe(COUNT);

    console.log(`${run.lines.length} lines, ${counters().length} counters lines over ${new Set(counters().map((l) => l.sample)).size} samples; a full sample: ${full.length} lines, ${fullBytes} bytes; a quiet one: ${quiet.length} lines; longest line ${longest.bytes} bytes (${longest.type})`);
    expect(longest.bytes).toBeGreaterThan(0);
    expect(longest.bytes).toBeLessThan(CRI_LINE_BYTES);
  }, 300_000);
});

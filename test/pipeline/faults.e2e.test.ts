/**
 * End to end, as root: how `droptrace stream` ends and what it leaves behind when it is told to
 * stop, killed, cut off by its reader (EPIPE), or stalled by a reader that stops reading.
 *
 * "Nothing left attached" is checked on the exact programs the process held: their ids are read
 * from /proc/<pid>/fdinfo while it runs, so droptrace processes of other tests on the machine
 * cannot make this pass or fail.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inNs, makePair, sendUdp } from '../helpers/netns.js';
import type { Pair } from '../helpers/netns.js';
import { CLI, startStream } from '../helpers/stream.js';
import type { Line } from '../helpers/stream.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('skipping fault tests: they need root (BPF programs, network namespaces)');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** BPF program ids a process holds open (its links keep them attached). */
function progIdsOf(pid: number): number[] {
  const ids = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      const m = /^prog_id:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      // fd closed while listing
    }
  }
  return [...ids].sort((a, b) => a - b);
}

/** Which of `ids` the kernel still has loaded, after giving it up to 2 s to free them. */
async function stillLoaded(ids: number[]): Promise<number[]> {
  const loaded = () => {
    const all = new Set((JSON.parse(execFileSync('bpftool', ['prog', 'list', '--json'], { encoding: 'utf8' })) as Array<{ id: number }>).map((p) => p.id));
    return ids.filter((id) => all.has(id));
  };
  // the kernel frees a released program from a work queue, a moment after the last reference
  for (let i = 0; i < 40 && loaded().length > 0; i++) await sleep(50);
  return loaded();
}

const exitOf = (c: ChildProcess) =>
  c.exitCode !== null || c.signalCode !== null
    ? Promise.resolve({ code: c.exitCode, signal: c.signalCode })
    : new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => c.once('exit', (code, signal) => r({ code, signal })));



/** Floods UDP at ports 20000-29999 (10000 flow keys) from ns `from` to `dst` for `seconds`; prints how many went out. */
const FLOOD = `
import socket, sys, time, random
dst, secs = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end, n = time.time() + secs, 0
while time.time() < end:
    for _ in range(500):
        try:
            s.sendto(b'droptrace-flood', (dst, 20000 + random.randrange(10000))); n += 1
        except OSError:
            pass
print(n)
`;
function flood(from: string, dst: string, seconds: number): { sent: Promise<number>; kill(): void } {
  const c = spawn('ip', ['netns', 'exec', from, '/usr/bin/python3', '-c', FLOOD, dst, String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  c.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return { sent: exitOf(c).then(() => Number(out.trim())), kill: () => c.kill('SIGKILL') };
}

/** The final stats line's figures; events + folded + unfolded == kernel.drops (docs/ndjson.md). */
function finalStats(lines: Line[]) {
  const st = lines.filter((l) => l.type === 'stats').at(-1)!;
  expect(st.final).toBe(true);
  return st as Line & {
    events: number;
    folded: number;
    unfolded: number;
    lost: { ring_buffer: number; userspace: number; stdout?: number; total: number };
    kernel: { drops: number; suppressed: number; by_reason: Record<string, number> };
  };
}
const written = (lines: Line[]) => lines.filter((l) => l.type === 'drop').reduce((n, l) => n + (l.count as number), 0);

describe.skipIf(!isRoot)('droptrace stream under faults', () => {
  let p: Pair;
  beforeAll(() => {
    p = makePair();
    sendUdp(p.a, p.ipA, 40000, p.ipB, 9, 1); // resolve neighbours first
    inNs(p.b, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '20000:29999', '-j', 'DROP']);
  });
  afterAll(() => p?.destroy());

  // How fast is measured by bench/worst.ts (SIGTERM to exit within a second under a flood); a
  // test waits on the exit itself, never on a clock.
  it.each(['SIGHUP', 'SIGTERM', 'SIGINT'] as const)('%s: exit 0, final stats line last, nothing left attached', async (sig) => {
    const s = startStream(['--netns', String(p.netnsB), '--counters-interval', '0']);
    try {
      await s.ready;
      const ids = progIdsOf(s.child.pid!);
      expect(ids.length).toBeGreaterThan(0);
      s.child.kill(sig);
      expect(await s.exited).toEqual({ code: 0, signal: null }); // every line read
      expect(s.bad).toEqual([]);
      expect(s.lines.at(-1)).toMatchObject({ type: 'stats', final: true });
      expect(s.stderr()).toBe('');
      expect(await stillLoaded(ids)).toEqual([]);
    } finally {
      await s.stop('SIGKILL');
    }
  });

  it('SIGKILL (a crash): the kernel detaches everything, nothing was pinned', async () => {
    const s = startStream(['--netns', String(p.netnsB)]);
    try {
      await s.ready;
      const ids = progIdsOf(s.child.pid!);
      expect(ids.length).toBeGreaterThan(0);
      s.child.kill('SIGKILL');
      expect(await s.exited).toEqual({ code: null, signal: 'SIGKILL' });
      expect(await stillLoaded(ids)).toEqual([]);
    } finally {
      await s.stop('SIGKILL');
    }
  });

  it('stdout closed early (droptrace stream | head -1): exit 0, no stack trace, nothing left attached', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dt-faults-'));
    // the pid comes from the shell that execs droptrace; head -1 takes the start line and exits,
    // and droptrace's next write (its first stats line, 2 s later) meets EPIPE
    const script = `(echo $BASHPID > "$1/pid"; exec "$2" "$3" stream --counters-interval 0 --stats-interval 2 2>"$1/err") | head -1; echo "\${PIPESTATUS[0]}" > "$1/rc"`;
    const sh = spawn('bash', ['-c', script, 'x', dir, process.execPath, CLI], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let out = '';
      await new Promise<void>((res) =>
        sh.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) res();
        }),
      );
      expect(JSON.parse(out.split('\n')[0]!)).toMatchObject({ type: 'start' });
      const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
      const ids = progIdsOf(pid);
      expect(ids.length).toBeGreaterThan(0);
      expect(await exitOf(sh)).toEqual({ code: 0, signal: null });
      expect({ rc: readFileSync(join(dir, 'rc'), 'utf8').trim(), stderr: readFileSync(join(dir, 'err'), 'utf8') }).toEqual({ rc: '0', stderr: '' });
      expect(out.trim().split('\n')).toHaveLength(1);
      expect(await stillLoaded(ids)).toEqual([]);
    } finally {
      sh.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /**
   * A reader that stops reading (a wedged log shipper): droptrace is spawned with its stdout on a
   * pipe this test stops reading right after the start line, then drops are flooded at it.
   */
  function stalled(args: string[] = []) {
    const child = spawn(process.execPath, [CLI, 'stream', '--netns', String(p.netnsB), '--counters-interval', '0', '--stats-interval', '1', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    let text = '';
    const onData = (d: Buffer) => (text += d.toString());
    child.stdout.on('data', onData);
    const ready = new Promise<void>((res, rej) => {
      const check = () => {
        if (text.includes('\n')) {
          // stop reading: Node keeps at most a highWaterMark, then leaves the rest in the pipe
          child.stdout.off('data', check);
          child.stdout.pause();
          res();
        }
      };
      child.stdout.on('data', check);
      child.once('exit', () => rej(new Error(`droptrace exited before its start line: ${err}`)));
    });
    const lines = (): Line[] =>
      text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Line);
    /** reads everything droptrace wrote, until it exits */
    const drain = async () => {
      child.stdout.resume();
      await exitOf(child);
      await new Promise<void>((r) => (child.stdout.readableEnded ? r() : child.stdout.once('end', () => r())));
      return lines();
    };
    return { child, ready, drain, text: () => text, stderr: () => err };
  }

  it('keeps tracing while its reader is stalled: the poller never waits on stdout, every missing drop is counted as lost', async () => {
    const s = stalled();
    let f: ReturnType<typeof flood> | undefined;
    try {
      await s.ready;
      f = flood(p.a, p.ipB, 3);
      const sent = await f.sent;
      expect(sent).toBeGreaterThan(10_000);
      // still alive and not stuck in the kernel
      expect(s.child.exitCode).toBeNull();
      expect(readFileSync(`/proc/${s.child.pid}/stat`, 'utf8').split(') ')[1]![0]).not.toBe('D');
      s.child.kill('SIGTERM');
      const lines = await s.drain();
      expect(s.child.exitCode).toBe(0);
      const st = finalStats(lines);
      // every drop of the netns, the flood's and the background's (IPv6 multicast noise): a
      // background line lost to the stalled reader is in lost.stdout like the flood's
      // the kernel saw every packet; what the stream could not show is counted in lost.stdout
      // (ring-buffer and userspace losses are folded back into lines, so they are in `written`),
      // or, when it could not be folded, in unfolded
      expect(st.kernel.by_reason.NETFILTER_DROP ?? 0).toBe(sent);
      expect(st.lost.stdout).toBeGreaterThan(0);
      expect(st.events + st.folded + st.unfolded).toBe(st.kernel.drops);
      expect(written(lines) + st.lost.stdout! + st.unfolded).toBe(st.kernel.drops);
    } finally {
      f?.kill();
      s.child.kill('SIGKILL');
    }
  });

  // Detail events the addon could not hand to JS in time (lost.userspace) are folded back from
  // its per-key count of them, like the kernel's own suppressed drops: the sum stays exact.
  it('stays exact under a flood: events + folded + unfolded == kernel.drops', async () => {
    const s = startStream(['--netns', String(p.netnsB), '--counters-interval', '0', '--stats-interval', '1']);
    let f: ReturnType<typeof flood> | undefined;
    try {
      await s.ready;
      // ~10,000 keys, each under its detail limit: nearly every drop is a detail event, ~550
      // bytes of NDJSON each, which this test process must parse too (1.5 s: ~150 MB)
      f = flood(p.a, p.ipB, 1.5);
      const sent = await f.sent;
      // the kernel has counted the whole flood; the final stats line comes after the last fold
      await s.until((ls) => ls.some((l) => l.type === 'stats' && ((l.kernel as { drops: number }).drops ?? 0) >= sent), 30_000);
      await s.stop('SIGTERM');
      const st = finalStats(s.lines);
      expect(st.events + st.folded + st.unfolded).toBe(st.kernel.drops);
      // nothing was evicted (10,000 keys); every drop is on a line read, or on one still queued
      // for this reader at the end (dropped then, counted in lost.stdout)
      expect(st.unfolded).toBe(0);
      expect(written(s.lines) + (st.lost.stdout ?? 0)).toBe(st.kernel.drops);
    } finally {
      f?.kill();
      // SIGTERM: a line cut by SIGKILL would not parse in the helper
      await s.stop('SIGTERM');
    }
  });

  // A poll takes every record the ring holds before it hands any to JS. With the process stopped
  // through the flood, a ring big enough for all of it and a 1 MiB backlog, the first poll after
  // SIGCONT must drop what is past the backlog: lost in userspace, counted per key, folded once.
  it('folds what the byte-capped backlog cost: lost.userspace > 0, events + folded + unfolded == kernel.drops', async () => {
    const s = startStream(['--netns', String(p.netnsB), '--counters-interval', '0', '--stats-interval', '1', '--ring-size', '64', '--backlog', '1', '--detail-limit', '0']);
    let f: ReturnType<typeof flood> | undefined;
    let stopped = false;
    try {
      await s.ready;
      process.kill(s.child.pid!, 'SIGSTOP');
      stopped = true;
      f = flood(p.a, p.ipB, 0.5);
      const sent = await f.sent;
      process.kill(s.child.pid!, 'SIGCONT');
      stopped = false;
      // a stats line made after the fold that took the whole flood
      await s.until((ls) => ls.some((l) => l.type === 'stats' && (l.events as number) + (l.folded as number) >= sent), 60_000);
      await s.stop('SIGTERM');
      const st = finalStats(s.lines);
      expect(st.kernel.by_reason.NETFILTER_DROP).toBe(sent);
      // ~120 B a record: more than 1 MiB of them waited in the ring (64 MiB: none lost there)
      expect(sent * 120).toBeGreaterThan(2 << 20);
      expect(st.lost.ring_buffer).toBe(0);
      expect(st.lost.userspace).toBeGreaterThan(0);
      expect(st.events + st.folded + st.unfolded).toBe(st.kernel.drops);
      // fewer than 65,536 keys lost per fold, none evicted: every loss was folded, once
      expect(st.unfolded).toBe(0);
      // every drop is on a line this test read, or on one skipped for a slow reader
      expect(written(s.lines) + (st.lost.stdout ?? 0)).toBe(st.kernel.drops);
      // what arrived as detail is what the kernel sent less what the addon lost
      expect(st.kernel.drops - st.kernel.suppressed - st.lost.ring_buffer - st.lost.userspace).toBe(st.events);
    } finally {
      if (stopped) process.kill(s.child.pid!, 'SIGCONT');
      f?.kill();
      await s.stop('SIGTERM');
    }
  });

  it('counts what a full ring buffer cost and folds it back: lost.ring_buffer > 0, events + folded + unfolded == kernel.drops', async () => {
    // 1 MiB of ring, no per-key limit, and the reader stopped (SIGSTOP) through the flood:
    // reservations fail in the kernel and must come back as counted, folded drops
    const s = startStream(['--netns', String(p.netnsB), '--counters-interval', '0', '--ring-size', '1', '--detail-limit', '0']);
    let f: ReturnType<typeof flood> | undefined;
    let stopped = false;
    try {
      await s.ready;
      process.kill(s.child.pid!, 'SIGSTOP');
      stopped = true;
      f = flood(p.a, p.ipB, 1);
      const sent = await f.sent;
      process.kill(s.child.pid!, 'SIGCONT');
      stopped = false;
      // a stats line made after the fold that took the whole flood (lines for this reader may
      // be skipped, lost.stdout: waiting on the drop lines themselves could wait for ever)
      await s.until((ls) => ls.some((l) => l.type === 'stats' && (l.events as number) + (l.folded as number) >= sent), 30_000);
      await s.stop('SIGTERM');
      expect(s.bad).toEqual([]);
      const st = finalStats(s.lines);
      expect(st.lost.ring_buffer).toBeGreaterThan(0);
      expect(st.kernel.by_reason.NETFILTER_DROP).toBe(sent);
      expect(st.events + st.folded + st.unfolded).toBe(st.kernel.drops);
      expect(st.unfolded).toBe(0);
      // every drop is on a line read or counted as skipped for this reader
      expect(written(s.lines) + (st.lost.stdout ?? 0)).toBe(st.kernel.drops);
      // what did not arrive as detail is exactly what the stats line says the kernel and the addon lost
      expect(st.kernel.drops - st.kernel.suppressed - st.lost.ring_buffer - st.lost.userspace).toBe(st.events);
    } finally {
      if (stopped) process.kill(s.child.pid!, 'SIGCONT');
      f?.kill();
      await s.stop('SIGTERM');
    }
  });

  // Node would buffer stdout writes to a stalled pipe without limit (measured before the cap:
  // 138 MB → 450 MB in 10 s); the NDJSON sink caps what waits for the reader and counts the drops
  // of the lines it skipped as lost.stdout. RSS is not the measure: under such a flood the heap
  // alone grows ~150 MB between collections with a reader that keeps up.
  it('bounds what it buffers for a stalled reader and reports the rest as lost', async () => {
    const s = stalled();
    let f: ReturnType<typeof flood> | undefined;
    try {
      await s.ready;
      f = flood(p.a, p.ipB, 3);
      const sent = await f.sent;
      // the reader comes back: everything droptrace kept for it arrives, then the final stats
      s.child.stdout.resume();
      s.child.kill('SIGTERM');
      const lines = await s.drain();
      const st = finalStats(lines);
      expect(st.lost.stdout).toBeGreaterThan(0);
      expect(st.kernel.by_reason.NETFILTER_DROP).toBe(sent);
      // every drop of the netns (the flood and the odd background one) is written, skipped for
      // the stalled reader (lost.stdout), or could not be folded (unfolded); ring-buffer and
      // userspace losses are folded back into written lines, so they are no term here
      expect(st.events + st.folded + st.unfolded).toBe(st.kernel.drops);
      expect(written(lines) + st.lost.stdout! + st.unfolded).toBe(st.kernel.drops);
    } finally {
      f?.kill();
      s.child.kill('SIGKILL');
    }
  });

  // The reader comes back after SIGTERM but reads slowly (a chunk, then a pause): the drop
  // lines still queued are dropped at the end and counted, so the final stats line is written
  // and whole, and every drop is on a line read or in lost.stdout.
  it('a slow reader after SIGTERM gets whole lines and the final stats line, exact', async () => {
    const s = stalled();
    let f: ReturnType<typeof flood> | undefined;
    try {
      await s.ready;
      f = flood(p.a, p.ipB, 2);
      const sent = await f.sent;
      s.child.kill('SIGTERM');
      const slow = (d: Buffer) => {
        void d;
        s.child.stdout.pause();
        setTimeout(() => s.child.stdout.resume(), 2);
      };
      s.child.stdout.on('data', slow);
      s.child.stdout.resume();
      const lines = await s.drain();
      expect(s.text().endsWith('\n')).toBe(true);
      expect(s.child.exitCode).toBe(0);
      expect(s.stderr()).toBe('');
      const st = finalStats(lines);
      expect(lines.at(-1)).toBe(st);
      expect(st.kernel.by_reason.NETFILTER_DROP).toBe(sent);
      expect(st.lost.stdout).toBeGreaterThan(0);
      expect(st.events + st.folded + st.unfolded).toBe(st.kernel.drops);
      expect(written(lines) + st.lost.stdout! + st.unfolded).toBe(st.kernel.drops);
    } finally {
      f?.kill();
      s.child.kill('SIGKILL');
    }
  });

  // A reader that never reads again must not keep a finished droptrace alive: it exits 0 by
  // itself (this test only waits for that), says so in one line on stderr, and what the pipe
  // holds is whole lines: the sink writes whole lines of at most PIPE_BUF bytes, which a pipe
  // takes whole or not at all.
  it('a reader that never reads: droptrace exits 0 by itself, one line on stderr, the pipe holds whole lines', async () => {
    const s = stalled();
    let f: ReturnType<typeof flood> | undefined;
    try {
      await s.ready;
      f = flood(p.a, p.ipB, 2);
      await f.sent;
      s.child.kill('SIGTERM');
      expect(await exitOf(s.child)).toEqual({ code: 0, signal: null });
      expect(s.stderr()).toMatch(/^droptrace: stdout is not being read: exiting with \d+ final line\(s\) unwritten\n$/);
      // the pipe still holds what it took; read it now
      const lines = await s.drain();
      expect(s.text().endsWith('\n')).toBe(true);
      expect(lines.length).toBeGreaterThan(1);
      expect(lines.filter((l) => l.type === 'stats' && l.final === true)).toEqual([]);
    } finally {
      f?.kill();
      s.child.kill('SIGKILL');
    }
  });
});

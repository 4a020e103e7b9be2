/**
 * The NDJSON sink with a reader that is slow or never reads, on a pipe modelled as Linux has it
 * (pipe(7)): a write of at most PIPE_BUF bytes is taken whole or refused, a longer one may be
 * taken in part. At most 4 MiB (the default cap) waits in the sink; drop lines past it are
 * skipped and their drops counted in lost.stdout; at the final stats line the drop lines still
 * waiting are dropped and counted too; what the reader has is whole lines, whenever it stops.
 */
import { describe, expect, it } from 'vitest';
import type { DropEvent, StatsLine } from '../../src/pipeline/events.js';
import { format, NdjsonSink, PIPE_BUF } from '../../src/sinks/ndjson.js';
import type { ByteOut } from '../../src/sinks/ndjson.js';

/** A pipe of `size` bytes that nobody reads until read() is called. */
class Pipe implements ByteOut {
  private held: Buffer[] = [];
  private bytes = 0;
  taken = '';
  constructor(private readonly size = 65536) {}
  write(buf: Buffer): number {
    const free = this.size - this.bytes;
    const n = buf.length <= PIPE_BUF ? (buf.length <= free ? buf.length : 0) : Math.min(free, buf.length);
    if (n > 0) {
      this.held.push(buf.subarray(0, n));
      this.bytes += n;
    }
    return n;
  }
  /** a writer of its own fills the pipe to the brim with one whole line */
  fill(): void {
    const free = this.size - this.bytes;
    const line = `{"type":"pad","x":"${'.'.repeat(free - 22)}"}\n`;
    expect(this.write(Buffer.from(line))).toBe(free);
  }
  /** the reader takes up to `max` bytes */
  read(max = Infinity): string {
    const all = Buffer.concat(this.held);
    const got = all.subarray(0, Math.min(max, all.length));
    this.held = [all.subarray(got.length)];
    this.bytes -= got.length;
    this.taken += got.toString();
    return got.toString();
  }
}

function drop(count: number, dport: number): DropEvent {
  return {
    type: 'drop',
    time: '2026-12-05T07:00:00.000000000Z',
    family: 'netfilter',
    kind: 'netfilter_rule',
    reason: 'NETFILTER_DROP',
    location: 'nf_hook_slow',
    netns: 4026531840,
    ifname: 'veth0',
    ifindex: 2,
    flow: { proto: 'udp', src: '198.18.1.1', dst: '198.18.1.2', sport: 40000, dport },
    pod: null,
    count,
    explain: 'an iptables or nftables rule dropped the packet',
    hint: '',
  };
}

function stats(drops: number, final: boolean): StatsLine {
  return {
    type: 'stats',
    time: '2026-12-05T07:00:01.000Z',
    final,
    events: drops,
    folded: 0,
    lost: { ring_buffer: 0, userspace: 0, total: 0 },
    decode_errors: 0,
    enrichment_failures: 0,
    counters_failures: 0,
    kernel: { drops, suppressed: 0, by_reason: { NETFILTER_DROP: drops } },
  };
}

/** The text the reader got, as lines; every one must be whole JSON. */
function whole(text: string): Array<{ type: string; count?: number; lost?: { stdout?: number } }> {
  expect(text === '' || text.endsWith('\n')).toBe(true);
  return text
    .split('\n')
    .slice(0, -1)
    .map((l) => JSON.parse(l) as { type: string; count?: number });
}

const turn = () => new Promise<void>((r) => setImmediate(r));

describe('NdjsonSink on a pipe', () => {
  it('holds at most 4 MiB for a reader that stopped, counts every skipped drop, and the final stats line drops what still waits', async () => {
    const pipe = new Pipe();
    const sink = new NdjsonSink(pipe);
    const lineBytes = format(drop(3, 20000)).length;
    for (let i = 0; i < 20_000; i++) sink.write(drop(3, 20000 + (i % 10_000)));
    await turn();
    // the pipe is full; past the cap nothing more was queued
    expect(sink.waiting).toBeGreaterThan(4 * 1024 * 1024 - 65536);
    expect(sink.waiting).toBeLessThanOrEqual(4 * 1024 * 1024 + lineBytes);
    const periodic = sink.admit(stats(60_000, false))!;
    const skippedBefore = (periodic as StatsLine).lost.stdout!;
    expect(skippedBefore).toBeGreaterThan(0);

    sink.write(stats(60_000, true));
    // the final line: nothing but it waits; all detail still queued was dropped and counted
    expect(sink.waitingLines).toBe(1);
    const text = pipe.read();
    const before = whole(text);
    expect(before.every((l) => l.type === 'drop')).toBe(true);
    expect(await sink.flush(1000)).toBe(true);
    pipe.read();
    const lines = whole(pipe.taken);
    const last = lines.at(-1)!;
    expect(last.type).toBe('stats');
    const read = lines.filter((l) => l.type === 'drop').reduce((n, l) => n + l.count!, 0);
    // every drop is in a line the reader got or in the final line's lost.stdout
    expect(read + last.lost!.stdout!).toBe(60_000);
    expect(last.lost!.stdout!).toBeGreaterThan(skippedBefore);
  });

  it('with a slow reader: every line whole, the final stats line last and exact', async () => {
    const pipe = new Pipe();
    const sink = new NdjsonSink(pipe, 256 * 1024);
    let sent = 0;
    for (let i = 0; i < 5_000; i++) {
      sink.write(drop(2, 20000 + i));
      sent += 2;
      // the reader takes an odd number of bytes now and then: lines are cut in the pipe only
      if (i % 50 === 0) {
        pipe.read(7_001);
        await turn();
      }
    }
    sink.write(stats(sent, true));
    const flushed = sink.flush(60_000);
    while (sink.waitingLines > 0) {
      pipe.read(3_001);
      await new Promise((r) => setTimeout(r, 6));
    }
    expect(await flushed).toBe(true);
    pipe.read();
    const lines = whole(pipe.taken);
    const last = lines.at(-1)!;
    expect(last.type).toBe('stats');
    expect(lines.filter((l) => l.type === 'drop').reduce((n, l) => n + l.count!, 0) + last.lost!.stdout!).toBe(sent);
  });

  it('with a reader that never reads: flush gives up, the pipe holds whole lines only', async () => {
    const pipe = new Pipe(10_000);
    const sink = new NdjsonSink(pipe);
    for (let i = 0; i < 1_000; i++) sink.write(drop(1, 20000 + i));
    await turn();
    pipe.fill();
    sink.write(stats(1_000, true));
    expect(await sink.flush(20)).toBe(false);
    expect(sink.waitingLines).toBe(1);
    const lines = whole(pipe.read());
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.slice(0, -1).every((l) => l.type === 'drop')).toBe(true);
    expect(lines.at(-1)!.type).toBe('pad');
  });

  it('a line longer than PIPE_BUF taken in part is finished before anything else', async () => {
    const pipe = new Pipe(6_000);
    const sink = new NdjsonSink(pipe);
    const big = { ...stats(1, false), kernel: { drops: 1, suppressed: 0, by_reason: Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`REASON_${i}`, i])) } };
    expect(format(big).length).toBeGreaterThan(PIPE_BUF);
    sink.write(drop(1, 1));
    sink.write(big);
    sink.write(drop(1, 2));
    const flushed = sink.flush(60_000);
    while (sink.waitingLines > 0) {
      pipe.read(1_000);
      await new Promise((r) => setTimeout(r, 6));
    }
    expect(await flushed).toBe(true);
    pipe.read();
    expect(whole(pipe.taken).map((l) => l.type)).toEqual(['drop', 'stats', 'drop']);
  });

  it('a reader that went away (EPIPE): said once, nothing more is written', async () => {
    const errors: string[] = [];
    let writes = 0;
    const sink = new NdjsonSink(
      {
        write: () => {
          writes++;
          throw Object.assign(new Error('broken pipe'), { code: 'EPIPE' });
        },
      },
      undefined,
      (e) => errors.push(e.code!),
    );
    sink.write(drop(1, 1));
    await turn();
    sink.write(drop(1, 2));
    sink.write(stats(2, true));
    expect(await sink.flush(1000)).toBe(true);
    expect({ errors, writes }).toEqual({ errors: ['EPIPE'], writes: 1 });
  });
});

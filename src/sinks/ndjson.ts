/**
 * NDJSON on stdout (or any fd) with a cap on what waits for the reader, written so that no line
 * is ever cut, whenever droptrace exits.
 *
 * Lines wait in this sink's own queue, not in Node's stream buffer: a stalled log shipper would
 * otherwise grow droptrace's memory with the drop rate, and lines already handed to Node cannot
 * be taken back at the end. Past the cap, drop lines are skipped and their drops counted; start,
 * counters and stats lines always go out, and each stats line says how many drops were skipped
 * (lost.stdout, included in lost.total).
 *
 * Whole lines only: the queue goes out in chunks of whole lines of at most PIPE_BUF bytes, each
 * one write(2) on the non-blocking fd, which a pipe takes whole or refuses (EAGAIN; so does a
 * Unix stream socket, what Node's child_process gives as a "pipe", for so small a write) — so what
 * the reader has is always whole lines, even if droptrace exits with a write refused. Only a
 * line longer than PIPE_BUF can be taken in part; its rest is written before anything else.
 *
 * At the final stats line, the drop lines still queued are dropped (their drops counted in that
 * line's lost.stdout) so the end never waits on a slow reader for detail nobody will read.
 *
 * 4 MiB: what waits here is live heap that V8 lets grow 2–3 times before collecting, so the cap
 * is paid several times over (docs/performance.md).
 */
import { writeSync } from 'node:fs';
import { DropTime, isoNs } from '../pipeline/clock.js';
import type { LineTime } from '../pipeline/clock.js';
import type { StatsLine, StreamLine } from '../pipeline/events.js';
import type { Sink } from './sink.js';

/** Linux: a write of at most this many bytes to a pipe is atomic (pipe(7)). */
export const PIPE_BUF = 4096;

/** Where the bytes go. */
export interface ByteOut {
  /** writes a prefix of `buf` now, returns its length (0: the reader is full) */
  write(buf: Buffer): number;
}

/**
 * A file descriptor written with write(2). stdout must be non-blocking for a stalled reader not
 * to block droptrace: Node makes a pipe on fd 1 non-blocking once process.stdout is touched.
 * A full reader is tried again every few ms (the fd gives no writable event outside libuv;
 * handing the chunk to process.stdout for that starved the output under a flood).
 */
export function fdOut(fd: number): ByteOut {
  return {
    write(buf) {
      try {
        return writeSync(fd, buf);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return 0;
        throw e;
      }
    },
  };
}

interface Queued {
  text: Buffer;
  /** drops a drop line stands for; -1 for lines that are never skipped */
  drops: number;
}

export class NdjsonSink implements Sink {
  private skipped = 0;
  private queue: Queued[] = [];
  private head = 0;
  private queuedBytes = 0;
  /** the rest of a line longer than PIPE_BUF that was taken in part */
  private rest: Buffer | null = null;
  /** bytes queued since the last attempt to write */
  private sinceTry = 0;
  private failed = false;
  private retry: ReturnType<typeof setTimeout> | null = null;
  private scheduled = false;
  private waiters: Array<() => void> = [];

  constructor(
    private readonly out: ByteOut,
    private readonly capBytes = 4 * 1024 * 1024,
    /** a write failed (EPIPE: the reader went away): nothing more is written */
    private readonly onError: (e: NodeJS.ErrnoException) => void = () => {},
  ) {}

  /** A stats line as this sink writes it: with the drops a stalled reader cost. */
  withStdoutLoss(line: StatsLine): StatsLine {
    return { ...line, lost: { ...line.lost, stdout: this.skipped, total: line.lost.total + this.skipped } };
  }

  /** bytes waiting for the reader */
  get waiting(): number {
    return this.queuedBytes + (this.rest?.length ?? 0);
  }

  /** lines waiting for the reader (a line taken in part counts as one) */
  get waitingLines(): number {
    return this.queue.length - this.head + (this.rest ? 1 : 0);
  }

  /** The line as it will be written, or null when it is skipped (counted). */
  admit(line: StreamLine): StreamLine | null {
    if (line.type === 'drop' && this.queuedBytes > this.capBytes) {
      this.skipped += line.count;
      return null;
    }
    if (line.type !== 'stats') return line;
    if (line.final) {
      // what the reader takes now goes out; the detail it has no room for is counted, not awaited
      this.pump();
      this.dropQueuedDrops();
    }
    return this.withStdoutLoss(line);
  }

  write(line: StreamLine): void {
    const l = this.admit(line);
    if (!l || this.failed) return;
    const text = Buffer.from(format(l));
    this.queue.push({ text, drops: l.type === 'drop' ? l.count : -1 });
    this.queuedBytes += text.length;
    this.sinceTry += text.length;
    // Written as they come, in full chunks: a turn of the event loop can take seconds under a
    // flood (the tracer's batches), and the reader must not wait for its end.
    if (this.sinceTry >= 16 * PIPE_BUF) {
      this.pump();
      return;
    }
    // the rest once per event-loop turn
    if (!this.scheduled && !this.retry) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.pump();
      });
    }
  }

  /**
   * Resolves true once everything queued is written, false if the reader has not taken it
   * within `ms` (what it has is whole lines either way, bar a line longer than PIPE_BUF).
   */
  flush(ms: number): Promise<boolean> {
    this.pump();
    if (this.waitingLines === 0 || this.failed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve(false);
      }, ms);
      const done = () => {
        clearTimeout(t);
        resolve(true);
      };
      this.waiters.push(done);
    });
  }

  private dropQueuedDrops(): void {
    const kept: Queued[] = [];
    for (let i = this.head; i < this.queue.length; i++) {
      const q = this.queue[i]!;
      if (q.drops < 0) kept.push(q);
      else {
        this.skipped += q.drops;
        this.queuedBytes -= q.text.length;
      }
    }
    this.queue = kept;
    this.head = 0;
  }

  /** Writes whole-line chunks until the queue is empty or the reader is full. */
  private pump(): void {
    if (this.retry) {
      clearTimeout(this.retry);
      this.retry = null;
    }
    this.sinceTry = 0;
    if (this.failed) return;
    try {
      for (;;) {
        if (this.rest) {
          const rest = this.rest;
          const n = this.out.write(rest);
          if (n < rest.length) {
            this.rest = rest.subarray(n);
            return this.retryLater();
          }
          this.rest = null;
        }
        if (this.head === this.queue.length) break;
        const chunk = this.chunk();
        const n = this.out.write(chunk.buf);
        if (n === 0) return this.retryLater();
        this.take(chunk.lines, chunk.buf.length);
        // only a line longer than PIPE_BUF is taken in part (on a pipe)
        if (n < chunk.buf.length) {
          this.rest = chunk.buf.subarray(n);
          return this.retryLater();
        }
      }
    } catch (e) {
      return this.fail(e as NodeJS.ErrnoException);
    }
    this.queue = [];
    this.head = 0;
    this.wake();
  }

  private fail(e: NodeJS.ErrnoException): void {
    this.failed = true;
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    this.rest = null;
    this.wake();
    this.onError(e);
  }

  /** whole lines from the head, at most PIPE_BUF bytes (or one longer line alone) */
  private chunk(): { buf: Buffer; lines: number } {
    let bytes = 0;
    let i = this.head;
    while (i < this.queue.length && (i === this.head || bytes + this.queue[i]!.text.length <= PIPE_BUF)) {
      bytes += this.queue[i]!.text.length;
      i++;
    }
    const lines = i - this.head;
    const buf = lines === 1 ? this.queue[this.head]!.text : Buffer.concat(this.queue.slice(this.head, i).map((q) => q.text), bytes);
    return { buf, lines };
  }

  private take(lines: number, bytes: number): void {
    this.head += lines;
    this.queuedBytes -= bytes;
    // the taken head is cut off now and then, not per line (shift is O(n))
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  /** The reader is full: try again shortly, or when more lines come. */
  private retryLater(): void {
    if (this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.pump();
    }, 5);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** One line of the public stream (docs/ndjson.md). */
export function format(line: StreamLine): string {
  if (line.type !== 'drop') return JSON.stringify(line) + '\n';
  // The times are numbers until here. Their text is set for the one stringify and put back
  // (other sinks share the line): JSON.stringify calling each time's toJSON cost ~8% more.
  const { time, last_time } = line;
  line.time = isoText(time);
  if (last_time !== undefined) line.last_time = isoText(last_time);
  try {
    return JSON.stringify(line) + '\n';
  } finally {
    line.time = time;
    if (last_time !== undefined) line.last_time = last_time;
  }
}

/** ISO-8601 UTC: nine fractional digits for a kernel time, as Date writes itself for a Date. */
function isoText(t: LineTime): string {
  return typeof t === 'string' ? t : t instanceof DropTime ? isoNs(t.sec, t.nsec) : t.toISOString();
}

/**
 * NDJSON on stdout (or any stream) with a cap on what waits for the reader. Node buffers writes
 * to a pipe that is not read without any limit, so a stalled log shipper would grow
 * droptrace's memory with the drop rate. Past the cap, drop lines are skipped and their drops
 * counted; start, counters and stats lines always go out, and each stats line says how many
 * drops were skipped (lost.stdout, included in lost.total).
 *
 * 4 MiB: what waits here is live heap (about twice its size: the strings and a write request
 * each) that V8 lets grow 2–3 times before collecting, so the cap is paid several times over.
 * Measured with bench/worst.ts, reader stalled: 16 MiB held the live heap at 60–64 MiB and RSS
 * peaked at 334–370 MiB; 4 MiB at 28–33 and 226–271 (docs/performance.md).
 */
import { DropTime, isoNs } from '../pipeline/clock.js';
import type { LineTime } from '../pipeline/clock.js';
import type { StatsLine, StreamLine } from '../pipeline/events.js';
import type { Sink } from './sink.js';

export class NdjsonSink implements Sink {
  private skipped = 0;
  constructor(
    private readonly out: NodeJS.WritableStream & { writableLength: number; destroyed: boolean },
    private readonly capBytes = 4 * 1024 * 1024,
  ) {}

  /** A stats line as this sink writes it: with the drops a stalled reader cost. */
  withStdoutLoss(line: StatsLine): StatsLine {
    return { ...line, lost: { ...line.lost, stdout: this.skipped, total: line.lost.total + this.skipped } };
  }

  /** The line as it will be written, or null when it is skipped (counted). */
  admit(line: StreamLine): StreamLine | null {
    if (line.type === 'drop' && this.out.writableLength > this.capBytes) {
      this.skipped += line.count;
      return null;
    }
    return line.type === 'stats' ? this.withStdoutLoss(line) : line;
  }

  write(line: StreamLine): void {
    const l = this.admit(line);
    if (l && !this.out.destroyed) this.out.write(format(l));
  }

  /** Resolves true once the reader took everything, false if it has not within `ms`. */
  drained(ms: number): Promise<boolean> {
    if (this.out.destroyed || this.out.writableLength === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      this.out.once('drain', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
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

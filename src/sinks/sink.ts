/**
 * What every output of droptrace is: the NDJSON writer, the Prometheus metrics, the pcapng
 * capture and the TUI store each take the stream's lines in order through this interface, so a
 * new output is one file in src/sinks/ and one line of wiring in src/cli.ts.
 */
import type { StreamLine } from '../pipeline/events.js';

export interface Sink {
  /** every line of the stream, in order: start, drops, stats, counters, the final stats line */
  write(line: StreamLine): void;
  /** once, after the final stats line: flush and release what the sink holds */
  close?(): void | Promise<void>;
}

/** One emit for the pipeline that hands every line to each sink, in order. */
export function fanOut(sinks: readonly Sink[]): (line: StreamLine) => void {
  if (sinks.length === 1) {
    const only = sinks[0]!;
    return (line) => only.write(line);
  }
  return (line) => {
    for (const s of sinks) s.write(line);
  };
}

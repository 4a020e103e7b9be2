#!/usr/bin/env node
/**
 * Bench run 4: droptrace with its TUI store but no terminal. The live pipeline (liveStream)
 * feeds a TuiStore exactly as `droptrace top` does; instead of Ink rendering at up to 10 frames
 * a second, a timer takes a store snapshot every 100 ms when something changed (what each Ink
 * frame asks the store for), and the store clock ticks once a second.
 *
 *   node dist/bench/tui-store-run.js [--netns INODE]
 *
 * stdout (NDJSON, for bench/run.ts): the `start` line once every probe is attached (the ready
 * signal), then at the end the final `stats` line and one `{"type":"bench-store",...}` summary.
 * Stops on SIGINT/SIGTERM.
 */
import type { StreamLine } from '../src/pipeline/events.js';
import { liveStream } from '../src/pipeline/live.js';
import { TuiStore } from '../src/tui/store.js';

const args = process.argv.slice(2);
const netnsAt = args.indexOf('--netns');
const netns = netnsAt >= 0 ? Number(args[netnsAt + 1]) : undefined;

const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
const store = new TuiStore({ source: 'live' });
const ac = new AbortController();
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => ac.abort());

let dirty = false;
let frames = 0;
let lines = 0;
let delivered = 0; // Σ count of drop lines from detail events
let folded = 0; // Σ count of folded drop lines (kernel-only counts)
let finalStats: StreamLine | null = null;
store.subscribe(() => {
  dirty = true;
});
const emit = (line: StreamLine) => {
  lines++;
  store.ingest(line);
  if (line.type === 'drop') {
    if (line.folded) folded += line.count;
    else delivered += line.count;
  } else if (line.type === 'start') out(line);
  else if (line.type === 'stats' && line.final) finalStats = line;
};
const ticker = setInterval(() => store.tick(Date.now()), 1000);
const frame = setInterval(() => {
  if (!dirty) return;
  dirty = false;
  store.snapshot();
  frames++;
}, 100);
store.tick(Date.now());

try {
  await liveStream(
    {
      ...(netns !== undefined ? { netns } : {}),
      // as `droptrace top` (TOP_LIVE_DEFAULTS) but without host samples, like bench run 3
      statsIntervalMs: 2000,
      ringBytes: 8 * 1024 * 1024,
      countersIntervalMs: 0,
      nics: 'none',
    },
    emit,
    ac.signal,
  );
} catch (e) {
  process.stderr.write(`tui-store-run: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
} finally {
  clearInterval(ticker);
  clearInterval(frame);
}
const snap = store.snapshot();
if (finalStats) out(finalStats);
out({ type: 'bench-store', lines, delivered, folded, frames: frames + 1, store_total: snap.total, groups: snap.groups.length });

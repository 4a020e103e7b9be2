/**
 * `droptrace top` (and `droptrace` with no arguments): the full-screen view for the on-call
 * engineer. Feeds the store from the live pipeline (drops, stats, host table samples) or from
 * a recording, and renders it with Ink. Errors are DroptraceErrors for the CLI's one-line
 * report: a bad recording or flag is found before the screen is taken over.
 */
// first: React's build is chosen when it loads
import './react-production.js';
import { render } from 'ink';
import { createElement } from 'react';
import { DroptraceError } from '../errors.js';
import { liveStream, requireTracingCaps } from '../pipeline/live.js';
import type { LiveOptions } from '../pipeline/live.js';
import { App } from './components/App.js';
import { loadRecording, ReplayPlayer } from './replay.js';
import { GROUP_BYS, SORTS, TuiStore } from './store.js';
import type { GroupBy, SortBy } from './store.js';
import { themeFrom } from './theme.js';
import { TOP_BACKLOG_MIB, TurnBudget } from './budget.js';
import type { StreamLine } from '../pipeline/events.js';

export interface TopOptions {
  /** play this recording instead of tracing live */
  replay?: string;
  /** live tracing options (counters lines included); TOP_LIVE_DEFAULTS when not given */
  live?: LiveOptions;
  /** replay pace: 1 = as recorded (default), 10 = ten times faster, 0 = everything at once */
  speed?: number;
  groupBy?: GroupBy;
  sort?: SortBy;
  filter?: string;
}

export { TOP_BACKLOG_MIB };

/**
 * Live defaults for `top`: stats every 2 s, so the lost-events count on screen is never more
 * than 2 s old; tables every 5 s; pods from node-local discovery (and the API in a pod).
 */
export const TOP_LIVE_DEFAULTS: LiveOptions = {
  statsIntervalMs: 2000,
  ringBytes: 8 * 1024 * 1024,
  backlogBytes: TOP_BACKLOG_MIB * 1024 * 1024,
  countersIntervalMs: 5000,
  nics: 'physical',
  pods: {},
};

/**
 * Leaves (kind × reason × netns × pod × flow) the live view keeps; drops of further keys go to
 * one `(other flows)` leaf per kind and reason, counted in the header. A leaf costs ~3.4 KiB
 * of heap, and under a flood V8 lets the heap grow to ~2.5 times what is live before it
 * collects: in a 16,384-flow flood (bench/top-flood.ts, 20 s) peak RSS went from 375 MiB with
 * a leaf per flow to 309 MiB with 4096. A screen shows a few dozen groups; replays keep the
 * store's default.
 */
export const LIVE_MAX_LEAVES = 4096;

const ALT_SCREEN_ON = '\x1b[?1049h\x1b[H';
const ALT_SCREEN_OFF = '\x1b[?1049l\x1b[?25h';

function usage(message: string, hint?: string): DroptraceError {
  return new DroptraceError('E_USAGE', 'usage', message, hint ? { hint } : {});
}

export function checkTopOptions(o: TopOptions): void {
  if (o.replay !== undefined && o.live !== undefined) throw usage('--replay plays a recording: it cannot be combined with live tracing options');
  if (o.speed !== undefined) {
    if (o.replay === undefined) throw usage('--speed only applies to --replay');
    if (!(Number.isFinite(o.speed) && o.speed >= 0)) throw usage(`--speed wants a number >= 0 (0 loads everything at once), got ${o.speed}`);
  }
  if (o.groupBy !== undefined && !GROUP_BYS.includes(o.groupBy)) throw usage(`--group-by wants one of ${GROUP_BYS.join(', ')}, got "${o.groupBy}"`);
  if (o.sort !== undefined && !SORTS.includes(o.sort)) throw usage(`--sort wants one of ${SORTS.join(', ')}, got "${o.sort}"`);
}

/** Runs the TUI until `q`, Ctrl-C, SIGTERM or SIGHUP; resolves with the exit code. */
export async function runTop(o: TopOptions): Promise<number> {
  checkTopOptions(o);
  const recording = o.replay !== undefined ? await loadRecording(o.replay) : null;
  if (!process.stdout.isTTY) {
    throw usage('top draws a full-screen view and needs a terminal on stdout', 'use droptrace stream for NDJSON');
  }
  if (recording === null) requireTracingCaps();

  const store = new TuiStore({
    source: recording ? 'replay' : 'live',
    ...(o.groupBy ? { groupBy: o.groupBy } : {}),
    ...(o.sort ? { sortBy: o.sort } : {}),
    ...(o.filter ? { filter: o.filter } : {}),
    ...(recording ? {} : { maxLeaves: LIVE_MAX_LEAVES }),
  });

  const keys = process.stdin.isTTY === true;
  const restoreScreen = () => process.stdout.write(ALT_SCREEN_OFF);
  process.stdout.write(ALT_SCREEN_ON);
  process.once('exit', restoreScreen);
  const app = render(
    createElement(App, {
      store,
      theme: themeFrom(process.env),
      keys,
      ...(recording && o.speed !== undefined ? { speed: o.speed } : {}),
    }),
    { maxFps: 10, exitOnCtrlC: true, patchConsole: true },
  );

  // bounded work per event-loop turn: frames and keys always get their turn
  const budget = new TurnBudget({ onShed: (n) => store.shed(n) });
  let quitting = false;
  const quit = () => {
    quitting = true;
    budget.close();
    app.unmount();
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, quit);

  let player: ReplayPlayer | null = null;
  let ticker: NodeJS.Timeout | null = null;
  const ac = new AbortController();
  let live: Promise<unknown> | null = null;
  let failure: unknown = null;
  try {
    if (recording) {
      player = new ReplayPlayer(recording, store, o.speed ?? 1);
      player.start();
    } else {
      const write = (line: StreamLine) => {
        if (!quitting) store.write(line);
      };
      // after q nobody reads the last fold, host sample or stats line: detach at once
      live = liveStream({ ...(o.live ?? TOP_LIVE_DEFAULTS), budget, finalLines: false }, write, ac.signal).then(
        () => store.end('stream ended'),
        (e: unknown) => {
          failure = e;
          quit();
        },
      );
      // the header's uptime and the sparklines move once a second, drops or not
      ticker = setInterval(() => store.tick(Date.now()), 1000);
      store.tick(Date.now());
    }
    await app.waitUntilExit();
  } finally {
    for (const s of signals) process.off(s, quit);
    player?.stop();
    if (ticker) clearInterval(ticker);
    // nothing is drawn any more: the backlog is shed and the tracer detaches at once
    quitting = true;
    budget.close();
    ac.abort();
    // let the tracer detach before the process moves on
    await live;
    app.unmount();
    restoreScreen();
    process.off('exit', restoreScreen);
    // The screen is restored and the tracer detached: nothing is left to do. A host sample or
    // pod lookup still under way (a /proc walk, nsenter per namespace) is read by nobody, and
    // tearing down the heap and the addon by hand took 400 ms under load: exit once the exit
    // code is set (the caller's promise callbacks run before the check phase).
    setImmediate(() => process.exit());
  }
  if (failure !== null) throw failure;
  return 0;
}

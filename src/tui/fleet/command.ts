/**
 * `droptrace top --prometheus URL`: the fleet view. Needs no privileges and no tracer: it only
 * asks Prometheus. Runs until q, Ctrl-C, SIGTERM or SIGHUP; Prometheus being down is shown on
 * screen and retried, never an exit.
 */
// first: React's build is chosen when it loads
import '../react-production.js';
import { render } from 'ink';
import { createElement } from 'react';
import { DroptraceError } from '../../errors.js';
import { FleetPoller } from '../../fleet/poller.js';
import { rateWindow } from '../../fleet/options.js';
import { httpQuery, showUrl } from '../../fleet/prom.js';
import { themeFrom } from '../theme.js';
import { FleetApp } from './FleetApp.js';

export interface FleetTopOptions {
  url: URL;
  sinceS: number;
  /** per query; default 10 s */
  timeoutMs?: number;
  /** between snapshots; default 5 s */
  intervalMs?: number;
}

const ALT_SCREEN_ON = '\x1b[?1049h\x1b[H';
const ALT_SCREEN_OFF = '\x1b[?1049l\x1b[?25h';

export async function runFleetTop(o: FleetTopOptions): Promise<number> {
  if (!process.stdout.isTTY) {
    throw new DroptraceError('E_USAGE', 'usage', 'top draws a full-screen view and needs a terminal on stdout', { hint: 'use droptrace stream --prometheus for NDJSON' });
  }
  const poller = new FleetPoller({
    url: showUrl(o.url),
    query: httpQuery(o.url, o.timeoutMs),
    window: { sinceS: o.sinceS, rateS: rateWindow(o.sinceS) },
    ...(o.intervalMs !== undefined ? { intervalMs: o.intervalMs } : {}),
  });
  const restoreScreen = () => process.stdout.write(ALT_SCREEN_OFF);
  process.stdout.write(ALT_SCREEN_ON);
  process.once('exit', restoreScreen);
  const app = render(createElement(FleetApp, { poller, theme: themeFrom(process.env), keys: process.stdin.isTTY === true }), {
    maxFps: 10,
    exitOnCtrlC: true,
    patchConsole: true,
  });
  const quit = () => app.unmount();
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, quit);
  poller.start();
  try {
    await app.waitUntilExit();
  } finally {
    for (const s of signals) process.off(s, quit);
    poller.stop();
    app.unmount();
    restoreScreen();
    process.off('exit', restoreScreen);
  }
  // a query still under way is read by nobody: its socket must not hold the exit for seconds
  setImmediate(() => process.exit());
  return 0;
}

/**
 * Frames from recorded streams: load a fixture into a store the way `--replay --speed 0` does,
 * render the real App with ink-testing-library at a fixed terminal size, press keys.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { render } from 'ink-testing-library';
import { App } from '../../src/tui/components/App.js';
import { parseRecording, ReplayPlayer } from '../../src/tui/replay.js';
import { TuiStore } from '../../src/tui/store.js';
import type { StoreOptions } from '../../src/tui/store.js';
import { themeFrom } from '../../src/tui/theme.js';
import type { Theme } from '../../src/tui/theme.js';
import type { StreamLine } from '../../src/pipeline/events.js';

export const FIXTURES = join(import.meta.dirname, 'fixtures');
/** Recorded by fixtures/record.sh: drops in one netns (b) from two senders (a, c). */
export const DROPS = join(FIXTURES, 'drops.ndjson');

export const theme: Theme = themeFrom({ LANG: 'C.UTF-8', NO_COLOR: '1' });

export function fixtureLines(file = DROPS): StreamLine[] {
  return parseRecording(readFileSync(file, 'utf8'), file).lines.map((l) => l.line);
}

/** A store holding the whole recording, as `--replay FILE --speed 0` shows it. */
export function loadedStore(lines: StreamLine[] = fixtureLines(), o: StoreOptions = {}): TuiStore {
  const store = new TuiStore({ source: 'replay', ...o });
  const text = lines.map((l) => JSON.stringify(l)).join('\n');
  new ReplayPlayer(parseRecording(text, 'fixture'), store, 0).start();
  return store;
}

/** ink needs a turn of the event loop to see a key (a lone ESC waits for a possible sequence). */
export const settle = () => new Promise((r) => setTimeout(r, 20));

export async function renderStore(store: TuiStore, columns = 80, rows = 24) {
  const r = render(<App store={store} theme={theme} size={{ columns, rows }} onQuit={() => undefined} />);
  await settle();
  /** Each key redraws at least once (in debug mode Ink writes every render): wait for that, not for a fixed time. */
  const press = async (...keys: string[]) => {
    for (const k of keys) {
      const before = r.frames.length;
      r.stdin.write(k);
      const end = Date.now() + 2000;
      while (r.frames.length === before && Date.now() < end) await new Promise((res) => setTimeout(res, 5));
      await new Promise((res) => setImmediate(res));
    }
  };
  const frame = () => r.lastFrame() ?? '';
  return { ...r, press, frame };
}

export const KEY = { up: '\x1b[A', down: '\x1b[B', enter: '\r', esc: '\x1b', backspace: '\x7f' } as const;

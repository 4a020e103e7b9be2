/** The keys, always on the last line; while a filter is typed, the filter prompt instead. */
import type { Snapshot } from '../store.js';
import type { Theme } from '../theme.js';
import { Line } from './Line.js';
import type { Segs } from './Line.js';

export function footerLine(s: Snapshot, t: Theme, keys: boolean): Segs {
  if (s.editing !== null) {
    return [
      { text: 'filter: ', bold: true, color: t.accent },
      { text: s.editing },
      { text: '_', inverse: true },
      s.filterError !== null
        ? { text: `   ${s.filterError} · esc cancels`, color: t.warn }
        : { text: '   pod: ns: kind: reason: ip: netns: dns: or any word · enter keeps · esc cancels', dim: true },
    ];
  }
  if (!keys) return [{ text: 'keys off: stdin is not a terminal · ctrl-c quits', dim: true }];
  const k = (key: string, what: string): Segs => [
    { text: '  ' },
    { text: key, bold: true, color: t.accent },
    { text: ` ${what}`, dim: true },
  ];
  return [
    ...k('↑↓', 'select').slice(1),
    ...k('⏎', s.detailOpen ? 'close' : 'detail'),
    ...k('g', 'group'),
    ...k('s', 'sort'),
    ...k('/', 'filter'),
    ...k('p', s.paused ? 'resume' : 'pause'),
    ...k('c', 'clear'),
    ...k('q', 'quit'),
    ...k('?', 'help'),
  ];
}

export function Footer({ snap, theme, width, keys }: { snap: Snapshot; theme: Theme; width: number; keys: boolean }) {
  return <Line segs={footerLine(snap, theme, keys)} width={width} unicode={theme.unicode} />;
}

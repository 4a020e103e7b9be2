/** The keys, always on the last line; while a filter is typed, the filter prompt instead. */
import type { Snapshot } from '../store.js';
import type { Theme } from '../theme.js';
import { Line } from './Line.js';
import type { Segs } from './Line.js';

/** `detailOpen`: the pane on screen now; `width`: when given, `c clear` makes room for `b` (help lists both). */
export function footerLine(s: Snapshot, t: Theme, keys: boolean, detailOpen = s.detailOpen ?? false, width = Infinity): Segs {
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
  // the benign key only once there are benign drops to show or hide
  const benign = s.benignDrops > 0 ? k('b', s.showBenign ? 'hide benign' : 'benign') : [];
  const line = (clear: Segs): Segs => [
    ...k('↑↓', 'select').slice(1),
    ...k('⏎', detailOpen ? 'close' : 'detail'),
    ...k('g', 'group'),
    ...k('s', 'sort'),
    ...k('/', 'filter'),
    ...benign,
    ...k('p', s.paused ? 'resume' : 'pause'),
    ...clear,
    ...k('q', 'quit'),
    ...k('?', 'help'),
  ];
  const full = line(k('c', 'clear'));
  return full.reduce((n, seg) => n + seg.text.length, 0) <= width ? full : line([]);
}

export function Footer({ snap, theme, width, keys, detailOpen }: { snap: Snapshot; theme: Theme; width: number; keys: boolean; detailOpen?: boolean }) {
  return <Line segs={footerLine(snap, theme, keys, detailOpen, width)} width={width} unicode={theme.unicode} />;
}

/**
 * The drop groups: one row each with total, rate, a 60 s sparkline and first/last seen (UTC).
 * The selected row is marked with `›` and inverse video (neither is a colour). The window
 * scrolls to keep the selection in view.
 */
import { clock, count, padEnd, padStart, rate, sparkline } from '../format.js';
import type { GroupBy, Snapshot } from '../store.js';
import { SPARK_SECONDS } from '../store.js';
import type { Theme } from '../theme.js';
import { Line, rule } from './Line.js';
import type { Segs } from './Line.js';

const COLUMN: Record<GroupBy, string> = { kind: 'KIND', pod: 'POD / NETNS', flow: 'FLOW', reason: 'REASON' };
const SORT_NAMES = { rate: 'rate', total: 'total', last: 'last seen', first: 'first seen', name: 'name' } as const;

interface Widths {
  label: number;
  spark: number;
  first: boolean;
}

/** Label and sparkline share what the fixed columns leave; the label gets what it needs first. */
export function widths(s: Snapshot, width: number): Widths {
  const first = width >= 70;
  const fixed = 1 + 1 + 7 + 1 + 7 + 1 + 1 + 8 + (first ? 9 : 0);
  const free = Math.max(10, width - fixed);
  const longest = Math.max(COLUMN[s.groupBy].length, ...s.groups.map((g) => g.label.length));
  const spark = Math.max(8, Math.min(SPARK_SECONDS, free - Math.max(8, Math.min(longest, 40))));
  return { label: Math.max(1, free - spark), spark, first };
}

export function groupLines(s: Snapshot, t: Theme, width: number, budget: number): Segs[] {
  if (budget <= 0) return [];
  const w = widths(s, width);
  const extra: Segs = [{ text: `· sort ${SORT_NAMES[s.sortBy]}`, dim: true }];
  if (s.groupBy === 'pod' && s.start?.attribution != null) {
    // say where pod names come from, and why a drop shows its netns instead
    const a = s.start.attribution;
    extra.push({ text: a === 'none' ? ' · no pod attribution: netns shown' : ` · pods from ${a}`, dim: true });
  }
  if (s.filter !== '') {
    extra.push({ text: ' · filter ', dim: true }, { text: `"${s.filter}"`, bold: true, color: t.accent });
    extra.push({ text: ` ${count(s.shownTotal)} shown, ${count(s.hiddenDrops)} hidden`, dim: true });
  }
  const title = rule(`drops by ${s.groupBy}`, width, extra);
  if (budget === 1) return [title];
  const head: Segs = [
    {
      text:
        ' ' +
        padEnd(COLUMN[s.groupBy], w.label) +
        ' ' +
        'TOTAL'.padStart(7) +
        ' ' +
        'RATE/s'.padStart(7) +
        ' ' +
        padEnd(`LAST ${SPARK_SECONDS}s`, w.spark) +
        (w.first ? ' ' + 'FIRST'.padEnd(8) : '') +
        ' ' +
        'LAST'.padEnd(8),
      dim: true,
      bold: true,
    },
  ];
  const rows = budget - 2;
  const out: Segs[] = [title, head];
  if (s.groups.length === 0) {
    let why: string;
    if (s.filter !== '') why = `no drops match "${s.filter}" (esc clears the filter)`;
    else if (s.source === 'live' && s.start === null) why = 'attaching probes…';
    else why = s.clearedAt !== null ? `no drops since the clear at ${clock(s.clearedAt)} UTC` : 'no drops yet';
    out.push([{ text: `  ${why}`, dim: true }]);
  } else {
    const n = s.groups.length;
    const top = Math.max(0, Math.min(s.selected - Math.floor(rows / 2), n - rows));
    for (let i = top; i < Math.min(n, top + rows); i++) {
      const g = s.groups[i]!;
      const sel = i === s.selected;
      const line =
        (sel ? '›' : ' ') +
        padEnd(g.label, w.label, t.unicode) +
        ' ' +
        padStart(count(g.total), 7) +
        ' ' +
        padStart(rate(g.rate), 7) +
        ' ';
      const spark = sparkline(g.spark, w.spark, t.spark);
      const times = (w.first ? ' ' + clock(g.first) : '') + ' ' + clock(g.last);
      if (sel) out.push([{ text: line + spark + times, inverse: true, bold: true }]);
      else out.push([{ text: line }, { text: spark, color: t.accent }, { text: times, dim: true }]);
    }
  }
  while (out.length < budget) out.push([]);
  return out.slice(0, budget);
}

export function GroupTable({ snap, theme, width, budget }: { snap: Snapshot; theme: Theme; width: number; budget: number }) {
  return (
    <>
      {groupLines(snap, theme, width, budget).map((segs, i) => (
        <Line key={i} segs={segs} width={width} unicode={theme.unicode} fill={segs.some((x) => x.inverse === true)} />
      ))}
    </>
  );
}

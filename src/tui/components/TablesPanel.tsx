/**
 * Kernel tables against their limits: neighbour entries vs gc_thresh3, conntrack count vs
 * nf_conntrack_max (the fullest netns first), cloud NIC allowance counters as rates. A table
 * at 90% or more gets the warning colour and a `!`, and is shown first when space is short.
 */
import { bar, clock, padEnd, percent } from '../format.js';
import type { Snapshot } from '../store.js';
import type { TableLevel, Tables } from '../tables.js';
import type { Theme } from '../theme.js';
import { Line, rule } from './Line.js';
import type { Segs } from './Line.js';

const CONNTRACK_SHOWN = 3;

export function levelSegs(l: TableLevel, t: Theme, width: number): Segs {
  const labelW = Math.max(18, Math.min(28, Math.floor(width * 0.28)));
  // exact numbers: "1023/1024" must not read as "1.0k/1.0k"
  const used = `${l.used}/${l.limit === null ? '?' : l.limit}`;
  const segs: Segs = [
    { text: padEnd((l.warn ? '! ' : '  ') + l.label, labelW, t.unicode), color: l.warn ? t.warn : undefined, bold: l.warn },
    { text: ' ' + used.padStart(13) },
    { text: ' ' + (l.fill === null ? '-' : percent(l.fill)).padStart(4), color: l.warn ? t.warn : undefined, bold: l.warn },
  ];
  if (width >= 72) segs.push({ text: ' ' + bar(l.fill ?? 0, 10, t.unicode), color: l.warn ? t.warn : t.accent, dim: !l.warn });
  const rest = [...l.rising, l.note].join('  ');
  segs.push({ text: '  ' + rest, color: l.rising.length > 0 ? t.warn : undefined, dim: l.rising.length === 0 });
  return segs;
}

function allowanceSegs(tb: Tables, t: Theme): Segs {
  if (tb.allowances.length === 0) {
    return [{ text: `  nic allowance counters: none on ${tb.nics} NIC${tb.nics === 1 ? '' : 's'} (cloud NICs such as ENA have them)`, dim: true }];
  }
  const segs: Segs = [{ text: '  nic ', dim: true }];
  for (const a of tb.allowances) {
    const r = a.rate === null ? '?/s' : `${a.rate < 10 ? a.rate.toFixed(1) : Math.round(a.rate)}/s`;
    segs.push({ text: `${a.warn ? '! ' : ''}${a.ifname} ${a.counter} ${r} `, color: a.warn ? t.warn : undefined, bold: a.warn, dim: !a.warn });
  }
  return segs;
}

/** Title plus up to `budget - 1` lines; warnings first when not everything fits. */
export function tablesLines(s: Snapshot, t: Theme, width: number, budget: number): Segs[] {
  if (budget <= 0) return [];
  const tb = s.tables;
  const title = rule('kernel tables', width, tb?.time != null ? [{ text: `at ${clock(tb.time)} UTC`, dim: true }] : []);
  if (budget === 1) return [title];
  if (tb === null) {
    const why = s.source === 'replay' ? 'no counters lines in this recording' : 'waiting for the first sample';
    return [title, [{ text: `  ${why}`, dim: true }]];
  }
  type Item = { segs: Segs; warn: boolean; order: number };
  const items: Item[] = [];
  let order = 0;
  for (const l of tb.neigh) items.push({ segs: levelSegs(l, t, width), warn: l.warn, order: order++ });
  if (tb.conntrack === null) items.push({ segs: [{ text: '  conntrack: not loaded (no nf_conntrack module)', dim: true }], warn: false, order: order++ });
  else if (tb.conntrack.length === 0) items.push({ segs: [{ text: '  conntrack: no netns with entries', dim: true }], warn: false, order: order++ });
  else {
    // the fullest few; a node with hundreds of pods has hundreds of conntrack tables
    const top = tb.conntrack.slice(0, CONNTRACK_SHOWN);
    const more = tb.conntrack.length - top.length + tb.conntrackIdle;
    top.forEach((l, i) => {
      const last = i === top.length - 1 && more > 0;
      items.push({ segs: levelSegs(last ? { ...l, note: `${l.note}  (+${more} netns less full)` } : l, t, width), warn: l.warn, order: order++ });
    });
  }
  items.push({ segs: allowanceSegs(tb, t), warn: tb.allowances.some((a) => a.warn), order: order++ });
  const room = budget - 1;
  let shown = items;
  if (items.length > room) {
    // keep every warning, then the rest in their usual order; the last line says what was left out
    const keep = room >= 2 ? room - 1 : room;
    const picked = [...items].sort((a, b) => Number(b.warn) - Number(a.warn) || a.order - b.order).slice(0, Math.max(0, keep));
    picked.sort((a, b) => a.order - b.order);
    const left = items.length - picked.length;
    shown = room >= 2 ? [...picked, { segs: [{ text: `  … ${left} more (a taller terminal shows them)`, dim: true }], warn: false, order }] : picked;
  }
  return [title, ...shown.map((i) => i.segs)];
}

export function TablesPanel({ snap, theme, width, budget }: { snap: Snapshot; theme: Theme; width: number; budget: number }) {
  return (
    <>
      {tablesLines(snap, theme, width, budget).map((segs, i) => (
        <Line key={i} segs={segs} width={width} unicode={theme.unicode} />
      ))}
    </>
  );
}

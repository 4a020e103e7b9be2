/** `?`: every key, what the columns mean, and every probe with the reason it is not live. */
import { RATE_SECONDS, SPARK_SECONDS } from '../store.js';
import type { Snapshot } from '../store.js';
import type { Theme } from '../theme.js';
import { Line, rule } from './Line.js';
import type { Segs } from './Line.js';

const KEYS: Array<[string, string]> = [
  ['↑ ↓  k j', 'select a group (PgUp PgDn Home End jump)'],
  ['enter', 'open or close the detail pane (open at start if there is room)'],
  ['g / s', 'group by kind → pod → flow → reason / sort by rate → total → last → first → name'],
  ['/', 'filter as typed: kind=K pod:NAME ns=NS ip=CIDR port=N dns:NAME reason:R'],
  ['', 'and/or/not ( ), a space is and, a word: any field; enter keeps, esc cancels'],
  ['p', 'pause the view (drops are still counted; the header says how many came)'],
  ['c', 'clear drop groups (lost events, kernel counts, tables are since start)'],
  ['b', 'show or hide benign drops (routine on every node: see the detail)'],
  ['esc', 'close help, then the detail pane, then clear the filter'],
  ['q  ctrl-c', 'quit'],
];

export function helpLines(s: Snapshot, t: Theme, width: number, budget: number): Segs[] {
  const out: Segs[] = [rule('help (? or esc closes)', width)];
  for (const [k, what] of KEYS) out.push([{ text: `  ${k.padEnd(11)}`, bold: true, color: t.accent }, { text: what }]);
  out.push([{ text: '  probes', bold: true }]);
  for (const p of s.start?.probes ?? []) {
    const mark = p.state === 'attached' ? t.ok : p.state === 'standby' ? '·' : p.state === 'waiting' ? (t.unicode ? '…' : '~') : t.no;
    out.push([
      { text: `  ${mark} ${p.probe} ${p.hook} `, color: p.state === 'attached' ? t.good : undefined },
      { text: p.state === 'attached' ? 'live' : (p.why ?? p.state), dim: p.state !== 'unavailable', color: p.state === 'unavailable' ? t.warn : undefined },
    ]);
  }
  if (!s.start) out.push([{ text: '  (no start line yet)', dim: true }]);
  if (s.start?.attribution != null) out.push([{ text: '  pods from ', bold: true }, { text: s.start.attribution }]);
  for (const u of s.tables?.unavailable ?? []) out.push([{ text: `  tables: ${u}`, color: t.warn }]);
  const notes = [
    `RATE/s: drops/s over the last ${RATE_SECONDS} whole seconds. LAST ${SPARK_SECONDS}s: a bar per second (or`,
    'a few), scaled per row. Times are UTC. lost: detail events the kernel or userspace could',
    'not pass on in time; "kernel exact" counts every drop, lost or not. Tables: ! at 90%.',
  ];
  for (const n of notes) out.push([{ text: `  ${n}`, dim: true }]);
  while (out.length < budget) out.push([]);
  return out.slice(0, budget);
}

export function Help({ snap, theme, width, budget }: { snap: Snapshot; theme: Theme; width: number; budget: number }) {
  return (
    <>
      {helpLines(snap, theme, width, budget).map((segs, i) => (
        <Line key={i} segs={segs} width={width} unicode={theme.unicode} />
      ))}
    </>
  );
}

/**
 * The selected group in an engineer's words: what happened and what to do, the table that
 * explains it, where in the kernel, which pods/netns, which exact flows, DNS names.
 */
import { clock, count, percent, rate } from '../format.js';
import type { Counted, Snapshot } from '../store.js';
import type { Theme } from '../theme.js';
import { Line, rule } from './Line.js';
import type { Segs } from './Line.js';

const list = (xs: Counted[], max: number) =>
  xs
    .slice(0, max)
    .map((x) => `${x.name} ×${count(x.count)}`)
    .join(' · ') + (xs.length > max ? ` · +${xs.length - max} more` : '');

function field(name: string, text: string, color?: string): Segs {
  return [{ text: name.padEnd(8), dim: true, bold: true }, { text, color }];
}

/** Word-wraps to at most `max` lines; the last one is cut with `…` if the text goes on. */
export function wrap(text: string, width: number, max: number): string[] {
  const out: string[] = [];
  let rest = text;
  while (rest.length > 0 && out.length < max) {
    if (rest.length <= width || out.length === max - 1) {
      out.push(rest);
      break;
    }
    let at = rest.lastIndexOf(' ', width);
    if (at <= 0) at = width;
    out.push(rest.slice(0, at));
    rest = rest.slice(at).trimStart();
  }
  return out;
}

export function detailLines(s: Snapshot, t: Theme, width: number, budget: number): Segs[] {
  if (budget <= 0) return [];
  const d = s.detail;
  if (d === null) return [rule('detail', width), [{ text: '  nothing selected', dim: true }]].slice(0, budget);
  const title = rule(`detail: ${d.label}`, width, [
    { text: `· ${count(d.total)} drops · ${rate(d.rate)}/s · first ${clock(d.first)} · last ${clock(d.last)} UTC`, dim: true },
  ]);
  const out: Segs[] = [title];
  const top = d.kinds[0];
  // long sentences get a second line when the pane is tall enough to afford it
  const lines = budget >= 8 ? 2 : 1;
  const wrapped = (name: string, text: string, color?: string) =>
    wrap(text, Math.max(20, width - 8), lines).forEach((l, i) => out.push(field(i === 0 ? name : '', l, color)));
  if (d.kinds.length > 1) out.push(field('kinds', list(d.kinds.map((k) => ({ name: k.kind, count: k.count })), 4)));
  if (top?.explain) wrapped('what', top.explain);
  if (top?.hint) wrapped('do', top.hint, t.accent);
  for (const l of d.related.slice(0, 2)) {
    const limit = l.limit === null ? '?' : String(l.limit);
    const text = `${l.label} ${l.used}/${limit}${l.fill !== null ? ` (${percent(l.fill)})` : ''} ${l.note}${l.rising.length ? '  ' + l.rising.join('  ') : ''}`;
    out.push(field('table', (l.warn ? '! ' : '') + text, l.warn ? t.warn : undefined));
  }
  out.push(field('pods', list(d.pods, 3)));
  // the flows next to the pods, the busiest first: a short pane (the first screen) still shows them
  const flows = d.flows.slice(0, budget >= 12 ? 8 : 2);
  flows.forEach((f, i) => out.push(field(i === 0 ? 'flows' : '', `${f.flow} ×${count(f.count)} at ${clock(f.last)}`)));
  if (d.flows.length > flows.length) out.push(field('', `+${d.flows.length - flows.length} more flows`));
  if (d.services.length) out.push(field('service', list(d.services, 2)));
  if (d.names.length) out.push(field('dns', d.names.slice(0, 6).join(' · ')));
  if (d.nexthops.length) out.push(field('nexthop', list(d.nexthops, 4)));
  if (d.evidence.length) out.push(field('signs', list(d.evidence, 3)));
  for (const why of d.benign.slice(0, 1)) wrapped('benign', why, t.good);
  // the kernel's own exact counters next to the reasons: they include drops whose details were lost
  const exact = new Map(d.kernel.map((k) => [k.name, k.count]));
  const reasons = d.reasons
    .slice(0, 3)
    .map((r) => `${r.name} ×${count(r.count)}${exact.has(r.name) ? ` (kernel ${count(exact.get(r.name)!)})` : ''}`);
  const where = [
    reasons.length ? `reason ${reasons.join(' · ')}${d.reasons.length > 3 ? ` · +${d.reasons.length - 3} more` : ''}` : '',
    d.locations.length ? `at ${list(d.locations, 2)}` : '',
    d.ifnames.length ? `dev ${list(d.ifnames, 2)}` : '',
  ].filter((x) => x !== '');
  const others = d.kernel.filter((k) => !d.reasons.some((r) => r.name === k.name));
  if (others.length) where.push(others.map((k) => `${k.name} ${count(k.count)}`).join(' · '));
  out.push(field('kernel', where.join('  ')));
  // --stack: the latest stack, callers to the right (the pane is short: as many frames as fit)
  if (d.stack) wrap(`${d.stack.frames.join(' ← ')}  (${clock(d.stack.at)})`, Math.max(20, width - 8), budget >= 12 ? 3 : 1).forEach((l, i) => out.push(field(i === 0 ? 'stack' : '', l)));
  return out.slice(0, budget);
}

export function DetailPane({ snap, theme, width, budget }: { snap: Snapshot; theme: Theme; width: number; budget: number }) {
  return (
    <>
      {detailLines(snap, theme, width, budget).map((segs, i) => (
        <Line key={i} segs={segs} width={width} unicode={theme.unicode} />
      ))}
    </>
  );
}

/**
 * What the fleet view shows, as styled lines (pure: the component only lays them out). The
 * header says where the numbers come from and whether they are current; a Prometheus that does
 * not answer is said in the header's second line, with the age of what is still shown. A fill
 * past 90% gets the warning colour and a `!` (colour is never the only signal).
 */
import { clock, count, duration, padEnd, padStart, percent, rate } from '../format.js';
import type { Segs } from '../components/Line.js';
import type { Theme } from '../theme.js';
import { WARN_FILL } from '../../fleet/model.js';
import type { Fleet, FleetNode, FleetPod } from '../../fleet/model.js';
import type { FleetState } from '../../fleet/poller.js';

export const FLEET_HEADER_LINES = 3;

/** A window as people say it: `90s`, `10m`, `1h`, `1h30m`, `2d`. */
export function span(s: number): string {
  const parts: string[] = [];
  let rest = Math.round(s);
  for (const [unit, n] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (rest >= n) parts.push(`${Math.floor(rest / n)}${unit}`);
    rest %= n;
  }
  return parts.slice(0, 2).join('') || '0s';
}

export function fleetHeader(s: FleetState, t: Theme, nowMs: number): Segs[] {
  const f = s.fleet;
  const state: Segs =
    s.error !== null
      ? [{ text: ' PROMETHEUS DOWN ', inverse: true, bold: true, color: t.bad }]
      : f === null
        ? [{ text: ' CONNECTING… ', inverse: true, color: t.warn }]
        : [{ text: ' LIVE ', inverse: true, bold: true, color: t.good }];
  const l1: Segs = [{ text: 'droptrace fleet ', bold: true, color: t.accent }, ...state, { text: '  prometheus ', dim: true }, { text: s.url }];
  if (f) l1.push({ text: '  nodes ', dim: true }, { text: String(f.nodes.length) }, { text: `  drops in ${span(f.since_s)}, rates over ${span(f.rate_window_s)}`, dim: true });

  let l2: Segs;
  if (s.error !== null) {
    const inS = s.retryAtMs === null ? 0 : Math.max(0, Math.ceil((s.retryAtMs - nowMs) / 1000));
    l2 = [{ text: `prometheus ${s.url}: ${s.error}, ${inS > 0 ? `retrying in ${inS}s` : 'retrying now'}`, bold: true, color: t.bad }];
    if (s.updatedMs !== null) l2.push({ text: `  (showing ${clock(s.updatedMs)} UTC, ${duration(nowMs - s.updatedMs)} old)`, color: t.warn });
  } else if (s.updatedMs === null) l2 = [{ text: `asking prometheus ${s.url}…`, dim: true }];
  else l2 = [{ text: 'updated ', dim: true }, { text: `${clock(s.updatedMs)} UTC` }];

  const l3: Segs = [];
  if (f) {
    const perS = f.nodes.reduce((a, n) => a + n.per_s, 0);
    const drops = f.nodes.reduce((a, n) => a + n.drops, 0);
    const lost = f.nodes.reduce((a, n) => a + n.lost_events, 0);
    const full = f.nodes.filter((n) => worstFill(n) > WARN_FILL).length;
    l3.push({ text: rate(perS), bold: true }, { text: ' drops/s  ', dim: true }, { text: count(drops) }, { text: ` drops in ${span(f.since_s)}  `, dim: true });
    l3.push({ text: 'lost events ', dim: true }, lost > 0 ? { text: count(lost), bold: true, color: t.bad } : { text: '0', color: t.good });
    if (full > 0) l3.push({ text: `  ${full} node(s) with a table past ${WARN_FILL * 100}%`, bold: true, color: t.warn });
  }
  return [l1, l2, l3];
}

function worstFill(n: FleetNode): number {
  return Math.max(n.conntrack_fill ?? 0, ...n.neigh.map((x) => x.fill));
}

function fillSegs(fill: number | null, width: number, t: Theme): Segs {
  if (fill === null) return [{ text: padStart('-', width), dim: true }];
  const warn = fill > WARN_FILL;
  return [{ text: padStart(`${warn ? '!' : ''}${percent(fill)}`, width), ...(warn ? { color: t.warn, bold: true } : {}) }];
}

function nicPerS(n: FleetNode): number {
  return n.nic_allowance.reduce((a, x) => a + x.per_s, 0);
}

const COLS = { node: 20, perS: 8, drops: 9, neigh: 6, ct: 6, nic: 8, lost: 6 };

export function nodeTableHead(f: Fleet): Segs {
  const c = COLS;
  return [
    {
      text:
        ' ' +
        padEnd('node', c.node) +
        padStart('drops/s', c.perS) +
        padStart(`in ${span(f.since_s)}`, c.drops) +
        padStart('neigh', c.neigh) +
        padStart('ct', c.ct) +
        padStart('nic/s', c.nic) +
        padStart('lost', c.lost) +
        '  top kinds',
      dim: true,
    },
  ];
}

export function nodeRow(n: FleetNode, selected: boolean, t: Theme): Segs {
  const c = COLS;
  const neigh = n.neigh.length ? Math.max(...n.neigh.map((x) => x.fill)) : null;
  const nic = nicPerS(n);
  const kinds = n.kinds.slice(0, 3).map((k) => `${k.kind} ${count(k.drops)}`).join(' · ');
  const more = n.kinds.length > 3 ? ` +${n.kinds.length - 3}` : '';
  return [
    { text: selected ? '›' : ' ', bold: true, color: t.accent },
    { text: padEnd(n.node, c.node, t.unicode), bold: selected, inverse: selected },
    { text: padStart(rate(n.per_s), c.perS), bold: true },
    { text: padStart(count(n.drops), c.drops) },
    ...fillSegs(neigh, c.neigh, t),
    ...fillSegs(n.conntrack_fill, c.ct, t),
    nic > 0 ? { text: padStart(rate(nic), c.nic), bold: true, color: t.warn } : { text: padStart('0', c.nic), dim: true },
    n.lost_events > 0 ? { text: padStart(count(n.lost_events), c.lost), color: t.bad } : { text: padStart('0', c.lost), dim: true },
    { text: '  ' },
    { text: kinds === '' ? 'no drops' : kinds + more, ...(kinds === '' ? { dim: true } : {}) },
  ];
}

/** The drill-in: kinds, pods (with their kinds when asked), tables and NIC allowances of one node. */
export function nodeDetail(n: FleetNode, since: number, pods: FleetState['pods'], t: Theme): { title: string; lines: Segs[] }[] {
  const w = span(since);
  const kinds: Segs[] = [[{ text: ' ' + padEnd('kind', 28) + padStart('drops/s', 9) + padStart(`in ${w}`, 10), dim: true }]];
  for (const k of n.kinds) kinds.push([{ text: ' ' + padEnd(k.kind, 28) }, { text: padStart(rate(k.per_s), 9), bold: true }, { text: padStart(count(k.drops), 10) }]);
  if (n.kinds.length === 0) kinds.push([{ text: ` no drops in ${w}`, dim: true }]);

  const shown: FleetPod[] = pods?.node === n.node && pods.pods ? pods.pods : n.pods;
  const podLines: Segs[] = [[{ text: ' ' + padEnd('namespace/pod', 40) + padStart(`in ${w}`, 10) + '  kinds', dim: true }]];
  for (const p of shown) {
    const ks = p.kinds ? p.kinds.map((k) => `${k.kind} ${count(k.drops)}`).join(' · ') : '…';
    podLines.push([{ text: ' ' + padEnd(`${p.namespace}/${p.pod}`, 40, t.unicode) }, { text: padStart(count(p.drops), 10) }, { text: `  ${ks}`, ...(p.kinds ? {} : { dim: true }) }]);
  }
  if (shown.length === 0) podLines.push([{ text: ` no drops attributed to a pod in ${w}`, dim: true }]);
  if (pods?.node === n.node && pods.error) podLines.push([{ text: ` pods' kinds: ${pods.error}`, color: t.bad }]);

  const tables: Segs[] = [];
  for (const x of n.neigh) tables.push([{ text: ' ' + padEnd(x.table, 16) }, ...fillSegs(x.fill, 6, t), { text: '  of gc_thresh3', dim: true }]);
  tables.push([{ text: ' ' + padEnd('conntrack', 16) }, ...fillSegs(n.conntrack_fill, 6, t), { text: '  of nf_conntrack_max (fullest netns)', dim: true }]);

  const nic: Segs[] = [];
  for (const x of n.nic_allowance) {
    nic.push([{ text: ' ' + padEnd(x.counter, 36) }, { text: padStart(`${rate(x.per_s)}/s`, 9), ...(x.per_s > 0 ? { bold: true, color: t.warn } : {}) }, { text: padStart(count(x.drops), 10) }, { text: ` in ${w}`, dim: true }]);
  }
  if (nic.length === 0) nic.push([{ text: ' none exceeded', dim: true }]);
  const lost: Segs[] = [[{ text: ' lost events ', dim: true }, n.lost_events > 0 ? { text: count(n.lost_events), color: t.bad, bold: true } : { text: '0', color: t.good }, { text: ` in ${w} (drop counts stay exact)`, dim: true }]];

  return [
    { title: `${n.node} · drops by kind`, lines: kinds },
    { title: `pods`, lines: podLines },
    { title: 'tables', lines: tables },
    { title: 'nic allowance exceeded', lines: [...nic, ...lost] },
  ];
}

/**
 * Views over the leaves, worked out per snapshot: the groups of the current group-by (filtered,
 * with totals, rates and sparklines, sorted), and the detail of one group.
 */
import { add, topN } from '../aggregate/counts.js';
import { leafMatches } from './filter.js';
import type { Predicate } from './filter.js';
import type { Data, Leaf, Recent } from './leaves.js';
import { RATE_SECONDS, SPARK_SECONDS } from './snapshot.js';
import type { GroupBy, GroupDetail, GroupRow, SortBy, StatsInfo } from './snapshot.js';
import type { TableLevel } from './tables.js';

/** What the user chose to see. */
export interface View {
  groupBy: GroupBy;
  sortBy: SortBy;
  /** null: no filter */
  match: Predicate | null;
  /** false: benign drops are left out of the groups (counted in benignDrops) */
  showBenign: boolean;
}

function groupOf(l: Leaf, d: Data, groupBy: GroupBy): { key: string; label: string } {
  switch (groupBy) {
    case 'kind':
      return { key: l.kind, label: l.kind };
    case 'reason':
      return { key: l.reason, label: l.reason };
    case 'flow':
      return { key: l.flowKey ?? '', label: l.flowKey ?? '(no IP header)' };
    case 'pod':
      return { key: l.pod ? `pod:${l.pod.namespace}/${l.pod.name}` : `netns:${l.netns}`, label: podLabel(l, d) };
  }
}

export function podLabel(l: Leaf, d: Data): string {
  if (l.pod) return `${l.pod.namespace}/${l.pod.name}`;
  if (l.overflow) return '(other pods)';
  const name = d.netnsNames.get(l.netns);
  return name ? `netns ${l.netns} (${name})` : `netns ${l.netns}`;
}

export function groupRows(
  d: Data,
  view: View,
): { rows: GroupRow[]; byKey: Map<string, Leaf[]>; shownTotal: number; shownRate: number; hiddenDrops: number; benignDrops: number } {
  const nowSec = Math.floor(d.now / 1000);
  const byKey = new Map<string, Leaf[]>();
  const acc = new Map<string, GroupRow>();
  let hiddenDrops = 0;
  let benignDrops = 0;
  let shownTotal = 0;
  let shownRate = 0;
  for (const l of d.leaves.values()) {
    if (l.benign !== null) {
      benignDrops += l.total;
      if (!view.showBenign) continue;
    }
    const nsName = d.netnsNames.get(l.netns);
    if (view.match !== null && !leafMatches(l, view.match, nsName)) {
      hiddenDrops += l.total;
      continue;
    }
    const { key, label } = groupOf(l, d, view.groupBy);
    // whole drops are summed and divided once, so rates add up exactly (no 20.599999)
    const recent = l.window.sum(nowSec - RATE_SECONDS, nowSec - 1);
    shownTotal += l.total;
    shownRate += recent;
    let g = acc.get(key);
    if (g === undefined) {
      g = { key, label, family: l.family, total: 0, rate: 0, spark: new Array<number>(SPARK_SECONDS).fill(0), first: l.first, last: l.last };
      acc.set(key, g);
      byKey.set(key, []);
    }
    if (g.family !== l.family) g.family = 'mixed';
    g.total += l.total;
    g.rate += recent;
    g.first = Math.min(g.first, l.first);
    g.last = Math.max(g.last, l.last);
    l.window.addInto(g.spark, nowSec - SPARK_SECONDS + 1);
    byKey.get(key)!.push(l);
  }
  const rows = [...acc.values()];
  for (const g of rows) g.rate /= RATE_SECONDS;
  shownRate /= RATE_SECONDS;
  const byName = (a: GroupRow, b: GroupRow) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0);
  const cmp: Record<SortBy, (a: GroupRow, b: GroupRow) => number> = {
    rate: (a, b) => b.rate - a.rate || b.total - a.total || byName(a, b),
    total: (a, b) => b.total - a.total || b.rate - a.rate || byName(a, b),
    last: (a, b) => b.last - a.last || b.total - a.total || byName(a, b),
    first: (a, b) => b.first - a.first || b.total - a.total || byName(a, b),
    name: byName,
  };
  rows.sort(cmp[view.sortBy]);
  return { rows, byKey, shownTotal, shownRate, hiddenDrops, benignDrops };
}

export function groupDetail(g: GroupRow, leaves: Leaf[], d: Data, groupBy: GroupBy, stats: StatsInfo | null): GroupDetail {
  const kinds = new Map<string, { kind: string; family: string; count: number; explain: string; hint: string; last: number }>();
  const reasons = new Map<string, number>();
  const locations = new Map<string, number>();
  const ifnames = new Map<string, number>();
  const pods = new Map<string, number>();
  const flows = new Map<string, Recent>();
  const names = new Set<string>();
  const nexthops = new Map<string, number>();
  const evidence = new Map<string, number>();
  const services = new Map<string, number>();
  const benign = new Set<string>();
  let stack: GroupDetail['stack'] = null;
  for (const l of leaves) {
    if (l.benign !== null) benign.add(l.benign);
    if (l.stack !== null && (stack === null || l.stackAt > stack.at)) stack = { frames: l.stack, at: l.stackAt };
    const k = kinds.get(l.kind);
    if (!k) kinds.set(l.kind, { kind: l.kind, family: l.family, count: l.total, explain: l.explain, hint: l.hint, last: l.last });
    else {
      k.count += l.total;
      // the newest drop's words: they carry the values in force now, and the most specific case
      if (l.last > k.last && l.explain !== '') Object.assign(k, { explain: l.explain, hint: l.hint, last: l.last });
    }
    add(reasons, l.reason, l.total);
    for (const [x, n] of l.locations) add(locations, x, n);
    for (const [x, n] of l.ifnames) add(ifnames, x, n);
    add(pods, podLabel(l, d), l.total);
    for (const [f, r] of l.recent) {
      const have = flows.get(f);
      if (have) {
        have.count += r.count;
        have.last = Math.max(have.last, r.last);
      } else flows.set(f, { ...r });
    }
    for (const n of l.names) names.add(n);
    for (const [x, n] of l.nexthops) add(nexthops, x, n);
    for (const [x, n] of l.evidence) add(evidence, x, n);
    for (const [x, n] of l.services) add(services, x, n);
  }
  const sorted = (m: Map<string, number>) => topN(m);
  const byReason = stats?.byReason ?? {};
  const kernel = [...reasons.keys()]
    .filter((r) => byReason[r] !== undefined)
    .sort()
    .map((r) => ({ name: r, count: byReason[r]! }));
  const ncf = stats?.neighCreateFailed;
  if (kinds.has('neigh_table_full') && ncf) {
    kernel.push({ name: 'neigh_create_failed ipv4', count: ncf.ipv4 }, { name: 'neigh_create_failed ipv6', count: ncf.ipv6 });
  }
  const related: TableLevel[] = [];
  const families = new Set([...kinds.values()].map((k) => k.family));
  if (families.has('neigh')) related.push(...(d.tables?.neigh ?? []));
  // a hook's own NF_DROP (nf_hook_slow), not a rule's, is how a full conntrack table drops
  if (families.has('conntrack') || locations.has('nf_hook_slow')) related.push(...(d.tables?.conntrack ?? []).slice(0, 3));
  return {
    key: g.key,
    label: g.label,
    groupBy,
    total: g.total,
    rate: g.rate,
    first: g.first,
    last: g.last,
    kinds: [...kinds.values()]
      .sort((a, b) => b.count - a.count || (a.kind < b.kind ? -1 : 1))
      .map(({ kind, family, count, explain, hint }) => ({ kind, family, count, explain, hint })),
    reasons: sorted(reasons),
    locations: sorted(locations),
    ifnames: sorted(ifnames),
    pods: sorted(pods),
    flows: [...flows]
      .map(([flow, r]) => ({ flow, count: r.count, last: r.last }))
      // of the recent flows, the busiest first
      .sort((a, b) => b.count - a.count || b.last - a.last || (a.flow < b.flow ? -1 : 1)),
    names: [...names].sort(),
    nexthops: sorted(nexthops),
    evidence: sorted(evidence),
    services: sorted(services),
    kernel,
    related,
    benign: [...benign].sort(),
    stack,
  };
}

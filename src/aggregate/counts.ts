/**
 * Bounded tallies by name and their top-N: what a group's detail lists (kernel locations,
 * devices, next hops) without letting one key of a flood grow a map without end.
 */

export interface Counted {
  name: string;
  count: number;
}

/** Adds `n` to `k`; a new name is admitted only while the map has fewer than `cap` names. */
export function bump(m: Map<string, number>, k: string, n: number, cap: number): void {
  const v = m.get(k);
  if (v !== undefined) m.set(k, v + n);
  else if (m.size < cap) m.set(k, n);
}

/** Adds `n` to `k`, unbounded (merging tallies that are bounded already). */
export function add(m: Map<string, number>, k: string, n: number): void {
  m.set(k, (m.get(k) ?? 0) + n);
}

/** Biggest first, then by name; the first `limit` only. */
export function topN(m: ReadonlyMap<string, number>, limit = Infinity): Counted[] {
  const all = [...m].map(([name, count]) => ({ name, count })).sort((a, b) => b.count - a.count || (a.name < b.name ? -1 : 1));
  return limit < all.length ? all.slice(0, limit) : all;
}

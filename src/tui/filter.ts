/**
 * The filter language of `/`: space-separated terms over the leaves (what each drop hit), all of
 * which must match. Filters apply to drops, not to groups, so a group's total counts only what
 * matches.
 */
import type { Leaf } from './leaves.js';

export type FilterField = 'any' | 'pod' | 'ns' | 'kind' | 'reason' | 'ip' | 'netns' | 'dns';
export interface Term {
  field: FilterField;
  value: string;
}

const FIELD_ALIASES: Record<string, FilterField> = {
  pod: 'pod',
  ns: 'ns',
  namespace: 'ns',
  kind: 'kind',
  reason: 'reason',
  ip: 'ip',
  netns: 'netns',
  dns: 'dns',
};

/**
 * Space-separated terms, all of which must match (case-insensitive substrings). A term may
 * name its field: `pod:web`, `ns:kube-system`, `kind:neigh`, `reason:NETFILTER`, `ip:10.0.3.`,
 * `netns:4026532` (or the netns's name), `dns:payments` (a dropped query's name); a bare term
 * matches any of them.
 */
export function parseFilter(text: string): Term[] {
  const terms: Term[] = [];
  for (const raw of text.trim().split(/\s+/)) {
    if (raw === '') continue;
    const colon = raw.indexOf(':');
    const field = colon > 0 ? FIELD_ALIASES[raw.slice(0, colon).toLowerCase()] : undefined;
    // IPv6 addresses have colons too: only a known field name before the colon is a field
    if (field !== undefined) terms.push({ field, value: raw.slice(colon + 1).toLowerCase() });
    else terms.push({ field: 'any', value: raw.toLowerCase() });
  }
  return terms;
}

function termMatches(l: Leaf, t: Term, netnsName: string | undefined): boolean {
  const has = (s: string | null | undefined) => s != null && s.toLowerCase().includes(t.value);
  const pod = l.pod ? `${l.pod.namespace}/${l.pod.name}` : null;
  switch (t.field) {
    case 'pod':
      return has(pod);
    case 'ns':
      return has(l.pod?.namespace);
    case 'kind':
      return has(l.kind) || has(l.family);
    case 'reason':
      return has(l.reason);
    case 'ip':
      return has(l.src) || has(l.dst);
    case 'netns':
      return has(String(l.netns)) || has(netnsName);
    case 'dns':
      return [...l.names].some(has);
    case 'any':
      return (
        has(pod) ||
        has(l.kind) ||
        has(l.family) ||
        has(l.reason) ||
        has(l.src) ||
        has(l.dst) ||
        has(String(l.netns)) ||
        has(netnsName) ||
        [...l.names].some(has)
      );
  }
}

/** Whether a leaf passes every term; `netnsName` is what the netns is known as, if anything. */
export function matchesAll(l: Leaf, terms: readonly Term[], netnsName: string | undefined): boolean {
  for (const t of terms) if (!termMatches(l, t, netnsName)) return false;
  return true;
}

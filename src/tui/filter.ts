/**
 * The TUI's `/` speaks the one filter language (src/pipeline/filter/): this is what a leaf
 * offers it. Filters apply to drops, not to groups, so a group's total counts only what
 * matches. A leaf keeps no source port (its key leaves it out), so `sport=` matches no leaf and
 * `port=` is the destination port here.
 */
import type { Predicate, Subject } from '../pipeline/filter/match.js';
import type { Leaf } from './leaves.js';

export { compileFilter, FilterError } from '../pipeline/filter/index.js';
export type { Filter, Predicate } from '../pipeline/filter/index.js';

/** `udp 198.18.7.1 → 198.18.7.2:5301` or `… → [fd99::2]:53`: the destination port, if any */
const DPORT = /:(\d+)$/;

export function subjectOfLeaf(l: Leaf, netnsName: string | undefined): Subject {
  const dport = l.flowKey !== null ? DPORT.exec(l.flowKey) : null;
  return {
    pod: l.pod ? `${l.pod.namespace}/${l.pod.name}` : null,
    namespace: l.pod?.namespace ?? null,
    kind: l.kind,
    family: l.family,
    reason: l.reason,
    proto: l.flowKey !== null ? l.flowKey.slice(0, l.flowKey.indexOf(' ')) : null,
    src: l.src,
    dst: l.dst,
    sport: null,
    dport: dport ? Number(dport[1]) : null,
    netns: l.netns,
    netnsName,
    // `example.com A`: the name without its query type
    names: [...l.names].map((n) => n.split(' ')[0]!),
    ifnames: [...l.ifnames.keys()],
  };
}

/** Whether a leaf passes the filter; `netnsName` is what the netns is known as, if anything. */
export function leafMatches(l: Leaf, match: Predicate, netnsName: string | undefined): boolean {
  return match(subjectOfLeaf(l, netnsName));
}

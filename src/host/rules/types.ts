/**
 * The DROP/REJECT rules of one network namespace, as a snapshot of their counters: what the
 * rule attribution (attribute.ts) compares between two snapshots to say which rule dropped.
 */

/** One condition of a rule that a drop's flow can be checked against; anything else is 'unknown'. */
export type Cond =
  | { key: 'proto'; neg: boolean; values: Array<string | number> }
  | { key: 'sport' | 'dport'; neg: boolean; values: Array<number | { lo: number; hi: number }> }
  | { key: 'saddr' | 'daddr'; neg: boolean; values: Array<{ addr: string; len: number | null }> }
  | { key: 'ipver'; neg: boolean; values: Array<4 | 6> }
  | { key: 'unknown' };

export interface RuleInfo {
  /** identity across snapshots: nft's family, table, chain and handle; legacy: table, chain, position, text */
  id: string;
  backend: 'nft' | 'iptables-legacy';
  /** nft family (ip, ip6, inet, bridge, netdev, arp); legacy iptables: ip or ip6 */
  family: string;
  table: string;
  chain: string;
  /** 1-based place among all rules of its chain */
  position: number;
  /** nft rule handle; null for legacy iptables */
  handle: number | null;
  verdict: 'drop' | 'reject';
  comment: string | null;
  /** as `nft list` or `iptables-save` shows it (counters left out); null until known */
  text: string | null;
  /** packets of its counter; null when the rule has none (a native nft rule without `counter`) */
  packets: number | null;
  conds: Cond[];
  /** true: has iptables-nft compat expressions (xt), whose text and comment only iptables-nft-save shows */
  xt: boolean;
}

export interface RulesetSnapshot {
  rules: RuleInfo[];
  /** DROP/REJECT rules past the per-netns cap, not kept */
  overCap: number;
}

/** how sure the attribution is: the drop line's own certainty scale (src/pipeline/classify.ts) */
export type { Certainty } from '../../pipeline/classify.js';
import type { Certainty } from '../../pipeline/classify.js';

/** The `rule` object of a drop line (schema/ndjson.schema.json, docs/ndjson.md): where the rule is, what it says. */
export type DropRule = Pick<RuleInfo, 'backend' | 'family' | 'table' | 'chain' | 'position' | 'handle' | 'text' | 'comment'> & {
  certainty: Certainty;
  /** rules that could have dropped it (counter moved or no counter, flow not excluded) */
  candidates: number;
};

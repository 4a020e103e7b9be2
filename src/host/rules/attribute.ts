/**
 * Which rule dropped it, from two snapshots of a netns's DROP/REJECT rule counters: the rules
 * whose counter moved between them and whose conditions do not exclude the drop's flow.
 * 'exact': one such rule, its counter moved by at least the drops it is named for, and no rule
 * without a counter could have matched; 'likely': one rule fits best (the only one whose every
 * condition matches, the first snapshot of the netns, a key's earlier attribution); 'possible':
 * several fit and the one with the most drops is named. Pure: unit-tested on recorded output.
 */
import type { DropEvent } from '../../pipeline/events.js';
import { matchFlow } from './match.js';
import type { FlowMatch } from './match.js';
import type { Certainty, DropRule, RuleInfo } from './types.js';

/** Packets per rule id at the previous snapshot. */
export type Counters = ReadonlyMap<string, number>;

export function countersOf(rules: readonly RuleInfo[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of rules) if (r.packets !== null) m.set(r.id, r.packets);
  return m;
}

/** Per drop key, the rule it was last attributed to: its later (folded) lines when counters no longer move. */
export class KeyMemory {
  private readonly m = new Map<string, { id: string; certainty: Certainty }>();
  constructor(private readonly limit: number) {}

  get(key: string): { id: string; certainty: Certainty } | undefined {
    return this.m.get(key);
  }

  set(key: string, id: string, certainty: Certainty): void {
    this.m.delete(key);
    this.m.set(key, { id, certainty });
    // the oldest goes first (Map keeps insertion order)
    if (this.m.size > this.limit) this.m.delete(this.m.keys().next().value!);
  }

  get size(): number {
    return this.m.size;
  }
}

export function dropKey(ev: DropEvent): string {
  const f = ev.flow;
  return f === null ? `${ev.netns}|${ev.location}` : `${ev.netns}|${f.proto}|${f.src}|${f.dst}|${f.sport ?? f.type ?? ''}|${f.dport ?? f.code ?? ''}`;
}

const WEAKER: Record<Certainty, Certainty> = { exact: 'likely', likely: 'likely', possible: 'possible' };

export function toDropRule(r: RuleInfo, certainty: Certainty, candidates: number): DropRule {
  return {
    backend: r.backend,
    family: r.family,
    table: r.table,
    chain: r.chain,
    position: r.position,
    handle: r.handle,
    text: r.text,
    comment: r.comment,
    certainty,
    candidates,
  };
}

export interface Attribution {
  rules: Array<DropRule | null>;
  /**
   * Counter movement no line of this snapshot accounted for, per rule: drops whose lines were
   * still on their way when the counters were read. The next snapshot adds it to its own.
   */
  carry: Map<string, number>;
}

/**
 * The rule of each line (null: none could be named). `prev` null: the first snapshot of this
 * netns, so a counter's whole value counts as its movement, and a rule is 'exact' only when its
 * whole counter is the lines named after it.
 */
export function attribute(
  prev: Counters | null,
  rules: readonly RuleInfo[],
  lines: readonly DropEvent[],
  memory?: KeyMemory,
  carried: ReadonlyMap<string, number> = new Map(),
): Attribution {
  const delta = new Map<string, number>();
  for (const r of rules) {
    if (r.packets === null) continue;
    const before = prev?.get(r.id) ?? 0;
    // a counter that went back (reset, rule replaced) moved by at least its value
    delta.set(r.id, (r.packets >= before ? r.packets - before : r.packets) + (carried.get(r.id) ?? 0));
  }
  const byId = new Map(rules.map((r) => [r.id, r]));
  // only rules whose counter moved, or that have none, can be named: a node's thousands of
  // rules whose counters stood still are never matched against the flows
  const live = rules.filter((r) => r.packets === null || (delta.get(r.id) ?? 0) > 0);
  type Pick = { rule: RuleInfo; certainty: Certainty; candidates: number } | null;
  const picks: Pick[] = [];
  const named = new Map<string, number>();
  // lines of one key fit the same rules
  const byKey = new Map<string, Pick>();
  // each line's key, made once: a flood's lines are many
  const keys = lines.map(dropKey);
  for (let li = 0; li < lines.length; li++) {
    const ev = lines[li]!;
    const key = keys[li]!;
    const known = byKey.get(key);
    if (known !== undefined) {
      picks.push(known);
      if (known !== null) named.set(known.rule.id, (named.get(known.rule.id) ?? 0) + ev.count);
      continue;
    }
    const fit: Array<{ r: RuleInfo; m: FlowMatch }> = [];
    for (const r of live) {
      const m = matchFlow(r, ev.flow);
      if (m !== 'nomatch') fit.push({ r, m });
    }
    const moved = fit.filter((x) => (delta.get(x.r.id) ?? 0) > 0);
    const uncounted = fit.filter((x) => x.r.packets === null);
    let pick: { rule: RuleInfo; certainty: Certainty; candidates: number } | null = null;
    if (moved.length === 1) {
      const c: Certainty = uncounted.length === 0 ? 'exact' : 'likely';
      pick = { rule: moved[0]!.r, certainty: c, candidates: moved.length + uncounted.length };
    } else if (moved.length > 1) {
      const full = moved.filter((x) => x.m === 'match');
      if (full.length === 1) pick = { rule: full[0]!.r, certainty: 'likely', candidates: moved.length + uncounted.length };
      else {
        const among = full.length > 0 ? full : moved;
        const best = among.reduce((a, b) => ((delta.get(b.r.id) ?? 0) > (delta.get(a.r.id) ?? 0) ? b : a));
        pick = { rule: best.r, certainty: 'possible', candidates: moved.length + uncounted.length };
      }
    } else {
      const kept = memory?.get(key);
      const keptRule = kept !== undefined ? byId.get(kept.id) : undefined;
      if (kept !== undefined && keptRule !== undefined && matchFlow(keptRule, ev.flow) !== 'nomatch') {
        pick = { rule: keptRule, certainty: WEAKER[kept.certainty], candidates: 1 + uncounted.length };
      } else if (uncounted.length > 0) {
        const full = uncounted.filter((x) => x.m === 'match');
        pick = { rule: (full[0] ?? uncounted[0]!).r, certainty: full.length === 1 ? 'likely' : 'possible', candidates: uncounted.length };
      }
    }
    picks.push(pick);
    byKey.set(key, pick);
    if (pick !== null) named.set(pick.rule.id, (named.get(pick.rule.id) ?? 0) + lines[picks.length - 1]!.count);
  }
  // an exact rule's movement accounts for every drop named after it (and on a first snapshot,
  // where the movement is the whole counter, is nothing but them)
  const explains = (id: string): boolean => {
    const n = named.get(id) ?? 0;
    const d = delta.get(id) ?? 0;
    return prev !== null ? n <= d : n === d;
  };
  // one `rule` object per rule and verdict, shared by its lines (a flood's lines are many)
  const made = new Map<string, DropRule>();
  const out = picks.map((p, i) => {
    if (p === null) return null;
    const certainty = p.certainty === 'exact' && !explains(p.rule.id) ? 'likely' : p.certainty;
    memory?.set(keys[i]!, p.rule.id, certainty);
    const id = `${p.rule.id}\0${certainty}\0${p.candidates}`;
    let r = made.get(id);
    if (r === undefined) made.set(id, (r = toDropRule(p.rule, certainty, p.candidates)));
    return r;
  });
  // carried once only: movement no line claims within two snapshots is not anyone's
  const carry = new Map<string, number>();
  if (prev !== null) {
    for (const [id, d] of delta) {
      const left = Math.min(d - (named.get(id) ?? 0), d - (carried.get(id) ?? 0));
      if (left > 0) carry.set(id, left);
    }
  }
  return { rules: out, carry };
}

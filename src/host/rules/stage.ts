/**
 * Gives `netfilter_rule` drop lines their `rule`. A rule's counter has moved by the time its
 * drop reaches us, so each such line is held until a snapshot of its netns's rules begun after
 * it arrived (attribute.ts compares it with the one before): at most one snapshot a second per
 * netns, only for netns with rule drops, in child processes off the batch path. A held line
 * goes out without a rule after `holdMs` or when `maxHeld` lines wait (counted, never lost);
 * lines of other kinds pass at once. Netns tracked and rules per netns are bounded, the excess
 * counted in the stats line's `rules` object.
 */
import type { DropEvent, StreamLine } from '../../pipeline/events.js';
import { ruleHint, ruleSentence } from '../../pipeline/explain.js';
import { Slots } from '../../aggregate/slots.js';
import { attribute, countersOf, dropKey, KeyMemory, toDropRule } from './attribute.js';
import type { Counters } from './attribute.js';
import { matchFlow } from './match.js';
import type { DropRule, RuleInfo, RulesetSnapshot } from './types.js';

export interface RulesStats {
  /** snapshots taken, and those that failed (nft missing, netns gone, timeout) */
  snapshots: number;
  failures: number;
  /** rule drop lines with a rule named, and without one */
  attributed: number;
  unattributed: number;
  /** lines let go without waiting: held past holdMs, or past maxHeld lines waiting */
  hold_timeouts: number;
  hold_overflow: number;
  /** rule drop lines of netns past maxNetns (not tracked), DROP/REJECT rules past the per-netns cap */
  netns_over_cap: number;
  rules_over_cap: number;
}

export interface RuleStageOptions {
  snapshot: (netns: number) => Promise<RulesetSnapshot>;
  /** told when a netns is no longer tracked */
  forget?: (netns: number) => void;
  minIntervalMs?: number;
  holdMs?: number;
  maxHeld?: number;
  maxNetns?: number;
  /** drop keys whose last rule is remembered for their later lines */
  maxKeys?: number;
  monotonicMs?: () => number;
}

interface Held {
  ev: DropEvent;
  /** snapshots begun in its netns before it arrived: only a later one has its counter */
  seq: number;
  deadline: number;
}

interface NetnsState {
  netns: number;
  held: Held[];
  started: number;
  lastStart: number;
  inFlight: boolean;
  timer: ReturnType<typeof setTimeout> | null;
  prev: Counters | null;
  /** movement of the last snapshot no line accounted for yet (attribute.ts) */
  carry: Map<string, number>;
  /** the last snapshot's rules by id, for lines that cannot wait (remembered()) */
  rules: Map<string, RuleInfo>;
  /** remembered()'s and fitted()'s rule objects, made from `rules` */
  remembered: Map<string, DropRule>;
  /** the rules whose counters moved in the last snapshot, by how much: fitted()'s candidates */
  moved: Array<{ rule: RuleInfo; by: number }>;
}

export class RuleStage {
  readonly stats: RulesStats = {
    snapshots: 0,
    failures: 0,
    attributed: 0,
    unattributed: 0,
    hold_timeouts: 0,
    hold_overflow: 0,
    netns_over_cap: 0,
    rules_over_cap: 0,
  };
  private readonly states: Slots<NetnsState>;
  /** the states the slots hold, for the sweeps (Slots does not iterate) */
  private readonly live = new Set<NetnsState>();
  private readonly memory: KeyMemory;
  private readonly now: () => number;
  private readonly minIntervalMs: number;
  private readonly holdMs: number;
  private readonly maxHeld: number;
  private heldCount = 0;
  /**
   * A rule object's sentence and hint, made once: attribute() and remembered() share one object
   * among the lines they name, and in a flood those are tens of thousands a second.
   */
  private readonly said = new WeakMap<DropRule, { sentence: string; hint: string }>();
  private sweep: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  private drained: (() => void) | null = null;
  private emit: (line: StreamLine) => void = () => undefined;
  /**
   * The first throw of the emit when a held line went out (a timer's or a snapshot's turn, where
   * nobody could catch it): kept, and the stream fails with it at its end (stream.ts).
   */
  failure: unknown = null;

  constructor(private readonly o: RuleStageOptions) {
    this.now = o.monotonicMs ?? (() => performance.now());
    this.minIntervalMs = o.minIntervalMs ?? 1000;
    this.holdMs = o.holdMs ?? 3000;
    this.maxHeld = o.maxHeld ?? 4096;
    this.memory = new KeyMemory(o.maxKeys ?? 4096);
    // a netns quiet for a minute gives its place to a new one (its baseline goes with it)
    this.states = new Slots<NetnsState>(o.maxNetns ?? 256, 60_000, (s) => {
      this.live.delete(s);
      this.release(s.held.splice(0), null);
      if (s.timer !== null) clearTimeout(s.timer);
      o.forget?.(s.netns);
    });
  }

  /** The emit the pipeline calls: rule drops wait here, everything else passes. */
  wrap(emit: (line: StreamLine) => void): (line: StreamLine) => void {
    this.emit = emit;
    return (line) => {
      if (line.type !== 'drop' || line.kind !== 'netfilter_rule' || this.closed) return emit(line);
      this.hold(line);
    };
  }

  private hold(ev: DropEvent): void {
    const now = this.now();
    const s = this.states.take(String(ev.netns), now, () => {
      const made: NetnsState = { netns: ev.netns, held: [], started: 0, lastStart: -Infinity, inFlight: false, timer: null, prev: null, carry: new Map(), rules: new Map(), remembered: new Map(), moved: [] };
      this.live.add(made);
      return made;
    });
    if (s === null) {
      this.stats.netns_over_cap++;
      return this.release([{ ev, seq: 0, deadline: 0 }], null);
    }
    if (this.heldCount >= this.maxHeld) {
      // a flood: the line goes out at once, with the rule its key had last, else the one its
      // flow fits among the rules the last snapshot saw move (if any)
      this.stats.hold_overflow++;
      return this.release([{ ev, seq: 0, deadline: 0 }], [this.remembered(s, ev) ?? this.fitted(s, ev)]);
    }
    s.held.push({ ev, seq: s.started, deadline: now + this.holdMs });
    this.heldCount++;
    this.schedule(s);
    this.sweep ??= setTimeout(this.expire, this.holdMs);
  }

  private schedule(s: NetnsState): void {
    if (s.inFlight || s.timer !== null || s.held.length === 0) return;
    const wait = Math.max(0, s.lastStart + this.minIntervalMs - this.now());
    s.timer = setTimeout(() => this.take(s), wait);
  }

  private take(s: NetnsState): void {
    s.timer = null;
    s.inFlight = true;
    const seq = ++s.started;
    s.lastStart = this.now();
    this.stats.snapshots++;
    this.o.snapshot(s.netns).then(
      (snap) => this.landed(s, seq, snap),
      () => {
        this.stats.failures++;
        this.landed(s, seq, null);
      },
    );
  }

  private landed(s: NetnsState, seq: number, snap: RulesetSnapshot | null): void {
    s.inFlight = false;
    const ready: Held[] = [];
    const waiting: Held[] = [];
    // a first snapshot's counters are whole histories, which also hold the drops of lines that
    // came while it was read: those need not wait a second for a baseline that cannot say more
    const first = s.prev === null && snap !== null;
    for (const h of s.held) (h.seq < seq || first ? ready : waiting).push(h);
    s.held = waiting;
    if (snap === null) this.release(ready, null);
    else {
      this.stats.rules_over_cap += snap.overCap;
      const got = attribute(
        s.prev,
        snap.rules,
        ready.map((h) => h.ev),
        this.memory,
        s.carry,
      );
      s.moved = [];
      for (const r of snap.rules) {
        const by = r.packets === null ? 0 : r.packets - (s.prev?.get(r.id) ?? 0);
        if (by > 0) s.moved.push({ rule: r, by });
      }
      s.prev = countersOf(snap.rules);
      s.rules = new Map(snap.rules.map((r) => [r.id, r]));
      s.remembered = new Map();
      s.carry = got.carry;
      this.release(ready, got.rules);
    }
    this.schedule(s);
  }

  /** The rule this line's key was last named, as of the netns's last snapshot: 'likely' at best. */
  private remembered(s: NetnsState, ev: DropEvent): DropRule | null {
    const kept = this.memory.get(dropKey(ev));
    const r = kept !== undefined ? s.rules.get(kept.id) : undefined;
    if (r === undefined || kept === undefined) return null;
    const certainty = kept.certainty === 'possible' ? 'possible' : 'likely';
    // one object per rule and certainty until the next snapshot (the lines of a flood share it)
    const id = `${r.id}\0${certainty}`;
    let made = s.remembered.get(id);
    if (made === undefined) s.remembered.set(id, (made = toDropRule(r, certainty, 1)));
    return made;
  }

  /**
   * A line that cannot wait (a flood past the hold bound, a snapshot too slow), whose key has no
   * rule yet: the rule its flow fits among those the netns's last snapshot saw move. 'likely'
   * when one fits (or one fits on every condition), else 'possible' for the one that moved most.
   * In a many-flows flood (conntrack-full's shape: every connection a key) this names the rule of
   * most lines, where key memory alone names almost none.
   */
  private fitted(s: NetnsState, ev: DropEvent): DropRule | null {
    let one: { rule: RuleInfo; by: number } | null = null;
    let full: { rule: RuleInfo; by: number } | null = null;
    let fits = 0;
    let fulls = 0;
    for (const m of s.moved) {
      const how = matchFlow(m.rule, ev.flow);
      if (how === 'nomatch') continue;
      fits++;
      if (one === null || m.by > one.by) one = m;
      if (how === 'match') {
        fulls++;
        if (full === null || m.by > full.by) full = m;
      }
    }
    if (one === null) return null;
    const pick = full ?? one;
    const certainty = fits === 1 || fulls === 1 ? 'likely' : 'possible';
    const id = `${pick.rule.id}\0${certainty}\0${fits}`;
    let made = s.remembered.get(id);
    if (made === undefined) s.remembered.set(id, (made = toDropRule(pick.rule, certainty, fits)));
    return made;
  }

  private release(hs: Held[], rules: Array<DropRule | null> | null): void {
    const said = this.said;
    for (let i = 0; i < hs.length; i++) {
      const h = hs[i]!;
      if (h.deadline !== 0) this.heldCount--;
      const rule = rules?.[i] ?? null;
      if (rule !== null) {
        let t = said.get(rule);
        // (a rule object is of one netns: the hint's netns is the same for all its lines)
        if (t === undefined) said.set(rule, (t = { sentence: ruleSentence(rule), hint: ruleHint(rule, h.ev.netns) }));
        h.ev.rule = rule;
        // a DNS drop's sentence leads with its question (events.ts): the rule follows it
        h.ev.explain = h.ev.dns || h.ev.service || h.ev.inner ? `${h.ev.explain}; ${t.sentence}` : t.sentence;
        h.ev.hint = t.hint;
        this.stats.attributed++;
      } else this.stats.unattributed++;
      try {
        this.emit(h.ev);
      } catch (e) {
        this.failure ??= e;
      }
    }
    if (this.heldCount === 0) this.drained?.();
  }

  /** Lets go of lines held past their deadline (a snapshot that hangs must not hold the stream). */
  private expire = (): void => {
    this.sweep = null;
    const now = this.now();
    let next = Infinity;
    for (const s of this.allStates()) {
      const late = s.held.filter((h) => h.deadline <= now);
      if (late.length === 0) {
        if (s.held[0]) next = Math.min(next, s.held[0].deadline);
        continue;
      }
      s.held = s.held.filter((h) => h.deadline > now);
      this.stats.hold_timeouts += late.length;
      // a snapshot too slow (a loaded machine): named as a line past the hold bound is
      this.release(
        late,
        late.map((h) => this.remembered(s, h.ev) ?? this.fitted(s, h.ev)),
      );
      if (s.held[0]) next = Math.min(next, s.held[0].deadline);
    }
    if (next !== Infinity) this.sweep = setTimeout(this.expire, Math.max(1, next - now));
  };

  private allStates(): NetnsState[] {
    return [...this.live];
  }

  /**
   * The end of the stream: lines still held wait for their snapshot at most `ms` (one a second
   * per netns still holds), then go out as they are; nothing is held after.
   */
  async finish(ms = 1500): Promise<void> {
    if (this.heldCount > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.drained = resolve;
        timer = setTimeout(resolve, ms);
      });
      clearTimeout(timer);
      this.drained = null;
    }
    this.abandon();
  }

  /** Everything held goes out now, without waiting; later rule drops pass unattributed. */
  abandon(): void {
    this.closed = true;
    if (this.sweep !== null) clearTimeout(this.sweep);
    this.sweep = null;
    for (const s of this.allStates()) {
      if (s.timer !== null) clearTimeout(s.timer);
      s.timer = null;
      const hs = s.held.splice(0);
      this.stats.hold_timeouts += hs.length;
      this.release(hs, null);
    }
  }
}

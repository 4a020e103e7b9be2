/**
 * How the live TUI stays drawn under any load. The addon hands JS batches of detail records
 * as fast as the kernel makes them, and Node delivers queued batches back to back in one
 * event-loop turn (up to a thousand); describing them and adding them to the store costs more
 * than a flood's rate allows, so without a bound that turn never ends and neither Ink's frames
 * nor `q` get one. The budget admits work for `turnMs` of each turn, asked between slices of a
 * batch (src/pipeline/shed.ts); the rest of the turn's records are shed: counted per key as
 * userspace loss and folded back, so counts stay exact, and said on screen. The header's
 * exact totals come from the kernel's counters either way.
 */
import type { WorkBudget } from '../pipeline/shed.js';

/**
 * What may wait between the poller and the view (`--backlog` of `top`): the view describes only
 * what a turn's budget allows anyway (src/tui/budget.ts), so a deep backlog only holds memory
 * (64 MiB queued held ~60 MiB more RSS in a flood); past it the addon counts records per key
 * as lost on its own thread, and they are folded back like the ones the view sheds.
 */
export const TOP_BACKLOG_MIB = 2;

export interface TurnBudgetOptions {
  /** most milliseconds of work in one event-loop turn (default 30) */
  turnMs?: number;
  /** most of the thread's time spent describing records, over time (default 0.5) */
  share?: number;
  onShed: (records: number) => void;
  now?: () => number;
}

export class TurnBudget implements WorkBudget {
  readonly #turnMs: number;
  readonly #share: number;
  readonly #now: () => number;
  readonly #onShed: (records: number) => void;
  /** milliseconds of work the budget still has: refilled at `share` per millisecond, at most turnMs */
  #tokens: number;
  /** when admit() was last asked */
  #last: number;
  #inTurn = false;
  #closed = false;

  constructor(o: TurnBudgetOptions) {
    this.#turnMs = o.turnMs ?? 30;
    this.#share = o.share ?? 0.5;
    this.#onShed = o.onShed;
    this.#now = o.now ?? (() => performance.now());
    this.#tokens = this.#turnMs;
    this.#last = this.#now();
  }

  admit(): boolean {
    if (this.#closed) return false;
    const now = this.#now();
    const since = now - this.#last;
    this.#last = now;
    if (!this.#inTurn) {
      // a new turn: what came since the last question was frames, keys and idle time
      this.#inTurn = true;
      this.#tokens = Math.min(this.#turnMs, this.#tokens + since * this.#share);
      // the check phase comes right after the poll phase that delivered the batches
      setImmediate(() => {
        this.#inTurn = false;
      });
    } else this.#tokens -= since;
    return this.#tokens > 0;
  }

  shed(records: number): void {
    this.#onShed(records);
  }

  /** After `q`: nothing more is described, so what is still queued drains at once. */
  close(): void {
    this.#closed = true;
  }
}

/**
 * How the live TUI stays drawn under any load. The addon hands JS batches of detail records
 * as fast as the kernel makes them, and Node delivers every queued batch in one event-loop turn;
 * when describing them and adding them to the store costs more than the kernel's rate allows,
 * that turn never ends and neither Ink's frames nor `q` get a turn. The budget admits batches
 * for at most `turnMs` of each turn; later batches of the same turn are shed: not decoded, only
 * counted (the header shows them). The header's totals come from the kernel's exact counters,
 * so they stay right while detail is shed; and the backlog drains at the cost of a count.
 */
import { EVENT_SIZE, FIELDS } from '../pipeline/layout.js';

/** Records in a batch, read from each record's own size field (as the decoder frames them). */
export function countRecords(buf: Uint8Array): number {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let n = 0;
  for (let off = 0; off + EVENT_SIZE <= buf.byteLength; n++) {
    const size = view.getUint16(off + FIELDS.size[0], true);
    if (size < EVENT_SIZE) break;
    off += size;
  }
  return n;
}

export class TurnBudget {
  readonly #turnMs: number;
  readonly #now: () => number;
  readonly #onShed: (records: number) => void;
  /** when the first batch of the current turn came; -1 between turns */
  #turnStart = -1;
  #closed = false;

  constructor(o: { turnMs?: number; onShed: (records: number) => void; now?: () => number }) {
    this.#turnMs = o.turnMs ?? 30;
    this.#onShed = o.onShed;
    this.#now = o.now ?? (() => performance.now());
  }

  /** For runStream's `shed` option: true when the batch is shed (and counted here). */
  readonly shed = (batch: Uint8Array): boolean => {
    if (!this.#closed) {
      const now = this.#now();
      if (this.#turnStart < 0) {
        this.#turnStart = now;
        // the check phase comes right after the turn that delivered the batches
        setImmediate(() => {
          this.#turnStart = -1;
        });
        return false;
      }
      if (now - this.#turnStart < this.#turnMs) return false;
    }
    this.#onShed(countRecords(batch));
    return true;
  };

  /** After `q`: nothing more is described, so the backlog drains at once. */
  close(): void {
    this.#closed = true;
  }
}

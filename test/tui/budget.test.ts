/**
 * The live view's bound on work: turnMs of work per event-loop turn, a share of the thread over
 * time, nothing after `q`. The clock is the test's; a turn ends at the next check phase.
 */
import { describe, expect, it } from 'vitest';
import { TurnBudget } from '../../src/tui/budget.js';

const nextTurn = () => new Promise<void>((r) => setImmediate(r));

describe('TurnBudget', () => {
  it('admits work for turnMs of a turn, then nothing more until the next turn', async () => {
    let t = 1000;
    const b = new TurnBudget({ turnMs: 30, share: 1, onShed: () => undefined, now: () => t });
    expect(b.admit()).toBe(true);
    t += 29;
    expect(b.admit()).toBe(true);
    t += 2;
    expect(b.admit()).toBe(false);
    expect(b.admit()).toBe(false);
    await nextTurn();
    // 100 ms of frames and idle time later: a full turn again, and no more (at most turnMs)
    t += 100;
    expect(b.admit()).toBe(true);
    t += 30;
    expect(b.admit()).toBe(false);
  });

  it('a slice that ran long is paid back in later turns', async () => {
    let t = 0;
    const b = new TurnBudget({ turnMs: 30, share: 1, onShed: () => undefined, now: () => t });
    expect(b.admit()).toBe(true);
    t += 200;
    expect(b.admit()).toBe(false);
    await nextTurn();
    t += 100;
    expect(b.admit()).toBe(false);
    await nextTurn();
    t += 100;
    expect(b.admit()).toBe(true);
  });

  it('over time, work takes at most `share` of the thread', async () => {
    let t = 0;
    const b = new TurnBudget({ turnMs: 30, share: 0.25, onShed: () => undefined, now: () => t });
    expect(b.admit()).toBe(true);
    t += 30;
    expect(b.admit()).toBe(false);
    await nextTurn();
    // 40 ms later: 10 ms of work earned
    t += 40;
    expect(b.admit()).toBe(true);
    t += 9;
    expect(b.admit()).toBe(true);
    t += 2;
    expect(b.admit()).toBe(false);
  });

  it('reports shed records, and after close() admits nothing', () => {
    const shed: number[] = [];
    const b = new TurnBudget({ onShed: (n) => shed.push(n), now: () => 0 });
    b.shed(7);
    b.close();
    expect(b.admit()).toBe(false);
    expect(shed).toEqual([7]);
  });
});

/**
 * Keeps a fleet snapshot fresh for the view: one snapshot every `intervalMs`, never two at
 * once; on a failure the last good snapshot stays on screen with its age, the reason is said
 * in one line and the next try waits longer each time (5 s, 10 s, 20 s ... 60 s), so a
 * Prometheus that is down or overloaded is not hammered by every on-call terminal.
 */
import { PromError } from './prom.js';
import type { QueryFn } from './prom.js';
import { queryFleet, queryPodKinds } from './model.js';
import type { Fleet, FleetPod, FleetWindow } from './model.js';

export interface FleetState {
  /** the server, as the user wrote it */
  url: string;
  fleet: Fleet | null;
  /** wall-clock ms of the last good snapshot */
  updatedMs: number | null;
  /** why the last try failed (null after a good one) */
  error: string | null;
  /** wall-clock ms of the next try after a failure */
  retryAtMs: number | null;
  /** failures in a row */
  failures: number;
  /** the drilled-in node's pods with their kinds (null: none asked, or not yet answered) */
  pods: { node: string; pods: FleetPod[] | null; error: string | null } | null;
}

export interface PollerOptions {
  url: string;
  query: QueryFn;
  window: FleetWindow;
  intervalMs?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
  /** wall clock, ms (tests) */
  now?: () => number;
}

/** `connection refused` for a PromError, a short form of anything else. */
function reason(e: unknown): string {
  if (e instanceof PromError) return e.message;
  return `internal error: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
}

export class FleetPoller {
  private state: FleetState;
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private stopped = false;
  private node: string | null = null;
  private readonly o: Required<Omit<PollerOptions, 'now'>> & { now: () => number };

  constructor(o: PollerOptions) {
    this.o = { intervalMs: 5000, backoffMs: 5000, maxBackoffMs: 60_000, now: Date.now, ...o };
    this.state = { url: o.url, fleet: null, updatedMs: null, error: null, retryAtMs: null, failures: 0, pods: null };
  }

  get snapshot(): FleetState {
    return this.state;
  }

  /** for useSyncExternalStore: returns the unsubscribe */
  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  getSnapshot = (): FleetState => this.state;

  private set(patch: Partial<FleetState>): void {
    this.state = { ...this.state, ...patch };
    for (const fn of this.listeners) fn();
  }

  start(): void {
    void this.poll();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The node whose pods (with kinds) each snapshot also fetches; null for none. */
  drill(node: string | null): void {
    this.node = node;
    this.set({ pods: node === null ? null : { node, pods: null, error: null } });
    // answer now, not at the next tick (unless a snapshot is already on its way: it asks too)
    if (node !== null && !this.running && this.state.error === null) {
      if (this.timer) clearTimeout(this.timer);
      void this.poll();
    }
  }

  private async poll(): Promise<void> {
    if (this.stopped || this.running) return;
    this.running = true;
    const time = this.o.now() / 1000;
    const node = this.node;
    let wait: number;
    try {
      const [fleet, pods] = await Promise.all([
        queryFleet(this.o.query, this.o.window, time),
        node === null ? null : queryPodKinds(this.o.query, node, this.o.window, time).then((p) => ({ pods: p, error: null }), (e: unknown) => ({ pods: null, error: reason(e) })),
      ]);
      if (this.stopped) return;
      const patch: Partial<FleetState> = { fleet, updatedMs: time * 1000, error: null, retryAtMs: null, failures: 0 };
      // a drill changed while this was under way: its answer is for the old node
      if (pods && node !== null && node === this.node) patch.pods = { node, ...pods };
      this.set(patch);
      wait = this.o.intervalMs;
    } catch (e) {
      if (this.stopped) return;
      const failures = this.state.failures + 1;
      wait = Math.min(this.o.maxBackoffMs, this.o.backoffMs * 2 ** (failures - 1));
      this.set({ error: reason(e), failures, retryAtMs: this.o.now() + wait });
    } finally {
      this.running = false;
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.poll(), wait);
  }
}

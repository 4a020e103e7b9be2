/**
 * A bounded set of keys, each holding a slot: what keeps a view's memory (or an exposition's
 * series) bounded when the keys are pods, namespaces or flows a flood makes without end. A
 * key past the bound gets no slot; the caller counts it under one overflow key instead.
 * Optionally a key idle for `idleMs` gives its slot up when a new key needs one.
 */
export class Slots<V> {
  private readonly m = new Map<string, { value: V; lastMs: number }>();
  /** when idle keys may next be looked for (a flood of new keys scans once a second) */
  private nextScanMs = -Infinity;

  constructor(
    private readonly limit: number,
    /** 0: a slot is held until retain() lets it go */
    private readonly idleMs = 0,
    /** told of each key evicted for being idle */
    private readonly onEvict?: (value: V, key: string) => void,
  ) {}

  get size(): number {
    return this.m.size;
  }

  has(key: string): boolean {
    return this.m.has(key);
  }

  /** The slot of `key` as of `nowMs`, made by `make` if there is room (after idle keys left); null if not. */
  take(key: string, nowMs: number, make: () => V): V | null {
    let s = this.m.get(key);
    if (s === undefined) {
      if (this.m.size >= this.limit) this.evictIdle(nowMs);
      if (this.m.size >= this.limit) return null;
      s = { value: make(), lastMs: nowMs };
      this.m.set(key, s);
    }
    s.lastMs = nowMs;
    return s.value;
  }

  /** Keeps the keys `keep` holds to; the others free their slots (no onEvict: the caller knows). */
  retain(keep: (key: string) => boolean): void {
    for (const k of this.m.keys()) if (!keep(k)) this.m.delete(k);
  }

  clear(): void {
    this.m.clear();
  }

  private evictIdle(nowMs: number): void {
    if (this.idleMs <= 0 || nowMs < this.nextScanMs) return;
    this.nextScanMs = nowMs + 1000;
    for (const [k, s] of this.m) {
      if (nowMs - s.lastMs < this.idleMs) continue;
      this.m.delete(k);
      this.onEvict?.(s.value, k);
    }
  }
}

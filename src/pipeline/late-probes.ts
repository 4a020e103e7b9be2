/**
 * Probes that come later. An optional probe whose kernel function is in a module that is not
 * loaded at start (`__nf_conntrack_alloc` in nf_conntrack, which kube-proxy loads after
 * droptrace started at boot) is `waiting`, and is tried again once that module is live: no
 * restart, and the stats line says when it attached.
 *
 * The trigger is a read of /proc/modules every MODULE_POLL_MS, and only while some probe
 * waits: one small file, no program of our own in the kernel. The module:module_load
 * tracepoint would say it at once, but as a classic tracepoint it needs perf_event_open(),
 * which container runtimes' default seccomp profiles refuse, and it fires before the module's
 * init has run. A module is loaded once: seconds of delay lose nothing that matters.
 * /proc/modules also says when a module is `Live` (its init done), which a directory in
 * /sys/module does not.
 */
import { readFileSync } from 'node:fs';
import type { ProbeReport } from '../native/binding.js';

export const MODULE_POLL_MS = 2000;

/** One probe (a group of hooks) as the stats line shows it: the hook in use, or why none. */
export interface ProbeState {
  probe: string;
  state: 'attached' | 'waiting' | 'unavailable';
  hook?: string;
  why?: string;
}

/** The addon's "its module is not loaded" becomes `waiting` (the stream tries it again). */
export function asWaiting(r: ProbeReport): ProbeReport {
  if (r.code !== 'E_MODULE_NOT_LOADED' || !r.module) return r;
  return { ...r, state: 'waiting', why: `waiting for module ${r.module}` };
}

/** Per probe, in the order of the reports: attached (with its hook), waiting or unavailable. */
export function probeStates(reports: readonly ProbeReport[]): ProbeState[] {
  const groups = new Map<string, ProbeReport[]>();
  for (const r of reports) groups.set(r.probe, [...(groups.get(r.probe) ?? []), r]);
  const out: ProbeState[] = [];
  for (const [probe, hooks] of groups) {
    const live = hooks.find((h) => h.state === 'attached');
    const waiting = hooks.find((h) => h.state === 'waiting');
    if (live) out.push({ probe, state: 'attached', hook: live.hook });
    else if (waiting) out.push({ probe, state: 'waiting', why: waiting.why ?? 'waiting' });
    else {
      const why = hooks.find((h) => h.why)?.why;
      out.push({ probe, state: 'unavailable', ...(why !== undefined ? { why } : {}) });
    }
  }
  return out;
}

/** The modules /proc/modules lists as `Live`: loaded, their init done (not Loading, Unloading). */
export function liveModules(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length >= 5 && f[4] === 'Live') out.add(f[0]!);
  }
  return out;
}

export function readLiveModules(path = '/proc/modules'): Set<string> {
  return liveModules(readFileSync(path, 'utf8'));
}

export interface LateProbeDeps {
  /** the tracer's retry: tries the named probes again, returns every probe's report ([] once stopped) */
  retry: (probes: string[]) => ProbeReport[];
  /** live module names (default: /proc/modules) */
  modules?: () => Set<string>;
  /** called after a poll that changed some probe's state, with every report */
  onChange?: (reports: readonly ProbeReport[]) => void;
  intervalMs?: number;
}

export class LateProbes {
  #reports: ProbeReport[];
  #timer: ReturnType<typeof setInterval> | null = null;
  #stopped = false;
  /** polls that read the module list (tests: nothing is read while nothing waits) */
  reads = 0;

  constructor(
    reports: readonly ProbeReport[],
    private readonly deps: LateProbeDeps,
  ) {
    this.#reports = reports.map(asWaiting);
  }

  /** every hook's report, waiting ones included */
  get reports(): readonly ProbeReport[] {
    return this.#reports;
  }

  /** module → the probes waiting for it */
  waiting(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const r of this.#reports) {
      if (r.state !== 'waiting' || !r.module) continue;
      const ps = out.get(r.module) ?? [];
      if (!ps.includes(r.probe)) ps.push(r.probe);
      out.set(r.module, ps);
    }
    return out;
  }

  /** Polls every intervalMs while some probe waits; the timer never keeps the process alive. */
  start(): void {
    if (this.#stopped || this.#timer || this.waiting().size === 0) return;
    this.#timer = setInterval(() => this.poll(), this.deps.intervalMs ?? MODULE_POLL_MS);
    this.#timer.unref?.();
  }

  /** No more polls and no more retries (before the tracer stops: nothing attaches after). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One look at the modules; true when some probe's state changed. */
  poll(): boolean {
    const waiting = this.waiting();
    if (this.#stopped || waiting.size === 0) {
      this.#idle();
      return false;
    }
    this.reads++;
    let live: Set<string>;
    try {
      live = (this.deps.modules ?? readLiveModules)();
    } catch (e) {
      // said where the waiting probes are shown, not lost: they go on waiting
      return this.#update(this.#reports.map((r) => (r.state === 'waiting' && r.module ? { ...r, why: `waiting for module ${r.module} (cannot read /proc/modules: ${(e as Error).message.split('\n')[0]})` } : r)));
    }
    const due = [...waiting].filter(([m]) => live.has(m)).flatMap(([, ps]) => ps);
    if (due.length === 0) return false;
    let next: ProbeReport[];
    try {
      next = this.deps.retry(due).map(asWaiting);
    } catch (e) {
      // a retry that throws is not tried again: the probes say why, and the rest runs on
      const why = `retry failed: ${(e as Error).message.split('\n')[0]}`;
      next = this.#reports.map((r) => (due.includes(r.probe) && r.state === 'waiting' ? { probe: r.probe, hook: r.hook, state: 'unavailable', why } : r));
    }
    // [] from the tracer: it was stopped meanwhile, nothing more will attach
    if (next.length === 0) {
      this.stop();
      return false;
    }
    return this.#update(next);
  }

  #update(next: ProbeReport[]): boolean {
    const key = (rs: readonly ProbeReport[]) => JSON.stringify(rs.map((r) => [r.probe, r.hook, r.state, r.why ?? null]));
    const changed = key(next) !== key(this.#reports);
    this.#reports = next;
    if (this.waiting().size === 0) this.#idle();
    if (changed) this.deps.onChange?.(this.#reports);
    return changed;
  }

  #idle(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}

interface HookState {
  probe: string;
  hook: string;
  state: string;
  why?: string;
}

/**
 * The start line's hooks with what a later stats line says of their probes (the TUI's view):
 * a waiting hook that attached is attached, the others of its probe on standby; a wait that
 * ended without a hook is unavailable, with why. Unchanged input comes back as it was.
 */
export function applyProbeStates<T extends HookState>(hooks: readonly T[], states: readonly ProbeState[]): readonly T[] {
  let changed = false;
  const out = hooks.map((h): T => {
    const s = states.find((x) => x.probe === h.probe);
    if (!s || h.state !== 'waiting' || s.state === 'waiting') return h;
    changed = true;
    const { why: _, ...rest } = h;
    if (s.state === 'attached') return (s.hook === h.hook ? { ...rest, state: 'attached' } : { ...rest, state: 'standby', why: `not needed: ${s.hook ?? '?'} is attached` }) as T;
    return { ...rest, state: 'unavailable', ...(s.why !== undefined ? { why: s.why } : {}) } as T;
  });
  return changed ? out : hooks;
}

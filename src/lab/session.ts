/**
 * Everything one lab run creates, and the guarantee that it goes away again: namespaces,
 * helper processes inside them, and global sysctls changed for at most GLOBAL_WINDOW_MAX_MS.
 *
 * Cleanup is synchronous (spawnSync, writes to /proc/sys) so the same code serves `finally`,
 * SIGINT/SIGTERM, an AbortSignal and process exit. Global sysctls are also guarded across
 * processes: the originals are written to GLOBAL_STATE before anything is changed, so two lab
 * runs never stack their changes, and a run killed with SIGKILL is repaired by the next one.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { DroptraceError } from '../errors.js';
import { GLOBAL_STATE, STATE_DIR, repairStaleGlobals } from './globals.js';
import type { GlobalState } from './globals.js';
import { Helper } from './helper.js';
import { exec, readSysctl, sleep, sysctlPath } from './proc.js';
import { createPairAsync, destroyNamespaces } from './pair.js';
import { senderCommand } from './senders.js';
import type { SenderName } from './senders.js';
import type { LabExpectation, LabOptions, LabResult } from './types.js';

export { Helper } from './helper.js';
export { exec, netstatCounter, readSysctl, sumStatColumn, sysctlPath } from './proc.js';

export const NETNS_PREFIX = 'dtlab-';
/** The longest a global sysctl stays changed, whatever happens to the run. */
export const GLOBAL_WINDOW_MAX_MS = 2000;

export interface Ns {
  name: string;
  netns: number;
}

/** Two namespaces joined by one veth: `a` holds dtv0, `b` holds dtv1; each knows the other's MAC. */
export interface Pair {
  a: Ns;
  b: Ns;
  devA: string;
  devB: string;
  ip4A: string;
  ip4B: string;
  ip6A: string;
  ip6B: string;
}


export class LabSession {
  readonly suffix = randomBytes(3).toString('hex');
  readonly namespaces: Ns[] = [];
  readonly notes: string[] = [];
  private readonly helpers = new Set<Helper>();
  private globals: Record<string, string> | null = null;
  private globalsSince = 0;
  private globalsTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly onExit = () => this.cleanupSync();

  constructor(
    readonly scenario: string,
    readonly log: (line: string) => void,
  ) {
    process.on('exit', this.onExit);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private assertOpen(): void {
    if (this.closed) throw new DroptraceError('E_LAB_INTERRUPTED', 'runtime', `lab: ${this.scenario} was stopped`);
  }

  ip(ns: string, args: string[]): Promise<string> {
    return exec('ip', ['-n', ns, ...args]);
  }

  inNs(ns: string, cmd: string, args: string[]): Promise<string> {
    this.assertOpen();
    return exec('ip', ['netns', 'exec', ns, cmd, ...args]);
  }

  /** A /proc/net file as a namespace sees it. */
  readNsFile(ns: string, path: string): Promise<string> {
    return this.inNs(ns, 'cat', [path]);
  }

  /** iptables in a namespace; -w because other namespaces' iptables share one lock file. */
  iptables(ns: string, args: string[]): Promise<string> {
    return this.inNs(ns, 'iptables', ['-w', '5', ...args]);
  }

  /** A sysctl of one namespace (net.ipv4.conf.*): it dies with the namespace. */
  nsSysctl(ns: string, key: string, value: string | number): Promise<string> {
    return this.inNs(ns, 'sysctl', ['-qw', `${key}=${value}`]);
  }

  /**
   * Namespaces a and b joined by a veth (dtv0 in a, dtv1 in b), 198.18.0.1/16 + fd99::1/64 and
   * 198.18.0.2/16 + fd99::2/64, each with a permanent neighbour entry for the other so no ARP
   * or NDISC runs between them (its queues would drop bursts of their own). Wide prefixes: the
   * neighbour scenario sends to thousands of on-link addresses.
   */
  async pair(): Promise<Pair> {
    this.assertOpen();
    const a: Ns = { name: `${NETNS_PREFIX}${this.suffix}-a`, netns: 0 };
    const b: Ns = { name: `${NETNS_PREFIX}${this.suffix}-b`, netns: 0 };
    const made = await createPairAsync(
      {
        names: [a.name, b.name],
        devs: ['dtv0', 'dtv1'],
        macs: ['02:64:74:6c:00:01', '02:64:74:6c:00:02'],
        addrs: { ipA: '198.18.0.1', ipB: '198.18.0.2', len4: 16, ip6A: 'fd99::1', ip6B: 'fd99::2', len6: 64 },
      },
      // recorded before anything exists, so cleanupSync() finds them whatever happens
      { plan: () => this.namespaces.push(a, b), stillWanted: () => !this.closed },
    ).catch((e: unknown) => {
      this.assertOpen();
      throw e;
    });
    a.netns = made.netnsA;
    b.netns = made.netnsB;
    const p: Pair = { a, b, devA: made.vethA, devB: made.vethB, ip4A: made.ipA, ip4B: made.ipB, ip6A: made.ip6A, ip6B: made.ip6B };
    this.log(`namespaces ${a.name} (netns ${a.netns}) and ${b.name} (netns ${b.netns}) joined by ${p.devA}/${p.devB}`);
    return p;
  }

  /** Start a sender (src/lab/senders/<name>.py) in a namespace; `args` reaches it as JSON in argv[1]. */
  helper(ns: string, label: string, sender: SenderName, args: unknown): Helper {
    this.assertOpen();
    const [python, argv] = senderCommand(sender, [JSON.stringify(args)]);
    const child = spawn('ip', ['netns', 'exec', ns, python, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
    const h = new Helper(label, child);
    this.helpers.add(h);
    return h;
  }

  /**
   * Change global sysctls (shared by every namespace and the host) until restoreGlobals(),
   * and in any case for no longer than GLOBAL_WINDOW_MAX_MS: a timer puts them back even if
   * the run hangs. Waits while another lab run holds its own changes.
   */
  async changeGlobals(values: Record<string, number | string>): Promise<void> {
    this.assertOpen();
    if (this.globals) throw new Error('lab: global sysctls already changed');
    mkdirSync(STATE_DIR, { recursive: true });
    const deadline = Date.now() + 10_000;
    let saved: Record<string, string> | null = null;
    while (!saved) {
      if (repairStaleGlobals(this.log)) {
        try {
          const fd = openSync(GLOBAL_STATE, 'wx');
          // read the originals only once the state file is ours: no other run is between
          // its change and its restore now
          const originals: Record<string, string> = {};
          for (const key of Object.keys(values)) originals[key] = readSysctl(key);
          writeSync(fd, JSON.stringify({ pid: process.pid, saved: originals } satisfies GlobalState));
          closeSync(fd);
          saved = originals;
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
      }
      if (Date.now() > deadline) {
        throw new DroptraceError('E_LAB_BUSY', 'runtime', `lab: another lab run is changing global sysctls (${GLOBAL_STATE})`, { hint: 'try again when it is done' });
      }
      await sleep(100);
      this.assertOpen();
    }
    this.globals = saved;
    this.globalsSince = Date.now();
    this.globalsTimer = setTimeout(() => {
      this.log(`global sysctls held for ${GLOBAL_WINDOW_MAX_MS} ms: restoring them now`);
      this.restoreGlobals();
    }, GLOBAL_WINDOW_MAX_MS);
    for (const [key, value] of Object.entries(values)) {
      writeFileSync(sysctlPath(key), String(value));
    }
    this.log(`global ${Object.entries(values).map(([k, v]) => `${k} ${saved[k]} -> ${v}`).join(', ')}`);
  }

  /**
   * Keep global sysctls changed until `ms` after the change (never past GLOBAL_WINDOW_MAX_MS
   * minus a margin), so samplers polling the tables can see them at their limit.
   */
  async holdGlobals(ms: number): Promise<void> {
    if (!this.globals) return;
    const left = this.globalsSince + Math.min(ms, GLOBAL_WINDOW_MAX_MS - 250) - Date.now();
    if (left > 0) {
      this.log(`holding the lowered limit for ${left} ms more`);
      await sleep(left);
    }
  }

  /** Put global sysctls back; returns how long they were changed (ms), or null if they were not. */
  restoreGlobals(): number | null {
    if (!this.globals) return null;
    if (this.globalsTimer) clearTimeout(this.globalsTimer);
    this.globalsTimer = null;
    const saved = this.globals;
    this.globals = null;
    // restore in reverse order of the change
    for (const [key, value] of Object.entries(saved).reverse()) {
      try {
        writeFileSync(sysctlPath(key), value);
      } catch (e) {
        process.stderr.write(`droptrace: lab: could not restore ${key}=${value}: ${(e as Error).message}\n`);
      }
    }
    try {
      unlinkSync(GLOBAL_STATE);
    } catch {
      // already gone
    }
    const ms = Date.now() - this.globalsSince;
    this.log(`global sysctls restored after ${ms} ms (${Object.entries(saved).map(([k, v]) => `${k}=${v}`).join(', ')})`);
    return ms;
  }

  /** Idempotent: stop helpers, restore sysctls, delete namespaces. */
  cleanupSync(): void {
    if (this.closed) return;
    this.closed = true;
    process.off('exit', this.onExit);
    for (const h of this.helpers) h.kill();
    this.restoreGlobals();
    destroyNamespaces(this.namespaces.map((n) => n.name));
    for (const ns of this.namespaces) {
      if (existsSync(`/run/netns/${ns.name}`)) process.stderr.write(`droptrace: lab: could not delete namespace ${ns.name}\n`);
    }
    if (this.namespaces.length) this.log(`deleted ${this.namespaces.map((n) => n.name).join(', ')}`);
  }
}

/**
 * Run a scenario body with a session: checks root, installs SIGINT/SIGTERM handlers and the
 * AbortSignal, and always cleans up. The body returns what it expects the tracer to see.
 */
export async function runLab(
  scenario: string,
  opts: LabOptions,
  body: (lab: LabSession) => Promise<{ expect: LabExpectation[] }>,
): Promise<LabResult> {
  if (process.getuid?.() !== 0) {
    throw new DroptraceError('E_LAB_ROOT', 'permissions', 'lab needs root (network namespaces, iptables, sysctls)', { hint: 'run it with sudo' });
  }
  if (opts.signal?.aborted) throw new DroptraceError('E_LAB_INTERRUPTED', 'runtime', `lab: ${scenario} aborted before it started`);
  const log = opts.log ?? (() => {});
  const lab = new LabSession(scenario, log);
  let stop: (e: Error) => void = () => {};
  const stopped = new Promise<never>((_, reject) => {
    stop = reject;
  });
  const interrupt = (why: string) => {
    lab.cleanupSync();
    stop(new DroptraceError('E_LAB_INTERRUPTED', 'runtime', `lab: ${scenario} ${why}; namespaces deleted, sysctls restored`));
  };
  const onSignal = (sig: NodeJS.Signals) => {
    interrupt(`interrupted by ${sig}`);
    // nobody else listening: behave like the default action, after cleaning up
    if (process.listenerCount(sig) === 1) process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  const onAbort = () => interrupt('aborted');
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const work = body(lab);
  work.catch(() => {}); // after an interrupt its rejection is expected and already reported
  try {
    const { expect } = await Promise.race([work, stopped]);
    return { scenario, namespaces: lab.namespaces.map((n) => ({ name: n.name, netns: n.netns })), expect, notes: lab.notes };
  } finally {
    lab.cleanupSync();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** Let the tracer start, in the caller's words: once namespaces exist, before any drop. */
export async function beforeProvoke(lab: LabSession, opts: LabOptions): Promise<void> {
  if (!opts.beforeProvoke) return;
  await opts.beforeProvoke(lab.namespaces.map((n) => ({ name: n.name, netns: n.netns })));
  if (lab.isClosed) throw new DroptraceError('E_LAB_INTERRUPTED', 'runtime', `lab: ${lab.scenario} was stopped`);
}

/** Keep the namespaces alive until `durationMs` after provoking began, for late drops. */
export async function observe(lab: LabSession, startedAt: number, durationMs: number): Promise<void> {
  const left = startedAt + durationMs - Date.now();
  if (left > 0) {
    lab.log(`observing for ${left} ms`);
    await sleep(left);
  }
}

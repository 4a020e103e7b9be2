/**
 * One walk over `/proc/<pid>/ns/net`: every process on the node and the netns it lives in. Pod
 * discovery (src/enrich/discovery.ts) and the host samplers (netns.ts) both need it, and on a
 * node with hundreds of pods it is the largest read either makes, so they share one `ProcWalker`:
 * a caller says how fresh a walk it needs, and a walk that recent (or one under way that began
 * late enough) is handed out instead of walking again.
 *
 * A caller content with a walk of a few seconds ago (pod discovery's periodic scan, the
 * samplers' aged-out netns set) gets the last walk even when it is older, as long as the
 * node's processes are the same ones: one readdir of /proc, compared with the walk's pid list,
 * instead of a readlink per process. What that cannot see — a process that entered another
 * netns in place (setns, `unshare -n` before its exec), a pid reused between two looks — is
 * found by the next full walk, at most `unchangedMaxMs` (30 s) after the last one; a caller that
 * needs a walk from now on (`fresh()`, a drop from an unknown netns, a failed netns check)
 * always gets a full walk.
 */
import type { Clock, HostIo } from './io.js';
import { errnoCode, mapLimit, nodeHostIo, systemClock } from './io.js';

export interface ProcWalk {
  /** Monotonic ms when the walk began: every netns change before it is in it. */
  startedAt: number;
  /** Processes of each netns inode, ascending. */
  byInode: Map<number, number[]>;
  /** The reader's own netns. */
  selfInode: number | null;
  /** pid 1's netns (null when its link is unreadable). */
  initInode: number | null;
  /** Processes looked at. */
  pids: number;
  /** Their pids, ascending (what an unchanged-node check compares with). */
  pidList: readonly number[];
  /** Processes that exited during the walk (normal). */
  vanished: number;
  /** Processes whose netns link could not be read (not root). */
  denied: number;
}

export function parseNetnsLink(link: string): number | null {
  const m = /^net:\[(\d+)\]$/.exec(link.trim());
  return m ? Number(m[1]) : null;
}

const isPid = (n: string): boolean => /^\d+$/.test(n);

/** The pids among the names of /proc, ascending. */
export function pidsOf(names: readonly string[]): number[] {
  return names
    .filter(isPid)
    .map(Number)
    .sort((a, b) => a - b);
}

/** The same pids, both ascending. */
export function samePids(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Walks once. `proc` is the /proc root (tests point it elsewhere); `listed`, /proc's pids
 * when the caller has just read them (at monotonic ms `at`, the walk's start).
 */
export async function walkProc(
  io: HostIo,
  clock: Clock,
  proc = '/proc',
  listed?: { pids: readonly number[]; at: number },
): Promise<ProcWalk> {
  const startedAt = listed?.at ?? clock.monotonicMs();
  const link = (p: number | string) => io.readlink(`${proc}/${p}/ns/net`).then(parseNetnsLink, () => null);
  const selfInode = await link('self');
  const pids = listed !== undefined ? [...listed.pids] : pidsOf(await io.readdir(proc));
  let vanished = 0;
  let denied = 0;
  const inodes = await mapLimit(pids, 64, async (pid) => {
    try {
      return parseNetnsLink(await io.readlink(`${proc}/${pid}/ns/net`));
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EACCES' || code === 'EPERM') denied++;
      else vanished++;
      return null;
    }
  });
  const byInode = new Map<number, number[]>();
  pids.forEach((pid, i) => {
    const inode = inodes[i];
    if (inode === null || inode === undefined) return;
    const list = byInode.get(inode);
    if (list) list.push(pid);
    else byInode.set(inode, [pid]);
  });
  const initInode = pids[0] === 1 ? (inodes[0] ?? null) : null;
  return { startedAt, byInode, selfInode, initInode, pids: pids.length, pidList: pids, vanished, denied };
}

export interface ProcWalkerOptions {
  io?: HostIo;
  clock?: Clock;
  /** default /proc */
  proc?: string;
  /**
   * How long the last full walk may stand in for a new one while /proc lists the same pids
   * (see the top of this file); default 30 s, 0: never.
   */
  unchangedMaxMs?: number;
}

/** Hands out walks, walking only when the last one (or the one under way) is older than asked. */
export class ProcWalker {
  readonly #io: HostIo;
  readonly #clock: Clock;
  readonly #proc: string;
  readonly #unchangedMaxMs: number;
  #last: ProcWalk | null = null;
  #running: { startedAt: number; walk: Promise<ProcWalk> } | null = null;
  /** Walks made so far (the other requests were served by one of them). */
  walks = 0;
  /** Requests served by the last walk because /proc listed the same pids (no walk made). */
  unchanged = 0;

  constructor(opts: ProcWalkerOptions = {}) {
    this.#io = opts.io ?? nodeHostIo();
    this.#clock = opts.clock ?? systemClock;
    this.#proc = opts.proc ?? '/proc';
    this.#unchangedMaxMs = opts.unchangedMaxMs ?? 30_000;
  }

  get clock(): Clock {
    return this.#clock;
  }

  /**
   * A walk that began at `notBefore` (monotonic ms) or later — or, when `notBefore` lies in the
   * past, the last walk if /proc still lists the same pids and it is at most `unchangedMaxMs`
   * old. A walk's failure rejects every waiter.
   */
  get(notBefore: number): Promise<ProcWalk> {
    const asked = this.#clock.monotonicMs();
    const last = this.#last;
    if (last !== null && last.startedAt >= notBefore) return Promise.resolve(last);
    const running = this.#running;
    if (running !== null && running.startedAt >= notBefore) return running.walk;
    // one walk at a time: a request newer than the one under way waits for it, then walks
    const before = running?.walk.catch(() => undefined) ?? Promise.resolve();
    const walk = before.then(async () => {
      const again = this.#last;
      if (again !== null && again.startedAt >= notBefore) return again;
      let listed: { pids: number[]; at: number } | undefined;
      if (again !== null && notBefore < asked && asked - again.startedAt <= this.#unchangedMaxMs) {
        listed = { at: this.#clock.monotonicMs(), pids: pidsOf(await this.#io.readdir(this.#proc)) };
        if (samePids(listed.pids, again.pidList)) {
          this.unchanged++;
          return again;
        }
      }
      const w = await walkProc(this.#io, this.#clock, this.#proc, listed);
      this.walks++;
      this.#last = w;
      return w;
    });
    const entry = { startedAt: this.#clock.monotonicMs(), walk };
    this.#running = entry;
    void walk.then(
      () => this.#settle(entry),
      () => this.#settle(entry),
    );
    return walk;
  }

  /** A walk begun now or later. */
  fresh(): Promise<ProcWalk> {
    return this.get(this.#clock.monotonicMs());
  }

  #settle(entry: { startedAt: number; walk: Promise<ProcWalk> }): void {
    if (this.#running === entry) this.#running = null;
  }
}

let machine: ProcWalker | null = null;

/** The walker of this machine's /proc, shared by every reader that was not given its own I/O. */
export function machineProcWalker(): ProcWalker {
  machine ??= new ProcWalker();
  return machine;
}

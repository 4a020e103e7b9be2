/**
 * One walk over `/proc/<pid>/ns/net`: every process on the node and the netns it lives in. Pod
 * discovery (src/enrich/discovery.ts) and the host samplers (netns.ts) both need it, and on a
 * node with hundreds of pods it is the largest read either makes, so they share one `ProcWalker`:
 * a caller says how fresh a walk it needs, and a walk that recent (or one under way that began
 * late enough) is handed out instead of walking again.
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

/** Walks once. `proc` is the /proc root (tests point it elsewhere). */
export async function walkProc(io: HostIo, clock: Clock, proc = '/proc'): Promise<ProcWalk> {
  const startedAt = clock.monotonicMs();
  const link = (p: number | string) => io.readlink(`${proc}/${p}/ns/net`).then(parseNetnsLink, () => null);
  const selfInode = await link('self');
  const pids = (await io.readdir(proc)).filter(isPid).map(Number).sort((a, b) => a - b);
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
  return { startedAt, byInode, selfInode, initInode, pids: pids.length, vanished, denied };
}

export interface ProcWalkerOptions {
  io?: HostIo;
  clock?: Clock;
  /** default /proc */
  proc?: string;
}

/** Hands out walks, walking only when the last one (or the one under way) is older than asked. */
export class ProcWalker {
  readonly #io: HostIo;
  readonly #clock: Clock;
  readonly #proc: string;
  #last: ProcWalk | null = null;
  #running: { startedAt: number; walk: Promise<ProcWalk> } | null = null;
  /** Walks made so far (the other requests were served by one of them). */
  walks = 0;

  constructor(opts: ProcWalkerOptions = {}) {
    this.#io = opts.io ?? nodeHostIo();
    this.#clock = opts.clock ?? systemClock;
    this.#proc = opts.proc ?? '/proc';
  }

  get clock(): Clock {
    return this.#clock;
  }

  /** A walk that began at `notBefore` (monotonic ms) or later; a walk's failure rejects every waiter. */
  get(notBefore: number): Promise<ProcWalk> {
    const last = this.#last;
    if (last !== null && last.startedAt >= notBefore) return Promise.resolve(last);
    const running = this.#running;
    if (running !== null && running.startedAt >= notBefore) return running.walk;
    // one walk at a time: a request newer than the one under way waits for it, then walks
    const before = running?.walk.catch(() => undefined) ?? Promise.resolve();
    const walk = before.then(async () => {
      const again = this.#last;
      if (again !== null && again.startedAt >= notBefore) return again;
      const w = await walkProc(this.#io, this.#clock, this.#proc);
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

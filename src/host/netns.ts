/**
 * Network namespaces on the machine, each with the processes living in it. `/proc/<pid>/net/`
 * is that process's netns view, so reading through a pid costs one open and no spawn; only a
 * named netns without any process (`ip netns add` and nothing started in it) must be entered
 * with nsenter. Processes come and go during the scan: a vanished pid is skipped, never an error.
 */
import type { Clock, HostIo } from './io.js';
import { mapLimit, systemClock } from './io.js';
import type { ProcWalk } from './proc-walk.js';
import { parseNetnsLink, walkProc } from './proc-walk.js';

export interface NetnsHandle {
  /** The namespace inode, as `ip netns identify`, `lsns` and drop events' `netns` show it. */
  inode: number;
  /** Processes in it, ascending; the first is the one shown. Empty for a process-less named netns. */
  pids: number[];
  /** Command name of the first pid that could be read. */
  comm: string | null;
  /** Name under a netns directory (`/run/netns/<name>`), when it has one. */
  name: string | null;
  /** Path to enter it by (`/run/netns/<name>`), when it has one. */
  path: string | null;
  /** The reader's own netns: its files are read directly, its sysctls are /proc/sys. */
  self: boolean;
  /** The netns of pid 1 (the host's, unless the reader sits in its own pid namespace). */
  init: boolean;
}

export interface NetnsScan {
  netns: NetnsHandle[];
  selfInode: number | null;
  /** Processes looked at. */
  pids: number;
  /** Processes that exited during the scan (normal). */
  vanished: number;
  /** Processes whose netns link could not be read (not root). */
  denied: number;
}

export interface ScanNetnsOptions {
  /** Directories of bind-mounted netns files; default `/run/netns` (iproute2, CNI plugins). */
  netnsDirs?: readonly string[];
  /** When false, only the reader's own netns is returned (no /proc walk). */
  all?: boolean;
  /** A walk of /proc already made (proc-walk.ts, shared with pod discovery); default: walk now. */
  walk?: ProcWalk;
  /**
   * The scan before this one: a netns whose first process is the same keeps its `comm`, so a
   * rescan of an unchanged node reads no /proc/<pid>/comm at all.
   */
  previous?: NetnsScan | null;
}

export { parseNetnsLink };

export async function scanNetns(io: HostIo, opts: ScanNetnsOptions = {}): Promise<NetnsScan> {
  const all = opts.all !== false;
  const walk: ProcWalk | null = all ? (opts.walk ?? (await walkProc(io, systemClock))) : null;
  const selfInode = walk !== null ? walk.selfInode : await io.readlink('/proc/self/ns/net').then(parseNetnsLink, () => null);
  const byInode = new Map<number, number[]>(walk?.byInode ?? []);
  if (selfInode !== null && !byInode.has(selfInode)) byInode.set(selfInode, []);
  const initInode = walk?.initInode ?? null;

  const named = new Map<number, { name: string; path: string }>();
  if (all) {
    for (const dir of opts.netnsDirs ?? ['/run/netns']) {
      const names = await io.readdir(dir).catch(() => [] as string[]);
      for (const name of names.sort()) {
        const path = `${dir}/${name}`;
        const inode = await io.nsInode(path).catch(() => null);
        if (inode !== null && !named.has(inode)) named.set(inode, { name, path });
      }
    }
    for (const inode of named.keys()) if (!byInode.has(inode)) byInode.set(inode, []);
  }

  const before = new Map<number, NetnsHandle>();
  for (const h of opts.previous?.netns ?? []) before.set(h.inode, h);
  const inodes = [...byInode.keys()].sort((a, b) => a - b);
  const netns = await mapLimit(inodes, 32, async (inode): Promise<NetnsHandle> => {
    let pids = byInode.get(inode) ?? [];
    const was = before.get(inode);
    let comm: string | null = was !== undefined && was.pids[0] !== undefined && was.pids[0] === pids[0] ? was.comm : null;
    for (let tries = 0; tries < 4 && pids[0] !== undefined && comm === null; tries++) {
      try {
        comm = (await io.readFile(`/proc/${pids[0]}/comm`)).trim();
      } catch {
        // Exited since the walk: the pid shown must be a live one, so drop it and try the next.
        pids = pids.slice(1);
      }
    }
    const n = named.get(inode);
    return {
      inode,
      pids,
      comm,
      name: n?.name ?? null,
      path: n?.path ?? null,
      self: inode === selfInode,
      init: inode === initInode,
    };
  });
  return { netns, selfInode, pids: walk?.pids ?? 0, vanished: walk?.vanished ?? 0, denied: walk?.denied ?? 0 };
}

/** How a netns is named in a line an engineer reads. */
export function describeNetns(h: Pick<NetnsHandle, 'inode' | 'pids' | 'comm' | 'name' | 'init'>): string {
  const parts: string[] = [];
  if (h.name !== null) parts.push(h.name);
  if (h.pids[0] !== undefined) parts.push(`pid ${h.pids[0]}${h.comm !== null ? ` ${h.comm}` : ''}`);
  const base = h.init ? `host netns ${h.inode}` : `netns ${h.inode}`;
  return parts.length > 0 ? `${base} (${parts.join(', ')})` : base;
}

/**
 * Reads a file of the netns's own /proc/net view (`stat/nf_conntrack`, `dev`): the reader's
 * own directly, another's through one of its processes, a process-less named one through
 * nsenter. Null when none of these works any more (the netns went away).
 */
export async function readNetnsProcNet(io: HostIo, h: NetnsHandle, file: string): Promise<string | null> {
  if (h.self) return io.readFile(`/proc/self/net/${file}`).catch(() => null);
  for (const pid of h.pids.slice(0, 4)) {
    try {
      return await io.readFile(`/proc/${pid}/net/${file}`);
    } catch {
      // exited: try the next process of the same netns
    }
  }
  if (h.path === null) return null;
  const r = await io.exec('nsenter', [`--net=${h.path}`, 'cat', `/proc/net/${file}`]).catch(() => null);
  return r !== null && r.code === 0 ? r.stdout : null;
}

/**
 * Readings of process-less named netns, which only nsenter reaches: a spawn each, which costs
 * more than every other read of a sample together. Taken at most every `everyMs` per netns and
 * file, handed out again in between with the time they were taken (rates use that time).
 */
export class EnteredReads {
  readonly #clock: Clock;
  readonly #everyMs: number;
  readonly #cache = new Map<string, { inode: number; at: number; text: string | null }>();
  /** Spawns so far. */
  spawns = 0;

  constructor(clock: Clock, everyMs: number) {
    this.#clock = clock;
    this.#everyMs = everyMs;
  }

  /** The text and the monotonic ms it was read at (`now` for a netns with a process, read directly). */
  async read(io: HostIo, h: NetnsHandle, file: string, now = this.#clock.monotonicMs()): Promise<{ text: string | null; at: number }> {
    if (h.self || h.pids.length > 0 || h.path === null) return { text: await readNetnsProcNet(io, h, file), at: now };
    const key = `${h.inode}/${file}`;
    const kept = this.#cache.get(key);
    if (kept !== undefined && now - kept.at < this.#everyMs) return kept;
    this.spawns++;
    const got = { inode: h.inode, at: now, text: await readNetnsProcNet(io, h, file) };
    this.#cache.set(key, got);
    return got;
  }

  /** Forgets the netns that are gone (a namespace churned away leaves nothing behind). */
  keepOnly(present: ReadonlySet<number>): void {
    for (const [key, v] of this.#cache) if (!present.has(v.inode)) this.#cache.delete(key);
  }
}

/** nsenter arguments that put a command into this netns, or null for the reader's own. */
export function enterArgs(h: NetnsHandle): string[] | null {
  if (h.self) return null;
  if (h.pids[0] !== undefined) return ['-t', String(h.pids[0]), '-n'];
  return h.path !== null ? [`--net=${h.path}`] : null;
}

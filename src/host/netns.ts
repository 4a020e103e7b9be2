/**
 * Network namespaces on the machine, each with the processes living in it. `/proc/<pid>/net/`
 * is that process's netns view, so reading through a pid costs one open and no spawn; only a
 * named netns without any process (`ip netns add` and nothing started in it) must be entered
 * with nsenter. Processes come and go during the scan: a vanished pid is skipped, never an error.
 */
import type { HostIo } from './io.js';
import { errnoCode, mapLimit } from './io.js';

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
}

export function parseNetnsLink(link: string): number | null {
  const m = /^net:\[(\d+)\]$/.exec(link.trim());
  return m ? Number(m[1]) : null;
}

export async function scanNetns(io: HostIo, opts: ScanNetnsOptions = {}): Promise<NetnsScan> {
  const selfInode = await io.readlink('/proc/self/ns/net').then(parseNetnsLink, () => null);
  const byInode = new Map<number, number[]>();
  let pidCount = 0;
  let vanished = 0;
  let denied = 0;

  if (opts.all !== false) {
    const pids = (await io.readdir('/proc')).filter((n) => /^\d+$/.test(n)).map(Number);
    pidCount = pids.length;
    const links = await mapLimit(pids, 64, async (pid) => {
      try {
        return parseNetnsLink(await io.readlink(`/proc/${pid}/ns/net`));
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'EACCES' || code === 'EPERM') denied++;
        else vanished++;
        return null;
      }
    });
    pids.forEach((pid, i) => {
      const inode = links[i];
      if (inode === null || inode === undefined) return;
      const list = byInode.get(inode);
      if (list) list.push(pid);
      else byInode.set(inode, [pid]);
    });
  }
  if (selfInode !== null && !byInode.has(selfInode)) byInode.set(selfInode, []);
  let initInode: number | null = null;
  for (const [inode, pids] of byInode) if (pids.includes(1)) initInode = inode;

  const named = new Map<number, { name: string; path: string }>();
  if (opts.all !== false) {
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

  const inodes = [...byInode.keys()].sort((a, b) => a - b);
  const netns = await mapLimit(inodes, 32, async (inode): Promise<NetnsHandle> => {
    let pids = (byInode.get(inode) ?? []).sort((a, b) => a - b);
    let comm: string | null = null;
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
  return { netns, selfInode, pids: pidCount, vanished, denied };
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

/** nsenter arguments that put a command into this netns, or null for the reader's own. */
export function enterArgs(h: NetnsHandle): string[] | null {
  if (h.self) return null;
  if (h.pids[0] !== undefined) return ['-t', String(h.pids[0]), '-n'];
  return h.path !== null ? [`--net=${h.path}`] : null;
}

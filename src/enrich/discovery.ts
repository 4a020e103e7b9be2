/**
 * Node-local pod discovery, no API access needed: netns inode (`/proc/<pid>/ns/net`) → the
 * processes in it → their cgroup (`/proc/<pid>/cgroup`) → pod UID and container ids; the
 * kubelet's `/var/log/pods/<namespace>_<name>_<uid>/` gives the names, and the netns's own
 * address tables (`/proc/<pid>/net/fib_trie`, `if_inet6`) its IPs.
 *
 * Rescans every `intervalMs`, and soon after a drop comes from a netns the last scan did not
 * see (a pod started since), at most once per `missRescanMs`. Processes exit mid-scan all the
 * time: a vanished pid is counted, never an error. The host's netns (pid 1's) is never a pod's:
 * host-network pods are left to the API and the pods file.
 */
import { ipv6 } from '../pipeline/addr.js';
import { mapLimit, nodeHostIo } from '../host/io.js';
import type { HostIo } from '../host/io.js';
import { ProcWalker, machineProcWalker } from '../host/proc-walk.js';
import { parseProcCgroup } from './cgroup.js';
import type { PodCgroup } from './cgroup.js';
import type { PodIndex } from './pod-index.js';

export interface DiscoveryOptions {
  io?: HostIo;
  /** default /proc */
  procRoot?: string;
  /** the kubelet's pod log directory; default /var/log/pods */
  podLogsRoot?: string;
  /** periodic rescans; default 10 s; 0: none */
  intervalMs?: number;
  /** on-demand rescans for an unknown netns at most this often; default 1 s */
  missRescanMs?: number;
  /** epoch ms now */
  now?: () => number;
  /** USER_HZ, the unit of /proc/<pid>/stat start times; 100 on every Linux architecture */
  clockTicks?: number;
  /**
   * Who walks /proc/<pid>/ns/net. Default: the machine's one walker, shared with the host
   * samplers, when `io` and `procRoot` are the real ones; a walker of its own otherwise.
   */
  walker?: ProcWalker;
}

export interface DiscoveredPod {
  uid: string;
  /** empty when /var/log/pods has no directory for it */
  namespace: string;
  name: string;
  netns: number;
  ips: string[];
  containerIds: string[];
  pids: number[];
  /** epoch ms its oldest process started (the sandbox), when readable */
  start: number | undefined;
  cgroup: Omit<PodCgroup, 'podUid' | 'containerId'>;
}

export interface DiscoveryScan {
  pods: DiscoveredPod[];
  /** processes looked at */
  pids: number;
  /** processes that exited during the scan (normal) */
  vanished: number;
  /** processes whose netns link could not be read (not root) */
  denied: number;
  /** network namespaces seen, the host's included */
  netns: number;
  /** pid 1's netns, else the reader's own */
  hostNetns: number | null;
}

export interface DiscoveryStats {
  scans: number;
  onDemandScans: number;
  failures: number;
  lastError: string | null;
  pods: number;
}

/** Local IPv4 addresses of a netns from its /proc/net/fib_trie (loopback excluded). */
export function parseFibTrieLocal(text: string): string[] {
  const out = new Set<string>();
  let last: string | null = null;
  for (const line of text.split('\n')) {
    const m = /\|-- (\d+\.\d+\.\d+\.\d+)\s*$/.exec(line);
    if (m !== null) last = m[1]!;
    else if (last !== null && line.includes('/32 host LOCAL') && !last.startsWith('127.')) out.add(last);
  }
  return [...out];
}

/** Global-scope IPv6 addresses of a netns from its /proc/net/if_inet6 (no loopback, no link-local). */
export function parseIfInet6(text: string): string[] {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || f[3] !== '00' || !/^[0-9a-f]{32}$/.test(f[0]!)) continue;
    out.add(ipv6(Buffer.from(f[0]!, 'hex'), 0));
  }
  return [...out];
}

/** `<namespace>_<name>_<uid>`: names in Kubernetes never contain `_`. */
export function parsePodLogDir(dir: string): { namespace: string; name: string; uid: string } | null {
  const p = dir.split('_');
  if (p.length !== 3 || p.some((x) => x === '')) return null;
  return { namespace: p[0]!, name: p[1]!, uid: p[2]! };
}

/** Start time of a process in clock ticks after boot, field 22 of /proc/<pid>/stat. */
export function parseStatStartTicks(stat: string): number | null {
  // comm (field 2) may contain spaces and parentheses: count from the last ')'
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const v = Number(rest[19]);
  return Number.isFinite(v) ? v : null;
}

interface NetnsInfo {
  /** a process seen in it, to tell next time that the netns is still the same one */
  witness: number;
  /** for a netns that is no pod's: the processes looked at, and when (epoch ms) */
  looked?: { pids: string; at: number };
  pod: PodCgroup | null;
  containerIds: string[];
  ips: string[];
  start: number | undefined;
}

/**
 * A netns that is no pod's is looked at again when its processes change, and at least this often
 * (a process may be moved into a pod's cgroup after it entered the netns).
 */
const NOT_A_POD_RECHECK_MS = 60_000;
/** How old a walk another reader made may be for a periodic scan (a fraction of the interval). */
const SHARED_WALK_MAX_MS = 2_000;

export class NodeDiscovery {
  readonly stats: DiscoveryStats = { scans: 0, onDemandScans: 0, failures: 0, lastError: null, pods: 0 };
  readonly #index: PodIndex;
  readonly #io: HostIo;
  readonly #proc: string;
  readonly #logs: string;
  readonly #intervalMs: number;
  readonly #missMs: number;
  readonly #now: () => number;
  readonly #ticks: number;
  readonly #walker: ProcWalker;
  readonly #cache = new Map<number, NetnsInfo>();
  /** every netns inode the last scan saw: a drop from one of these needs no rescan */
  #seen = new Set<number>();
  /** asked for, rescanned, still not found (a netns without processes): until the next periodic scan */
  readonly #negative = new Set<number>();
  readonly #wanted = new Set<number>();
  #known = new Set<string>();
  #bootMs: number | null = null;
  #lastScanStart: number | null = null;
  #running: Promise<DiscoveryScan> | null = null;
  #queued: Promise<DiscoveryScan> | null = null;
  #timer: NodeJS.Timeout | undefined;
  #missTimer: NodeJS.Timeout | undefined;
  #unlisten: (() => void) | undefined;
  #closed = false;

  constructor(index: PodIndex, opts: DiscoveryOptions = {}) {
    this.#index = index;
    this.#io = opts.io ?? nodeHostIo();
    this.#proc = opts.procRoot ?? '/proc';
    this.#logs = opts.podLogsRoot ?? '/var/log/pods';
    this.#intervalMs = opts.intervalMs ?? 10_000;
    this.#missMs = opts.missRescanMs ?? 1_000;
    this.#now = opts.now ?? Date.now;
    this.#ticks = opts.clockTicks ?? 100;
    const real = opts.io === undefined && opts.procRoot === undefined;
    this.#walker = opts.walker ?? (real ? machineProcWalker() : new ProcWalker({ io: this.#io, proc: this.#proc }));
  }

  /** First scan (its failure is counted, not thrown), then periodic and on-demand rescans. */
  async start(): Promise<void> {
    this.#unlisten = this.#index.onNetnsMiss((inode) => this.#miss(inode));
    await this.scan().catch(() => undefined);
    if (this.#intervalMs > 0 && !this.#closed) {
      this.#timer = setInterval(() => {
        this.#negative.clear();
        this.scan({ shared: true }).catch(() => undefined);
      }, this.#intervalMs);
      this.#timer.unref();
    }
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    clearTimeout(this.#missTimer);
    this.#unlisten?.();
  }

  /**
   * One scan, applied to the index. Calls during a scan share the one queued after it. With
   * `shared`, a /proc walk the host samplers made in the last moment serves instead of a new one.
   */
  scan(opts: { shared?: boolean } = {}): Promise<DiscoveryScan> {
    if (this.#queued) return this.#queued;
    if (this.#running === null) {
      this.#running = this.#scanOnce(opts.shared === true).finally(() => {
        this.#running = null;
      });
      return this.#running;
    }
    this.#queued = this.#running
      .catch(() => undefined)
      .then(() => {
        this.#queued = null;
        return this.scan();
      });
    return this.#queued;
  }

  #miss(inode: number): void {
    if (this.#closed || this.#seen.has(inode) || this.#negative.has(inode) || this.#wanted.has(inode)) return;
    this.#wanted.add(inode);
    if (this.#missTimer !== undefined) return;
    const wait = this.#lastScanStart === null ? 0 : Math.max(0, this.#lastScanStart + this.#missMs - this.#now());
    this.#missTimer = setTimeout(() => {
      const wanted = [...this.#wanted];
      this.stats.onDemandScans++;
      this.scan()
        .then((s) => {
          const found = new Set(s.pods.map((p) => p.netns));
          for (const i of wanted) if (!found.has(i) && !this.#seen.has(i)) this.#negative.add(i);
        })
        .catch(() => undefined)
        .finally(() => {
          for (const i of wanted) this.#wanted.delete(i);
          this.#missTimer = undefined;
        });
    }, wait);
    this.#missTimer.unref();
  }

  async #scanOnce(shared: boolean): Promise<DiscoveryScan> {
    const startedAt = this.#now();
    const previous = this.#lastScanStart;
    this.#lastScanStart = startedAt;
    try {
      const scan = await this.#walk(previous, shared);
      this.#apply(scan, startedAt);
      this.stats.scans++;
      this.stats.pods = scan.pods.length;
      return scan;
    } catch (e) {
      this.stats.failures++;
      this.stats.lastError = e instanceof Error ? e.message : String(e);
      throw e;
    }
  }

  #apply(scan: DiscoveryScan, at: number): void {
    const present = new Set<string>();
    for (const p of scan.pods) {
      present.add(p.uid);
      this.#index.upsert(
        {
          uid: p.uid,
          namespace: p.namespace,
          name: p.name,
          netns: [p.netns],
          ips: p.ips,
          ...(p.start !== undefined ? { start: p.start } : {}),
        },
        'discovery',
      );
    }
    this.#index.endMissing('discovery', present, at);
    this.#known = present;
  }

  async #walk(previousScan: number | null, shared: boolean): Promise<DiscoveryScan> {
    const clock = this.#walker.clock;
    const walk = await this.#walker.get(clock.monotonicMs() - (shared ? SHARED_WALK_MAX_MS : 0));
    const byNetns = walk.byInode;
    const selfNetns = walk.selfInode;
    // pid 1's link can be unreadable (a protected init); droptrace itself runs in the host's netns
    const hostNetns = walk.initInode ?? selfNetns;
    const { vanished, denied } = walk;

    const names = new Map<string, { namespace: string; name: string }>();
    for (const d of await this.#io.readdir(this.#logs).catch(() => [] as string[])) {
      const p = parsePodLogDir(d);
      if (p) names.set(p.uid, p);
    }

    const candidates = [...byNetns].filter(([inode]) => inode !== hostNetns && inode !== selfNetns);
    const infos = await mapLimit(candidates, 16, ([inode, list]) => this.#netnsInfo(inode, list));
    const pods: DiscoveredPod[] = [];
    candidates.forEach(([inode, list], i) => {
      const info = infos[i];
      if (!info?.pod) return;
      const n = names.get(info.pod.podUid);
      const isNew = !this.#known.has(info.pod.podUid);
      // A pod first seen now did not own its netns or IPs when the previous scan looked.
      const start = isNew && previousScan !== null && info.start !== undefined ? Math.max(info.start, previousScan) : info.start;
      pods.push({
        uid: info.pod.podUid,
        namespace: n?.namespace ?? '',
        name: n?.name ?? '',
        netns: inode,
        ips: info.ips,
        containerIds: info.containerIds,
        pids: list,
        start,
        cgroup: { qos: info.pod.qos, driver: info.pod.driver, runtime: info.pod.runtime },
      });
    });

    for (const inode of this.#cache.keys()) if (!byNetns.has(inode)) this.#cache.delete(inode);
    this.#seen = new Set(byNetns.keys());
    return { pods, pids: walk.pids, vanished, denied, netns: byNetns.size, hostNetns };
  }

  async #netnsInfo(inode: number, pids: number[]): Promise<NetnsInfo> {
    const cached = this.#cache.get(inode);
    const looked = pids.slice(0, 64);
    const lookedKey = looked.join(',');
    if (cached?.looked !== undefined) {
      if (cached.looked.pids === lookedKey && this.#now() - cached.looked.at < NOT_A_POD_RECHECK_MS) return cached;
    } else if (cached !== undefined && pids.includes(cached.witness)) {
      // A pod's addresses can appear after its first process (the CNI runs once the sandbox is up).
      if (cached.pod !== null && cached.ips.length === 0) cached.ips = await this.#ips(cached.witness);
      return cached;
    }
    const io = this.#io;
    let pod: PodCgroup | null = null;
    let witness: number | null = null;
    let ambiguous = false;
    const containers = new Set<string>();
    const members: number[] = [];
    for (const pid of looked) {
      const cg = await io.readFile(`${this.#proc}/${pid}/cgroup`).then(parseProcCgroup, () => null);
      if (cg === null) continue;
      if (pod !== null && cg.podUid !== pod.podUid) ambiguous = true;
      pod ??= cg;
      witness ??= pid;
      members.push(pid);
      if (cg.containerId) containers.add(cg.containerId);
    }
    if (pod === null || witness === null || ambiguous) {
      // Not a pod's, or two pods' at once (only the host's netns is that). Kept only while the
      // same processes are in it, and not for long: a process may join a pod's cgroup after it
      // entered the netns.
      const none: NetnsInfo = { witness: pids[0]!, pod: null, containerIds: [], ips: [], start: undefined, looked: { pids: lookedKey, at: this.#now() } };
      this.#cache.set(inode, none);
      return none;
    }
    const info: NetnsInfo = {
      witness,
      pod,
      containerIds: [...containers].sort(),
      ips: await this.#ips(witness),
      start: await this.#startMs(members),
    };
    this.#cache.set(inode, info);
    return info;
  }

  async #ips(pid: number): Promise<string[]> {
    const read = (f: string) => this.#io.readFile(`${this.#proc}/${pid}/net/${f}`).catch(() => '');
    const [v4, v6] = await Promise.all([read('fib_trie'), read('if_inet6')]);
    return [...parseFibTrieLocal(v4), ...parseIfInet6(v6)];
  }

  async #startMs(pids: number[]): Promise<number | undefined> {
    if (this.#bootMs === null) {
      const stat = await this.#io.readFile(`${this.#proc}/stat`).catch(() => '');
      const m = /^btime (\d+)$/m.exec(stat);
      if (m === null) return undefined;
      this.#bootMs = Number(m[1]) * 1000;
    }
    let min: number | undefined;
    for (const pid of pids.slice(0, 16)) {
      const ticks = await this.#io.readFile(`${this.#proc}/${pid}/stat`).then(parseStatStartTicks, () => null);
      if (ticks !== null && (min === undefined || ticks < min)) min = ticks;
    }
    return min === undefined ? undefined : this.#bootMs + (min * 1000) / this.#ticks;
  }
}

/**
 * Pods known on this node, by netns inode and by IP, each mapping valid only for the pod's
 * lifetime. IPs (and netns inode numbers) are reused: during a rolling update the IP of a pod
 * that just ended goes to a new one, so "who had 10.0.3.7" has one answer per point in time.
 *
 * Every key holds a short list of claims ordered by start time; the owner at time t is the
 * claim that started last at or before t, if its pod had not ended by t. A newer claim thus
 * supersedes an older one from its start on, even when the end of the older pod was seen late
 * (or never: a completed Job keeps `podIP` in its status). Lookups are a map hit plus a walk
 * over one to three claims.
 *
 * Several sources feed one index (Kubernetes API, node-local discovery, a static file); a pod
 * ends when every source that vouched for it has said so, at the latest time any of them gave.
 */
import type { Pod } from '../pipeline/events.js';
import { canonicalIp } from './ip.js';

export type PodSource = 'api' | 'discovery' | 'file';

/** What a source knows about one pod; missing fields are merged from other sources. */
export interface PodInfo {
  uid: string;
  /** empty when not known (a pod found through its cgroup without a /var/log/pods entry) */
  namespace: string;
  name: string;
  ips?: readonly string[];
  /** on the host's network: never matched by IP, and its netns is the host's */
  hostNetwork?: boolean;
  netns?: readonly number[];
  /** epoch ms since when its netns and IPs are its own; absent: unknown */
  start?: number;
  /** epoch ms when it ended (its sandbox, and with it its IPs, went away) */
  end?: number;
  /**
   * Other UIDs of the same pod: a static pod is known to the kubelet (cgroup, /var/log/pods) by
   * its config hash and to the API by its mirror pod's UID.
   */
  aliases?: readonly string[];
}

export interface PodRecord {
  readonly uid: string;
  /** The object drop events carry: shared and frozen, replaced when the names change. */
  pod: Pod;
  hostNetwork: boolean;
  /** epoch ms; -Infinity when unknown */
  start: number;
  /** epoch ms; Infinity while alive */
  end: number;
  readonly ips: Set<string>;
  readonly netns: Set<number>;
  /** sources that saw it and have not seen it end */
  readonly alive: Set<PodSource>;
  readonly sources: Set<PodSource>;
  /** latest end a source reported, applied once no source vouches for it any more */
  endSeen: number;
}

interface Claim {
  rec: PodRecord;
  start: number;
}

export interface PodIndexOptions {
  /** How long an ended pod's mappings are kept for late drops; default 10 minutes. */
  retentionMs?: number;
  /** Epoch ms now (tests). */
  now?: () => number;
}

const GC_EVERY_MS = 60_000;

/** The owner at time t: the claim that started last at or before t, if still alive at t. */
function owner(claims: Claim[] | undefined, t: number): PodRecord | undefined {
  if (claims === undefined) return undefined;
  for (let i = claims.length - 1; i >= 0; i--) {
    const c = claims[i]!;
    if (c.start <= t) return t < c.rec.end ? c.rec : undefined;
  }
  return undefined;
}

function insertClaim<K>(map: Map<K, Claim[]>, key: K, claim: Claim): void {
  const list = map.get(key);
  if (list === undefined) {
    map.set(key, [claim]);
    return;
  }
  let i = list.length;
  while (i > 0 && list[i - 1]!.start > claim.start) i--;
  list.splice(i, 0, claim);
}

function dropClaims<K>(map: Map<K, Claim[]>, key: K, rec: PodRecord): void {
  const list = map.get(key);
  if (list === undefined) return;
  const kept = list.filter((c) => c.rec !== rec);
  if (kept.length) map.set(key, kept);
  else map.delete(key);
}

export class PodIndex {
  readonly #records = new Map<string, PodRecord>();
  readonly #aliasOf = new Map<string, string>();
  readonly #byIp = new Map<string, Claim[]>();
  readonly #byNetns = new Map<number, Claim[]>();
  readonly #missListeners = new Set<(inode: number) => void>();
  readonly #retentionMs: number;
  readonly #now: () => number;
  #lastGc = 0;

  constructor(opts: PodIndexOptions = {}) {
    this.#retentionMs = opts.retentionMs ?? 600_000;
    this.#now = opts.now ?? Date.now;
  }

  /** The pod owning network namespace `inode` at epoch ms `t`. */
  byNetns(inode: number, t: number): PodRecord | undefined {
    return owner(this.#byNetns.get(inode), t);
  }

  /** The pod owning `ip` (canonical text, as in drop events) at epoch ms `t`; never a host-network pod. */
  byIp(ip: string, t: number): PodRecord | undefined {
    const hit = owner(this.#byIp.get(ip), t);
    // An IPv4 peer of an IPv6 socket shows as ::ffff:a.b.c.d; only worth a second look on a miss.
    if (hit === undefined && ip.startsWith('::ffff:') && ip.includes('.')) return owner(this.#byIp.get(ip.slice(7)), t);
    return hit;
  }

  get(uid: string): PodRecord | undefined {
    return this.#records.get(this.#aliasOf.get(uid) ?? uid);
  }

  pods(): IterableIterator<PodRecord> {
    return this.#records.values();
  }

  get size(): number {
    return this.#records.size;
  }

  /** Adds what `source` knows about a pod, merging it with what other sources said. */
  upsert(info: PodInfo, source: PodSource): PodRecord {
    const now = this.#now();
    this.#maybeGc(now);
    const uid = this.#aliasOf.get(info.uid) ?? info.uid;
    let rec = this.#records.get(uid);
    if (rec === undefined) {
      rec = {
        uid,
        pod: Object.freeze({ namespace: info.namespace, name: info.name, uid }),
        hostNetwork: false,
        start: info.start ?? -Infinity,
        end: Infinity,
        ips: new Set(),
        netns: new Set(),
        alive: new Set(),
        sources: new Set(),
        endSeen: -Infinity,
      };
      this.#records.set(uid, rec);
    } else if (info.start !== undefined && (rec.start === -Infinity || info.start < rec.start)) {
      rec.start = info.start;
    }
    for (const a of info.aliases ?? []) this.#alias(a, rec);
    if ((info.namespace && info.namespace !== rec.pod.namespace) || (info.name && info.name !== rec.pod.name)) {
      rec.pod = Object.freeze({ namespace: info.namespace || rec.pod.namespace, name: info.name || rec.pod.name, uid });
    }
    rec.sources.add(source);
    if (info.hostNetwork && !rec.hostNetwork) {
      rec.hostNetwork = true;
      for (const ip of rec.ips) dropClaims(this.#byIp, ip, rec);
      for (const ns of rec.netns) dropClaims(this.#byNetns, ns, rec);
      rec.ips.clear();
      rec.netns.clear();
    }
    if (!rec.hostNetwork) {
      for (const raw of info.ips ?? []) {
        const ip = canonicalIp(raw);
        if (ip === null || rec.ips.has(ip)) continue;
        rec.ips.add(ip);
        insertClaim(this.#byIp, ip, { rec, start: this.#claimStart(info.start, this.#byIp.get(ip), now) });
      }
      for (const ns of info.netns ?? []) {
        if (rec.netns.has(ns)) continue;
        rec.netns.add(ns);
        insertClaim(this.#byNetns, ns, { rec, start: this.#claimStart(info.start, this.#byNetns.get(ns), now) });
      }
    }
    if (info.end !== undefined) this.#end(rec, info.end, source);
    else if (rec.end === Infinity) rec.alive.add(source);
    return rec;
  }

  /** `source` saw the pod end at epoch ms `at` (deleted, sandbox gone, completed). */
  end(uid: string, at: number, source: PodSource): void {
    const rec = this.get(uid);
    if (rec !== undefined) this.#end(rec, at, source);
  }

  /**
   * After a full listing by `source`: every pod it vouched for that is not in `present` ended
   * at `at` (deleted while a watch was down, or its processes are gone).
   */
  endMissing(source: PodSource, present: ReadonlySet<string>, at: number): number {
    const seen = new Set<string>();
    for (const u of present) seen.add(this.#aliasOf.get(u) ?? u);
    let n = 0;
    for (const rec of this.#records.values()) {
      if (rec.alive.has(source) && !seen.has(rec.uid)) {
        this.#end(rec, at, source);
        n++;
      }
    }
    return n;
  }

  /** Tells discovery about a netns nobody claimed (it may be a pod started since the last scan). */
  netnsMiss(inode: number): void {
    for (const l of this.#missListeners) l(inode);
  }

  onNetnsMiss(listener: (inode: number) => void): () => void {
    this.#missListeners.add(listener);
    return () => this.#missListeners.delete(listener);
  }

  /** Forgets pods that ended more than the retention time ago. */
  gc(now = this.#now()): number {
    this.#lastGc = now;
    let n = 0;
    for (const rec of [...this.#records.values()]) {
      if (rec.end + this.#retentionMs >= now) continue;
      for (const ip of rec.ips) dropClaims(this.#byIp, ip, rec);
      for (const ns of rec.netns) dropClaims(this.#byNetns, ns, rec);
      this.#records.delete(rec.uid);
      n++;
    }
    if (n) for (const [a, u] of [...this.#aliasOf]) if (!this.#records.has(u)) this.#aliasOf.delete(a);
    return n;
  }

  #maybeGc(now: number): void {
    if (now - this.#lastGc >= GC_EVERY_MS) this.gc(now);
  }

  /**
   * A claim without a known start is the only one on its key (then it holds since forever), or
   * it starts when it was seen: it must not take over drops from before it existed.
   */
  #claimStart(start: number | undefined, existing: Claim[] | undefined, now: number): number {
    if (start !== undefined) return start;
    return existing === undefined || existing.length === 0 ? -Infinity : now;
  }

  #end(rec: PodRecord, at: number, source: PodSource): void {
    rec.alive.delete(source);
    if (at > rec.endSeen) rec.endSeen = at;
    if (rec.alive.size === 0 && rec.end === Infinity) rec.end = rec.endSeen;
  }

  /** Records `alias` as another UID of `rec`, folding in what was learnt under it before. */
  #alias(alias: string, rec: PodRecord): void {
    if (alias === rec.uid) return;
    this.#aliasOf.set(alias, rec.uid);
    const other = this.#records.get(alias);
    if (other === undefined) return;
    this.#records.delete(alias);
    const move = <K>(map: Map<K, Claim[]>, keys: Set<K>, into: Set<K>) => {
      for (const k of keys) {
        if (into.has(k)) dropClaims(map, k, other);
        else {
          for (const c of map.get(k) ?? []) if (c.rec === other) c.rec = rec;
          into.add(k);
        }
      }
    };
    if (!rec.hostNetwork) {
      move(this.#byIp, other.ips, rec.ips);
      move(this.#byNetns, other.netns, rec.netns);
    } else {
      for (const ip of other.ips) dropClaims(this.#byIp, ip, other);
      for (const ns of other.netns) dropClaims(this.#byNetns, ns, other);
    }
    for (const s of other.alive) if (rec.end === Infinity) rec.alive.add(s);
    for (const s of other.sources) rec.sources.add(s);
    if (other.start !== -Infinity && (rec.start === -Infinity || other.start < rec.start)) rec.start = other.start;
    if (other.endSeen > rec.endSeen) rec.endSeen = other.endSeen;
    if (!rec.pod.name && other.pod.name) {
      rec.pod = Object.freeze({ namespace: other.pod.namespace, name: other.pod.name, uid: rec.uid });
    }
  }
}

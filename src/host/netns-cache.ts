/**
 * The set of network namespaces between two full /proc walks. A walk looks at every process on
 * the node; the set it finds changes only when pods come and go, so it is kept for a while and
 * checked at each use with one readlink per netns (its first process still lives in it; a
 * process-less named one is still bound under its name). When a check fails — a pod went away,
 * a pid now belongs to another netns — the next use walks again at once, so a reading is never
 * taken through a pid that left its netns. A netns that appeared since the walk is found by the
 * next one, at most `maxAgeMs` later.
 */
import type { Clock, HostIo } from './io.js';
import { mapLimit } from './io.js';
import type { NetnsScan } from './netns.js';
import { parseNetnsLink } from './netns.js';

export interface NetnsCacheOptions {
  /** Walk /proc again after this long even when every known netns is intact; 0: at every use. */
  maxAgeMs: number;
  /**
   * Walks /proc, or hands out a walk begun at `notBefore` (monotonic ms) or later: the walker
   * is shared with pod discovery (proc-walk.ts), whose walk of a moment ago serves as well.
   */
  walk: (notBefore: number) => Promise<NetnsScan>;
}

/** How old a walk made by someone else may be when the kept set only aged out (nothing changed). */
const SHARED_SLACK_MS = 5_000;

export class NetnsCache {
  readonly #io: HostIo;
  readonly #clock: Clock;
  readonly #opts: NetnsCacheOptions;
  #scan: NetnsScan | null = null;
  #at = 0;
  /** Full walks so far (the rest of the uses were served by the checked set). */
  walks = 0;

  constructor(io: HostIo, clock: Clock, opts: NetnsCacheOptions) {
    this.#io = io;
    this.#clock = clock;
    this.#opts = opts;
  }

  async get(): Promise<NetnsScan> {
    const now = this.#clock.monotonicMs();
    const kept = this.#scan;
    const young = kept !== null && now - this.#at < this.#opts.maxAgeMs;
    if (young && (await this.#intact(kept))) return kept;
    // Something changed (or walking at every use): only a walk from now on will do. Merely aged
    // out: a walk of the last few seconds is as good as a new one.
    const notBefore = young || this.#opts.maxAgeMs === 0 ? now : now - Math.min(SHARED_SLACK_MS, this.#opts.maxAgeMs / 2);
    // a failed walk is not kept: the next use walks again
    this.#scan = null;
    const scan = await this.#opts.walk(notBefore);
    this.walks++;
    this.#scan = scan;
    this.#at = now;
    return scan;
  }

  async #intact(scan: NetnsScan): Promise<boolean> {
    const io = this.#io;
    const ok = await mapLimit(scan.netns, 64, async (h): Promise<boolean> => {
      if (h.self) return true;
      const pid = h.pids[0];
      if (pid !== undefined) return (await io.readlink(`/proc/${pid}/ns/net`).then(parseNetnsLink, () => null)) === h.inode;
      if (h.path !== null) return (await io.nsInode(h.path).catch(() => null)) === h.inode;
      return false;
    });
    return ok.every(Boolean);
  }
}

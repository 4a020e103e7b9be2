/**
 * Everything the host samplers read from the machine goes through `HostIo`, and every clock
 * reading through `Clock`, so the parsing and rate logic runs in unit tests on recorded
 * fixtures and the real thing is only swapped in at the edge.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, statfsSync, statSync } from 'node:fs';

/** statfs type of the namespace filesystem. */
const NSFS_MAGIC = 0x6e736673;

export interface ExecResult {
  /** Exit status; null when the command was killed (timeout). */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface HostIo {
  /** Whole file as text. Rejects with an errno-style `code` (ENOENT, ESRCH, EACCES ...). */
  readFile(path: string): Promise<string>;
  /** Names in a directory. */
  readdir(path: string): Promise<string[]>;
  /** Target of a symbolic link (`/proc/<pid>/ns/net` gives `net:[INODE]`). */
  readlink(path: string): Promise<string>;
  /**
   * Namespace inode of a bind-mounted netns file (`/run/netns/<name>`), or null when the path
   * is not a namespace (a stale name whose mount is gone).
   */
  nsInode(path: string): Promise<number | null>;
  /**
   * Runs a command without a shell. Resolves whatever the exit status; rejects only when the
   * command cannot be started (`code` ENOENT when it is not installed).
   */
  exec(cmd: string, args: readonly string[]): Promise<ExecResult>;
}

export interface Clock {
  /** Wall-clock time, for the timestamp users see. */
  now(): Date;
  /** Monotonic milliseconds, for intervals and rates (immune to wall-clock steps). */
  monotonicMs(): number;
}

export const systemClock: Clock = {
  now: () => new Date(),
  monotonicMs: () => performance.now(),
};

export interface NodeHostIoOptions {
  /** Kill a command that has not finished after this long (a wedged driver must not stall sampling). */
  execTimeoutMs?: number;
}

/**
 * The real machine. Files are read with the synchronous calls: what the samplers read lives in
 * /proc, /sys and /run (memory, never a disk), so a read returns at once, and the thread-pool
 * round trips of the asynchronous calls (open, stat, read, close, each a hop) cost several times
 * the read itself when hundreds of netns are read every few seconds. `mapLimit` yields to the
 * event loop between chunks, so a long scan does not hold up other work.
 */
export function nodeHostIo(opts: NodeHostIoOptions = {}): HostIo {
  const timeout = opts.execTimeoutMs ?? 5_000;
  return {
    readFile: (path) => settle(() => readFileSync(path, 'utf8')),
    readdir: (path) => settle(() => readdirSync(path)),
    readlink: (path) => settle(() => readlinkSync(path)),
    nsInode: (path) => settle(() => (statfsSync(path).type === NSFS_MAGIC ? statSync(path).ino : null)),
    exec: (cmd, args) =>
      new Promise<ExecResult>((resolve, reject) => {
        execFile(cmd, [...args], { timeout, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
          if (err === null) {
            resolve({ code: 0, stdout, stderr });
            return;
          }
          // A numeric code is the exit status; a string code means it never ran (ENOENT, EACCES).
          if (typeof err.code === 'number') resolve({ code: err.code, stdout, stderr });
          else if (err.killed === true || err.signal != null) resolve({ code: null, stdout, stderr });
          else reject(err);
        });
      }),
  };
}

/** A synchronous call as a promise: its value, or its error as the rejection. */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err);
  }
}

/** The errno-style code of a rejected I/O call, or undefined. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** Items `mapLimit` handles between two yields to the event loop. */
const CHUNK = 256;

/**
 * Maps `fn` over `items` with at most `limit` calls in flight, keeping the input order. Every
 * CHUNK items it lets the event loop run: with synchronous I/O underneath, a walk over thousands
 * of pids would otherwise run as one uninterrupted stretch.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let yieldedAt = 0;
  let pause: Promise<void> | null = null;
  const worker = async (): Promise<void> => {
    for (;;) {
      if (next - yieldedAt >= CHUNK) {
        yieldedAt = next;
        pause = new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (pause !== null) await pause;
      if (next >= items.length) return;
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

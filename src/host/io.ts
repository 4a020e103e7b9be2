/**
 * Everything the host samplers read from the machine goes through `HostIo`, and every clock
 * reading through `Clock`, so the parsing and rate logic runs in unit tests on recorded
 * fixtures and the real thing is only swapped in at the edge.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, readlink, stat, statfs } from 'node:fs/promises';

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

/** The real machine. */
export function nodeHostIo(opts: NodeHostIoOptions = {}): HostIo {
  const timeout = opts.execTimeoutMs ?? 5_000;
  return {
    readFile: (path) => readFile(path, 'utf8'),
    readdir: (path) => readdir(path),
    readlink: (path) => readlink(path),
    nsInode: async (path) => ((await statfs(path)).type === NSFS_MAGIC ? (await stat(path)).ino : null),
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

/** The errno-style code of a rejected I/O call, or undefined. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** Maps `fn` over `items` with at most `limit` calls in flight, keeping the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

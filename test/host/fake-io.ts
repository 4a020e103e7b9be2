/**
 * A machine made of recorded files, for the host samplers' unit tests. Everything it was not
 * told about fails like the kernel would for a missing path (ENOENT).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Clock, ExecResult, HostIo } from '../../src/host/io.js';

export function fixture(name: string): string {
  return readFileSync(fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url)), 'utf8');
}

export function errno(code: string, path: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${code}: ${path}`);
  err.code = code;
  return err;
}

export class FakeIo implements HostIo {
  files = new Map<string, string>();
  links = new Map<string, string>();
  dirs = new Map<string, string[]>();
  /** Namespace inodes of bind-mounted netns files; null for a path that is not a namespace. */
  nsInodes = new Map<string, number | null>();
  /** Keyed by the command line `cmd arg1 arg2`; an Error is thrown as a spawn failure. */
  commands = new Map<string, ExecResult | Error>();
  /** Paths that fail with this errno instead of ENOENT. */
  failures = new Map<string, string>();
  /** Every exec, in order. */
  execLog: string[] = [];

  #fail(path: string): never {
    throw errno(this.failures.get(path) ?? 'ENOENT', path);
  }

  async readFile(path: string): Promise<string> {
    const v = this.files.get(path);
    return v ?? this.#fail(path);
  }

  async readdir(path: string): Promise<string[]> {
    const v = this.dirs.get(path);
    return v ? [...v] : this.#fail(path);
  }

  async readlink(path: string): Promise<string> {
    const v = this.links.get(path);
    return v ?? this.#fail(path);
  }

  async nsInode(path: string): Promise<number | null> {
    const v = this.nsInodes.get(path);
    return v !== undefined ? v : this.#fail(path);
  }

  async exec(cmd: string, args: readonly string[]): Promise<ExecResult> {
    const line = [cmd, ...args].join(' ');
    this.execLog.push(line);
    const v = this.commands.get(line);
    if (v instanceof Error) throw v;
    return v ?? { code: 1, stdout: '', stderr: `${cmd}: not recorded` };
  }
}

/** A clock that moves only when told. */
export class FakeClock implements Clock {
  wall = Date.parse('2025-06-01T12:00:00.000Z');
  mono = 1_000;

  now(): Date {
    return new Date(this.wall);
  }

  monotonicMs(): number {
    return this.mono;
  }

  advance(ms: number): void {
    this.wall += ms;
    this.mono += ms;
  }
}

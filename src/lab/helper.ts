/** A lab run's helper processes (the python3 senders) and the line protocol they speak. */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { DroptraceError } from '../errors.js';
import { firstLine, sleep } from './proc.js';

/**
 * A helper process (a python3 sender, src/lab/senders/) inside a namespace, spoken to by lines: it
 * prints `ready` when set up, waits for `go`, prints `done <json>`. Waiting on its lines, not
 * on sleeps, keeps global sysctl windows short and runs deterministic under load.
 */
export class Helper {
  private readonly lines: string[] = [];
  private waiter: (() => void) | null = null;
  private stderr = '';
  private exitCode: number | null | undefined;
  private readonly exited: Promise<void>;

  constructor(
    readonly label: string,
    readonly child: ChildProcess,
  ) {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      this.lines.push(l);
      this.waiter?.();
    });
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    // writing to a helper that was killed (a stopped run) is EPIPE: its end is reported elsewhere
    child.stdin!.on('error', () => {});
    this.exited = new Promise((resolve) => {
      child.on('close', (code, sig) => {
        this.exitCode = code ?? (sig ? -1 : null);
        this.waiter?.();
        resolve();
      });
      child.on('error', (e) => {
        this.stderr += e.message;
        this.exitCode = -1;
        this.waiter?.();
        resolve();
      });
    });
  }

  /** The rest of the first unread line starting with `word`. */
  async expect(word: string, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.lines.findIndex((l) => l === word || l.startsWith(`${word} `));
      if (i >= 0) return this.lines.splice(0, i + 1)[i]!.slice(word.length).trim();
      if (this.exitCode !== undefined) {
        const err = firstLine(this.stderr.split('\n').reverse().join('\n'));
        throw new DroptraceError('E_LAB_HELPER', 'runtime', `lab: ${this.label} ended before "${word}" (exit ${this.exitCode})${err ? `: ${err}` : ''}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new DroptraceError('E_LAB_HELPER', 'runtime', `lab: ${this.label} did not say "${word}" within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = null;
    }
  }

  async expectJson<T>(word: string, timeoutMs?: number): Promise<T> {
    return JSON.parse(await this.expect(word, timeoutMs)) as T;
  }

  send(line: string): void {
    if (this.exitCode === undefined && this.child.stdin?.writable) this.child.stdin.write(`${line}\n`);
  }

  /** Wait for the process to end (it ends on its own, or on a closed stdin). */
  async finish(timeoutMs = 5000): Promise<void> {
    this.child.stdin?.end();
    await Promise.race([this.exited, sleep(timeoutMs)]);
    this.kill();
  }

  kill(): void {
    if (this.exitCode === undefined && this.child.pid !== undefined) {
      try {
        this.child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

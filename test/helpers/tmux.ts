/**
 * A command (droptrace top) in tmux on a private socket in `dir`, as the TUI's end-to-end tests
 * run it: the command line writes its stderr to `dir/err` and its exit code to `dir/rc`. Waits
 * on what the screen says, never on sleeps.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export class Tmux {
  private readonly sock: string;

  constructor(readonly dir: string) {
    this.sock = join(dir, 'tmux.sock');
  }

  tmux(...args: string[]): string {
    return execFileSync('tmux', ['-S', this.sock, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** The `top` session's screen; `escapes`: with its SGR sequences. */
  screen(escapes = false): string {
    return this.tmux('capture-pane', '-p', ...(escapes ? ['-e'] : []), '-t', 'top');
  }

  /** Polls the screen until `pred` holds; the error shows the last screen and the command's stderr. */
  async until(what: string, pred: (s: string) => boolean, timeoutMs = Infinity): Promise<string> {
    const end = Date.now() + timeoutMs;
    let s = '';
    while (Date.now() < end) {
      s = this.screen();
      if (pred(s)) return s;
      if (existsSync(join(this.dir, 'rc'))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const err = existsSync(join(this.dir, 'err')) ? readFileSync(join(this.dir, 'err'), 'utf8') : '';
    throw new Error(`the command ended, or ${timeoutMs} ms passed, while waiting for ${what}; screen:\n${s}\nstderr: ${err}`);
  }

  /** The command's exit code as it wrote it, waiting at most `timeoutMs` for it. */
  async exitCode(timeoutMs = 10_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    while (!existsSync(join(this.dir, 'rc')) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    return readFileSync(join(this.dir, 'rc'), 'utf8').trim();
  }

  kill(): void {
    spawnSync('tmux', ['-S', this.sock, 'kill-server'], { stdio: 'ignore' });
  }
}

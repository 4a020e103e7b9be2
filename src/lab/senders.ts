/**
 * The packet senders: small python3 programs (standard library only) in src/lab/senders/,
 * run by path inside a namespace. Node has no raw sockets, and python3 is on every Debian.
 * They ship in the npm package as source (package.json "files"); they are found from the
 * package root, so the same code works from src/ (tests), dist/ and a global install.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DroptraceError } from '../errors.js';

export type SenderName =
  | 'neigh_burst'
  | 'tcp_listener'
  | 'tcp_connector'
  | 'raw_sender'
  | 'clash_sender'
  | 'udp_send'
  | 'spoof'
  | 'neigh6_burst'
  | 'listen_for'
  | 'connect_hold'
  | 'udp_flood';

export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

let dir: string | null = null;

/** src/lab/senders of the package this file belongs to. */
export function sendersDir(): string {
  if (dir) return dir;
  for (let d = dirname(fileURLToPath(import.meta.url)); ; d = dirname(d)) {
    const candidate = join(d, 'src', 'lab', 'senders');
    if (existsSync(join(candidate, 'dtlab.py'))) return (dir = candidate);
    if (dirname(d) === d) break;
  }
  throw new DroptraceError('E_LAB_SENDERS', 'build', 'lab: the python senders (src/lab/senders/*.py) are missing from this install', { hint: 'reinstall droptrace' });
}

export function senderPath(name: SenderName): string {
  return join(sendersDir(), `${name}.py`);
}

/**
 * The command line running a sender: -u so its lines arrive when printed, -B so importing
 * dtlab.py writes no __pycache__ into the package.
 */
export function senderCommand(name: SenderName, args: readonly (string | number)[]): [string, string[]] {
  return [PYTHON, ['-B', '-u', senderPath(name), ...args.map(String)]];
}

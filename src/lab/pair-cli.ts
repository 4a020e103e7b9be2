#!/usr/bin/env node
/**
 * The namespace pair (pair.ts) for shell scripts (scripts/soak.sh):
 *
 *   node dist/src/lab/pair-cli.js up [--names A B] [--prefix P] [--devs VA VB] [--subnet N]
 *        [--net4 198.18|198.19] [--no-ipv6] [--neighbours both|a|none] [--drop udp|tcp:PORT[-LAST]]...
 *     builds the pair and prints it as one JSON line (names, devices, addresses, netns inodes)
 *   node dist/src/lab/pair-cli.js down NS...
 *     kills what runs in the namespaces and deletes them; quiet about ones already gone
 *
 * Bad input or a failed build: one `pair: ...` line on stderr, exit 2 or 1.
 */
import { DroptraceError } from '../errors.js';
import { createPair, destroyNamespaces } from './pair.js';
import type { DropRule, PairOptions } from './pair.js';

function usage(msg: string): never {
  throw new DroptraceError('E_USAGE', 'usage', `${msg} (usage: pair-cli.js up [options] | down NS...)`);
}

function parseDrop(v: string | undefined): DropRule {
  const m = /^(udp|tcp):(\d+)(?:-(\d+))?$/.exec(v ?? '');
  if (!m) usage(`--drop wants udp|tcp:PORT or udp|tcp:FIRST-LAST, got "${v ?? ''}"`);
  const first = Number(m[2]);
  const last = m[3] === undefined ? first : Number(m[3]);
  if (first < 1 || last > 65535 || last < first) usage(`--drop ports must be 1..65535, first <= last: "${v}"`);
  return { proto: m[1] as 'udp' | 'tcp', dport: last === first ? first : [first, last] };
}

export function parseUp(argv: string[]): PairOptions {
  const o: PairOptions = {};
  const drop: DropRule[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const two = (): [string, string] => {
      const x = argv[++i];
      const y = argv[++i];
      if (x === undefined || y === undefined) usage(`${a} wants two names`);
      return [x, y];
    };
    if (a === '--names') o.names = two();
    else if (a === '--devs') o.devs = two();
    else if (a === '--prefix') o.prefix = argv[++i] ?? usage('--prefix wants a value');
    else if (a === '--subnet') {
      const v = argv[++i] ?? '';
      if (!/^\d{1,3}$/.test(v) || Number(v) > 255) usage(`--subnet wants 0..255, got "${v}"`);
      o.subnet = Number(v);
    } else if (a === '--net4') {
      const v = argv[++i];
      if (v !== '198.18' && v !== '198.19') usage(`--net4 wants 198.18 or 198.19, got "${v ?? ''}"`);
      o.net4 = v;
    } else if (a === '--no-ipv6') o.ipv6 = false;
    else if (a === '--neighbours') {
      const v = argv[++i];
      if (v !== 'both' && v !== 'a' && v !== 'none') usage(`--neighbours wants both, a or none, got "${v ?? ''}"`);
      o.neighbours = v;
    } else if (a === '--drop') drop.push(parseDrop(argv[++i]));
    else usage(`unknown argument "${a}"`);
  }
  if (drop.length) o.drop = drop;
  return o;
}

function main(argv: string[]): void {
  const [cmd, ...rest] = argv;
  if (cmd === 'up') {
    const { destroy: _d, ...p } = createPair(parseUp(rest));
    process.stdout.write(`${JSON.stringify(p)}\n`);
  } else if (cmd === 'down') {
    if (!rest.length) usage('down wants namespace names');
    destroyNamespaces(rest);
  } else usage(cmd === undefined ? 'up or down?' : `unknown command "${cmd}"`);
}

try {
  main(process.argv.slice(2));
} catch (e) {
  const err = e instanceof DroptraceError ? e : new DroptraceError('E_PAIR', 'runtime', (e as Error).message);
  process.stderr.write(`pair: ${err.line()}\n`);
  process.exit(err.exitCode);
}

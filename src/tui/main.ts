#!/usr/bin/env node
/**
 * Stand-alone entry for `top` until the CLI wires it in (tests and captures run this):
 *   node dist/src/tui/main.js [--replay FILE [--speed N]] [--group-by G] [--sort S] [--filter F]
 *                             [--netns INODE] [--counters-interval S] [--pods FILE] [--no-pod-discovery]
 * Same error contract as the CLI: one line `droptrace: ...`, exit 2 for bad input, 1 otherwise.
 */
import { parseArgs } from 'node:util';
import { DroptraceError } from '../errors.js';
import { runTop, TOP_LIVE_DEFAULTS } from './command.js';
import type { TopOptions } from './command.js';
import type { GroupBy, SortBy } from './store.js';

function number(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new DroptraceError('E_USAGE', 'usage', `${flag} wants a number, got "${v}"`);
  return n;
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        replay: { type: 'string' },
        speed: { type: 'string' },
        'group-by': { type: 'string' },
        sort: { type: 'string' },
        filter: { type: 'string' },
        netns: { type: 'string' },
        'counters-interval': { type: 'string' },
        pods: { type: 'string' },
        'no-pod-discovery': { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (e) {
    throw new DroptraceError('E_USAGE', 'usage', (e as Error).message.split('\n')[0]!.toLowerCase());
  }
  const speed = number('--speed', values.speed);
  const netns = number('--netns', values.netns);
  const counters = number('--counters-interval', values['counters-interval']);
  const pods = {
    ...(values.pods !== undefined ? { podsFile: values.pods } : {}),
    ...(values['no-pod-discovery'] === true ? { discovery: false } : {}),
  };
  const live =
    netns !== undefined || counters !== undefined || Object.keys(pods).length > 0
      ? {
          ...TOP_LIVE_DEFAULTS,
          ...(netns !== undefined ? { netns } : {}),
          ...(counters !== undefined ? { countersIntervalMs: counters * 1000 } : {}),
          pods,
        }
      : undefined;
  const o: TopOptions = {
    ...(values.replay !== undefined ? { replay: values.replay } : {}),
    ...(speed !== undefined ? { speed } : {}),
    ...(values['group-by'] !== undefined ? { groupBy: values['group-by'] as GroupBy } : {}),
    ...(values.sort !== undefined ? { sort: values.sort as SortBy } : {}),
    ...(values.filter !== undefined ? { filter: values.filter } : {}),
    ...(live ? { live } : {}),
  };
  return runTop(o);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof DroptraceError) {
      process.stderr.write(`droptrace: ${e.line()}\n`);
      process.exitCode = e.exitCode;
      return;
    }
    process.stderr.write(`droptrace: internal error: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]} (set DROPTRACE_DEBUG=1 for details)\n`);
    if (process.env.DROPTRACE_DEBUG) console.error(e);
    process.exitCode = 1;
  },
);

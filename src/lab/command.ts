/**
 * `droptrace lab --list` and `droptrace lab <scenario> [--duration S] [--family 4|6] [--json]`.
 * Progress goes to stderr; with --json, stdout gets exactly one line: the LabResult. Errors
 * are thrown as DroptraceError, which the CLI prints as one `droptrace: ...` line.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { DroptraceError } from '../errors.js';
import { findScenario, scenarios } from './index.js';
import type { LabOptions } from './types.js';

interface LabFlags {
  list?: boolean;
  duration?: number;
  family?: 4 | 6;
  json?: boolean;
}

function parseDuration(v: string): number {
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || !Number.isFinite(n) || n > 600) throw new InvalidArgumentError(`--duration wants seconds between 0 and 600, got "${v}"`);
  return n;
}

function parseFamily(v: string): 4 | 6 {
  if (v === '4' || v === '6') return Number(v) as 4 | 6;
  throw new InvalidArgumentError(`--family wants 4 or 6, got "${v}"`);
}

export async function labAction(name: string | undefined, flags: LabFlags): Promise<void> {
  if (flags.list || name === undefined) {
    const width = Math.max(...scenarios.map((s) => s.name.length));
    for (const s of scenarios) process.stdout.write(`${s.name.padEnd(width)}  ${s.summary}\n`);
    return;
  }
  const scenario = findScenario(name);
  if (!scenario) throw new DroptraceError('E_LAB_SCENARIO', 'usage', `unknown lab scenario "${name}"`, { hint: 'try: droptrace lab --list' });
  const opts: LabOptions = {
    log: (line) => process.stderr.write(`lab: ${line}\n`),
    ...(flags.duration !== undefined ? { durationMs: Math.round(flags.duration * 1000) } : {}),
    ...(flags.family !== undefined ? { family: flags.family } : {}),
  };
  const result = await scenario.run(opts);
  for (const e of result.expect) {
    const n = e.count !== undefined ? `${e.count}` : `>= ${e.atLeast ?? 1}`;
    process.stderr.write(`lab: expect ${n} x ${e.kind} (${e.reason}${e.location ? ` @ ${e.location}` : ''}) in netns ${e.netns}\n`);
  }
  for (const note of result.notes) process.stderr.write(`lab: note: ${note}\n`);
  if (flags.json) process.stdout.write(`${JSON.stringify(result)}\n`);
}

export function labCommand(): Command {
  return new Command('lab')
    .description('reproduce a kernel drop scenario in throw-away network namespaces (root)')
    .argument('[scenario]', 'scenario to run (see --list)')
    .option('--list', 'list the scenarios')
    .addOption(new Option('--duration <seconds>', 'how long the provoked state lasts: lowered limits (at most 1.75 s) and namespaces (for late drops)').argParser(parseDuration))
    .addOption(new Option('--family <4|6>', 'IP family, where a scenario has both (neigh-overflow: 6 by default)').argParser(parseFamily))
    .option('--json', 'print the result as one JSON line on stdout')
    .action((name: string | undefined, flags: LabFlags) => labAction(name, flags));
}

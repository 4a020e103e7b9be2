/** The bench's flags, its help text and the names of its runs. */
import { cpus } from 'node:os';

export const HELP = `\`npm run bench\` (not a test): what droptrace costs a node under a drop flood, measured against
nothing attached and against a bpftrace count-only baseline, in one run on this machine.

A UDP flood (bench/flood.c, compiled here into a temporary directory) runs for a fixed time
from a sender namespace into an \`iptables -j DROP\` rule in a receiver namespace (two throw-away
namespaces \`dtbench-<id>-a/b\` joined by a veth, 198.18.0.0/15 only: nothing leaves the
machine). Runs, back to back:
  1 nothing attached   2 bpftrace count-only   3 droptrace stream (NDJSON to a file)
  4 droptrace with its TUI store, no terminal (bench/tui-store-run.ts)
  5 droptrace stream with --detail-limit 0 (every drop a detail event: the ring buffer and
    userspace under full load, where lost events are not zero and must match the stats line)
  6 nothing attached, many flows: the flood spread over --many-flows destination ports
    (16384), each a flow and a key of its own: the shape of an incident (conntrack full
    drops every new connection); slower per datagram (unconnected sends), so it is run 7's
    own baseline
  7 droptrace stream, many flows: every key is new or under its detail limit, so the
    per-CPU detail budget (--detail-budget) is what bounds the detail events
  8 nothing attached, conntrack in use in the receiver (a state match before the DROP rule:
    each datagram gets a conntrack entry that dies unconfirmed with it); run 9's baseline
  9 droptrace stream, conntrack in use: the drop program reads conntrack's counters on every
    NETFILTER_DROP there (runs 3-7 flood a namespace without conntrack, which skips them)
 10 run 7 with --detail-budget 0 (no global budget: nearly every drop of the many flows is a
    detail event through the ring buffer and userspace); also against run 6
Each run floods twice: with kernel.bpf_stats_enabled=1 (BPF ns/event) and with it 0, as on
a node (drops/s, slowdown, added ns/drop).
then the userspace-only benchmark (bench/userspace.ts). Prints a table, the targets of
issue 6 (met or not; the slowdown judged on the median of the repetitions, each against its
own baseline run), and last one JSON line with every figure.

Usage: node dist/bench/run.js [--seconds 4] [--repeat 5] [--cpu 0] [--flows 1000000]
                              [--many-flows 16384] [--runs 1,2,3,4,5,6,7,8,9,10] [--no-userspace]
                              [--no-setup] [--keep]
--flows: distinct flows of the userspace RSS measurement; --many-flows: of runs 6, 7 and 10.
Needs root. Runs scripts/setup.sh first (as npm test does; --no-setup skips it). Leaves
nothing behind: namespaces deleted and kernel.bpf_stats_enabled restored in every case
(error, Ctrl-C, SIGTERM). Tables for docs/performance.md:
  npm run bench | tail -1 | node dist/bench/report-md.js`;

/** runs 6, 7 and 10 flood ports MANY_BASE_PORT.. (one flow each), dropped by a rule of their own */
export const MANY_BASE_PORT = 20000;
export const RUN_NAMES: Record<number, string> = {
  1: 'nothing attached',
  2: 'bpftrace count-only',
  3: 'droptrace stream',
  4: 'droptrace TUI store',
  5: 'stream, no rate limit',
  6: 'nothing, many flows',
  7: 'stream, many flows',
  8: 'nothing, conntrack on',
  9: 'stream, conntrack on',
  10: 'many flows, no budget',
};
/** runs of droptrace, and the run of nothing attached each one is compared with */
export const DROPTRACE_RUNS = [3, 4, 5, 7, 9, 10];
export const baselineOf = (run: number): number => (run === 10 ? 6 : run >= 8 ? 8 : run >= 6 ? 6 : 1);

export interface BenchOptions {
  seconds: number;
  repeat: number;
  cpu: number;
  flows: number;
  manyFlows: number;
  runs: number[];
  userspace: boolean;
  setup: boolean;
  keep: boolean;
  port: number;
}

type Check = ((n: number) => boolean) & { what: string };
const check = (ok: (n: number) => boolean, what: string): Check => Object.assign(ok, { what });

export function usage(msg: string): never {
  process.stderr.write(`bench: ${msg} (see node dist/bench/run.js --help)\n`);
  process.exit(2);
}

export function parseArgs(argv: string[]): BenchOptions {
  const o: BenchOptions = { seconds: 4, repeat: 5, cpu: 0, flows: 1_000_000, manyFlows: 16384, runs: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], userspace: true, setup: true, keep: false, port: 5301 };
  const num = (flag: string, v: string | undefined, ok: Check): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || !ok(n)) usage(`${flag} wants ${ok.what}, got "${v ?? ''}"`);
    return n;
  };
  const pos = check((n) => n > 0 && n <= 600, 'a number of seconds from 0 to 600');
  const reps = check((n) => Number.isInteger(n) && n >= 1 && n <= 10, 'a whole number from 1 to 10');
  const cpu = check((n) => Number.isInteger(n) && n >= -1 && n < cpus().length, `-1 (no pinning) or a CPU from 0 to ${cpus().length - 1}`);
  const flows = check((n) => Number.isInteger(n) && n >= 1000 && n <= 10_000_000, 'a whole number from 1000 to 10000000');
  const port = check((n) => Number.isInteger(n) && n >= 1 && n <= 65535, 'a UDP port');
  const many = check((n) => Number.isInteger(n) && n >= 2 && n <= 65536 - MANY_BASE_PORT, `a whole number from 2 to ${65536 - MANY_BASE_PORT}`);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--seconds') o.seconds = num(a, argv[++i], pos);
    else if (a === '--repeat') o.repeat = num(a, argv[++i], reps);
    else if (a === '--cpu') o.cpu = num(a, argv[++i], cpu);
    else if (a === '--flows') o.flows = num(a, argv[++i], flows);
    else if (a === '--port') o.port = num(a, argv[++i], port);
    else if (a === '--many-flows') o.manyFlows = num(a, argv[++i], many);
    else if (a === '--runs') {
      const v = argv[++i] ?? '';
      o.runs = v.split(',').map(Number);
      if (!o.runs.length || o.runs.some((r) => !RUN_NAMES[r])) usage(`--runs wants a list of 1..10 such as 1,3, got "${v}"`);
      o.runs = [...new Set(o.runs)].sort((a, b) => a - b);
    } else if (a === '--no-userspace') o.userspace = false;
    else if (a === '--no-setup') o.setup = false;
    else if (a === '--keep') o.keep = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write(HELP + '\n');
      process.exit(0);
    } else usage(`unknown argument "${a}"`);
  }
  return o;
}

#!/usr/bin/env node
/**
 * droptrace command line. Every failure a user can cause or meet ends in one line on stderr
 * and a non-zero exit: 2 for bad input, 1 for everything else. Never a stack trace.
 */
import { release } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { effectiveCaps } from './host/caps.js';
import { formatCheck, runCheck } from './check.js';
import { DroptraceError } from './errors.js';
import { DEFAULT_DETAIL_BUDGET, liveStream, VERSION } from './pipeline/live.js';
import type { LiveOptions } from './pipeline/live.js';
import type { Sink } from './sinks/sink.js';
import { fanOut } from './sinks/sink.js';
import { backlogMiB, count, mebibytes, metricsAddress, netnsInode, nicList, pcapMebibytes, seconds, secondsOrZero, speed, stackPerKey } from './cli/flags.js';
import { fdOut, NdjsonSink } from './sinks/ndjson.js';
import { labCommand } from './lab/command.js';
// --metrics (prom-client) and top (ink, react, yoga) are imported when used: loaded up front they
// are ~60 MB of RSS that `stream` without --metrics never needs (docs/operations.md, a quiet node).
import { checkNodeName, defaultNodeName } from './sinks/metrics-server.js';
import { TOP_BACKLOG_MIB } from './tui/budget.js';
import { GROUP_BYS, SORTS } from './tui/store.js';
import type { GroupBy, SortBy } from './tui/store.js';
import { loadNative, MAX_STACK_PER_KEY } from './native/binding.js';
import type { Hook } from './native/binding.js';
import type { NicSelection } from './host/index.js';
import { parseDuration } from './fleet/options.js';
import { FilterGate, FILTER_HELP, filterOption } from './pipeline/filter/index.js';

function pcapOptions(path: string, flags: { pcapMax?: number; pcapPayload?: boolean }): NonNullable<LiveOptions['pcap']> {
  return {
    path,
    ...(flags.pcapMax !== undefined ? { maxBytes: flags.pcapMax * 1024 * 1024 } : {}),
    payload: flags.pcapPayload === true,
    warn: (line: string) => process.stderr.write(`droptrace: ${line}\n`),
  };
}

interface StreamFlags {
  pods?: string;
  kubeconfig?: string;
  kubeAllowHttp?: boolean;
  node?: string;
  podRescan: number;
  podDiscovery: boolean;
  pcap?: string;
  pcapMax?: number;
  pcapPayload?: boolean;
  detailLimit: number;
  detailBudget: number;
  countersInterval: number;
  nics: NicSelection;
  duration?: number;
  netns?: number;
  statsInterval: number;
  ringSize: number;
  backlog: number;
  hook?: Hook;
  rules: boolean;
  stack?: boolean;
  stackPerKey?: number;
  dns?: boolean;
  dnsTimeout?: number;
}

/** --stack-per-key's default: enough to see whether a key's drops take one path or several */
const DEFAULT_STACK_PER_KEY = 4;

function liveFrom(flags: StreamFlags): LiveOptions {
  if (!flags.pcap && (flags.pcapMax !== undefined || flags.pcapPayload)) {
    throw new DroptraceError('E_USAGE', 'usage', `${flags.pcapMax !== undefined ? '--pcap-max' : '--pcap-payload'} needs --pcap <file>`);
  }
  if (flags.stackPerKey !== undefined && !flags.stack) throw new DroptraceError('E_USAGE', 'usage', '--stack-per-key needs --stack');
  return {
    ...(flags.duration !== undefined ? { durationMs: flags.duration * 1000 } : {}),
    ...(flags.netns !== undefined ? { netns: flags.netns } : {}),
    ...(flags.hook ? { hook: flags.hook } : {}),
    ...(flags.rules ? {} : { rules: false }),
    ...(flags.dns || flags.dnsTimeout !== undefined ? { dns: flags.dnsTimeout !== undefined ? { timeoutMs: flags.dnsTimeout * 1000 } : {} } : {}),
    statsIntervalMs: flags.statsInterval * 1000,
    ringBytes: flags.ringSize * 1024 * 1024,
    backlogBytes: flags.backlog * 1024 * 1024,
    countersIntervalMs: flags.countersInterval * 1000,
    nics: flags.nics,
    keyBurst: flags.detailLimit,
    detailBudget: flags.detailBudget,
    ...(flags.stack ? { stackPerKey: flags.stackPerKey ?? DEFAULT_STACK_PER_KEY } : {}),
    ...(flags.pcap ? { pcap: pcapOptions(flags.pcap, flags) } : {}),
    pods: {
      ...(flags.pods !== undefined ? { podsFile: flags.pods } : {}),
      ...(flags.kubeconfig !== undefined ? { kubeconfig: flags.kubeconfig } : {}),
      ...(flags.kubeAllowHttp ? { kubeAllowHttp: true } : {}),
      ...(flags.node !== undefined ? { node: flags.node } : {}),
      discovery: flags.podDiscovery,
      rescanMs: flags.podRescan * 1000,
      warn: (line: string) => process.stderr.write(`droptrace: ${line}\n`),
    },
  };
}

interface TopFlags extends StreamFlags {
  replay?: string;
  speed?: number;
  groupBy?: GroupBy;
  sort?: SortBy;
  filter?: string;
}

async function top(flags: TopFlags, cmd: Command): Promise<number> {
  // live options given with --replay are a mistake the user should hear about
  const liveGiven = cmd.options.some((o) => !['replay', 'speed', 'groupBy', 'sort', 'filter'].includes(o.attributeName()) && cmd.getOptionValueSource(o.attributeName()) === 'cli');
  filterOption(flags.filter);
  const { runTop } = await import('./tui/command.js');
  return runTop({
    ...(flags.replay !== undefined ? { replay: flags.replay } : {}),
    ...(flags.replay === undefined || liveGiven ? { live: liveFrom(flags) } : {}),
    ...(flags.speed !== undefined ? { speed: flags.speed } : {}),
    ...(flags.groupBy ? { groupBy: flags.groupBy } : {}),
    ...(flags.sort ? { sort: flags.sort } : {}),
    ...(flags.filter !== undefined ? { filter: flags.filter } : {}),
  });
}

interface FleetFlags {
  prometheus?: string;
  since?: number;
}

/**
 * `top --prometheus URL` and `stream --prometheus URL`: the fleet from Prometheus instead of this
 * node's kernel. Options of live tracing given with it are a mistake the user should hear about.
 */
async function fleet(mode: 'top' | 'stream', flags: FleetFlags, cmd: Command): Promise<number> {
  const { parsePrometheusUrl } = await import('./fleet/prom.js');
  const url = parsePrometheusUrl(flags.prometheus!);
  const live = cmd.options.find((o) => !['prometheus', 'since'].includes(o.attributeName()) && cmd.getOptionValueSource(o.attributeName()) === 'cli');
  if (live) throw new DroptraceError('E_USAGE', 'usage', `${live.long ?? live.flags} is about this node's own drops: it cannot be combined with --prometheus`);
  const sinceS = flags.since ?? 3600;
  if (mode === 'top') {
    const { runFleetTop } = await import('./tui/fleet/command.js');
    return runFleetTop({ url, sinceS });
  }
  const { fleetStream } = await import('./fleet/stream.js');
  const text: string[] = [];
  await fleetStream({ url, sinceS }, (line) => text.push(JSON.stringify(line) + '\n'));
  // a few lines, once: a closed stdout (EPIPE) ends the process through its handler below
  await new Promise((resolve) => process.stdout.write(text.join(''), resolve));
  return 0;
}

/** `--since` without `--prometheus` would be ignored: said instead. */
async function noSince(flags: FleetFlags): Promise<void> {
  if (flags.since !== undefined) throw new DroptraceError('E_USAGE', 'usage', '--since needs --prometheus (a node\'s own view starts now)');
}

function fleetOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--prometheus <url>', 'the whole fleet from this Prometheus server (it scrapes droptrace stream --metrics on every node) instead of this node'))
    .addOption(new Option('--since <duration>', 'with --prometheus: drops counted over this window, e.g. 30m, 1h, 2d (default 1h)').argParser(parseDuration('--since')));
}

interface StreamCommandFlags extends StreamFlags {
  metrics?: string;
  nodeName?: string;
  metricsPodLimit: number;
  filter?: string;
}

async function stream(flags: StreamCommandFlags): Promise<number> {
  const filter = filterOption(flags.filter);
  const m = flags.metrics !== undefined ? await import('./sinks/metrics.js') : null;
  // the node's name in the start line and the metrics' node label: --node-name, else the node
  // whose pods are watched (--node), else $NODE_NAME or the host name
  const node = flags.nodeName ?? (flags.node !== undefined ? checkNodeName(flags.node) : defaultNodeName());
  const metrics = m ? new m.DropMetrics({ podLimit: flags.metricsPodLimit, node }) : null;
  const health = m ? new m.StreamHealth() : null;
  // Bound before attaching: a port in use is one line and exit 1, with nothing traced yet.
  const server =
    m && metrics && health
      ? await m.startMetricsServer(flags.metrics!, metrics.registry, { health: () => health.get(), onRefused: () => metrics.scrapeRefused() })
      : null;
  const ac = new AbortController();
  // process.stdout is touched at load (its error handler below): fd 1, if a pipe, is non-blocking
  stdoutOwned = true;
  const out = new NdjsonSink(fdOut(1), undefined, (e) => {
    // A reader that went away (EPIPE) ends the stream cleanly; any other failure is said once.
    if (e.code !== 'EPIPE') {
      process.stderr.write(`droptrace: cannot write to stdout: ${e.code ?? e.message}\n`);
      process.exit(1);
    }
    ac.abort();
  });
  // metrics see every drop, also those a stalled reader costs the stream
  // --filter shapes the NDJSON only: metrics stay the node's exact totals (docs/ndjson.md)
  const sinks: Sink[] = [filter ? { write: new FilterGate(filter, (l) => out.write(l)).emit } : out];
  if (metrics) sinks.push({ write: (line) => metrics.observe(line.type === 'stats' ? out.withStdoutLoss(line) : line) });
  if (health) sinks.push({ write: (line) => health.observe(line) });
  const onSignal = () => ac.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  let code = 0;
  try {
    await liveStream({ ...liveFrom(flags), nodeName: node }, fanOut(sinks), ac.signal);
  } catch (e) {
    // the final stats line (if the stream got that far) is queued: it goes out below
    code = fail(e);
    health?.fail(e instanceof DroptraceError ? e.line() : 'internal error');
  } finally {
    // The handlers stay: a second Ctrl-C while the last lines are written must not kill it.
    await server?.close();
  }
  // A reader that stopped reading must not keep a finished droptrace alive. Lines go out whole
  // (src/sinks/ndjson.ts), so leaving now cuts none.
  if (!(await out.flush(FINAL_WRITE_MS))) {
    process.stderr.write(`droptrace: stdout is not being read: exiting with ${out.waitingLines} final line(s) unwritten\n`);
  }
  // Nothing is left to wait for (a host sample under way would hold the exit for seconds).
  process.exit(code);
}

/** how long the last lines may wait for a stalled reader (SIGTERM to exit: within 1 s) */
const FINAL_WRITE_MS = 500;

function check(json: boolean): number {
  const report = runCheck({ native: loadNative, caps: effectiveCaps(), kernel: release() });
  process.stdout.write((json ? JSON.stringify(report) : formatCheck(report)) + '\n');
  return report.ready ? 0 : 1;
}

/** The options of live tracing, shared by stream and top. */
function liveOptions(cmd: Command, statsDefault: number, backlogDefault = 64): Command {
  return cmd
    .addOption(new Option('--netns <inode>', 'only drops in this network namespace (inode number)').argParser(netnsInode))
    .addOption(new Option('--dns', 'the fate of every DNS query (UDP 53): {"type":"dns"} lines per client netns and resolver, answered, dropped on this node or unanswered, with a verdict when the loss is beyond this node'))
    .addOption(new Option('--dns-timeout <seconds>', 'a DNS query with no answer after this long is unanswered (implies --dns; default 5, the resolver\'s own)').argParser(seconds('--dns-timeout')))
    .addOption(
      new Option('--stats-interval <seconds>', 'how often a {"type":"stats"} line reports counts and losses')
        .argParser(seconds('--stats-interval'))
        .default(statsDefault),
    )
    .addOption(
      new Option('--counters-interval <seconds>', 'how often a {"type":"counters"} line reports neighbour/conntrack table fill and NIC counters (0: never)')
        .argParser(secondsOrZero('--counters-interval'))
        .default(5),
    )
    .addOption(
      new Option('--nics <which>', 'NICs whose ethtool -S counters (incl. cloud allowance counters) go into counters lines: all, physical, none or eth0,eth1')
        .argParser(nicList)
        .default('physical'),
    )
    .addOption(
      new Option(
        '--detail-limit <n>',
        'detail events per key (reason, netns, device, flow) per second; past it drops are only counted, then folded into one line with their count (0: no limit)',
      )
        .argParser(count('--detail-limit'))
        .default(100),
    )
    .addOption(
      new Option(
        '--detail-budget <n>',
        'detail events per CPU per second over all keys, on top of --detail-limit: a flood of many flows (each a key) sends at most this many (a new key\'s first event up to twice it); past it drops are only counted and folded like the rest (0: no budget; --detail-limit 0 turns both off)',
      )
        .argParser(count('--detail-budget'))
        .default(DEFAULT_DETAIL_BUDGET),
    )
    .addOption(new Option('--pods <file>', 'static pod list (JSON or YAML: namespace, name, uid, ips, netns) for labs and hosts without Kubernetes'))
    .addOption(new Option('--kubeconfig <file>', 'watch this node\'s pods through the Kubernetes API (in a pod the service account is used by itself)'))
    .addOption(new Option('--kube-allow-http', 'accept a kubeconfig server on plain http:// (the credentials go in clear: only for a local proxy)'))
    .addOption(new Option('--node <name>', 'whose pods to watch (default $NODE_NAME, else the host name)'))
    .addOption(new Option('--pod-rescan <seconds>', 'how often /proc and /var/log/pods are scanned for pods').argParser(seconds('--pod-rescan')).default(10))
    .addOption(new Option('--no-pod-discovery', 'do not look for pods in /proc and /var/log/pods'))
    .addOption(
      new Option(
        '--stack',
        `add the kernel stack (symbolized, innermost first, up to 16 frames) to the first --stack-per-key drop lines of each key: where the location alone does not say which path dropped it (e.g. which netfilter hook); stats lines count the stacks taken and not taken`,
      ),
    )
    .addOption(
      new Option('--stack-per-key <n>', `with --stack: how many of each key's detail events carry a stack (default ${DEFAULT_STACK_PER_KEY})`).argParser(
        stackPerKey(MAX_STACK_PER_KEY),
      ),
    )
    .addOption(new Option('--no-rules', 'do not name the firewall rule of netfilter_rule drops (no nft/iptables-save runs in their netns)'))
    .addOption(
      new Option('--pcap <file>', 'also write every detail event\'s packet headers (IP, TCP/UDP/ICMP, the DNS question) to this new pcapng file (mode 0600; never over an existing file), the drop kind in each packet comment'),
    )
    .addOption(new Option('--pcap-max <MiB>', 'stop writing packets to the --pcap file once it reaches this size (said on stderr and in stats lines; the stream goes on)').argParser(pcapMebibytes))
    .addOption(new Option('--pcap-payload', 'keep the L4 payload in --pcap packets too (up to 192 bytes from the IP header: may hold HTTP headers, tokens)'))
    .addOption(new Option('--ring-size <MiB>', 'kernel ring buffer for detail events').argParser(mebibytes).default(8))
    .addOption(new Option('--backlog <MiB>', 'most detail events waiting for droptrace itself, in MiB; past it they are counted as lost and folded back').argParser(backlogMiB).default(backlogDefault))
    .addOption(new Option('--hook <hook>', 'force one way of attaching (default: the best available)').choices(['tp_btf/kfree_skb', 'tracepoint/skb/kfree_skb']));
}

function program(run: (p: Promise<number> | number) => void): Command {
  const p = new Command('droptrace')
    .description(
      'eBPF packet-drop tracer: every packet the kernel drops, classified (which mechanism), ' +
        'counted exactly and attributed to its flow, netns and pod.',
    )
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help for a command')
    .showSuggestionAfterError(true)
    // Set before subcommands are added: they inherit both.
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s.startsWith('error: ') ? `droptrace: ${s.slice(7)}` : s),
    })
    .addHelpText(
      'after',
      `
Examples:
  droptrace                                the full-screen view (same as droptrace top)
  droptrace top --replay incident.ndjson   replay a recorded stream on screen
  droptrace check                          can this machine trace drops? which probes, and why not
  droptrace lab --list                     reproducible drop scenarios in throw-away namespaces
  droptrace lab conntrack-full             ... run one while droptrace watches in another terminal
  droptrace stream                         NDJSON drop events on stdout until Ctrl-C
  droptrace stream --duration 10 | jq .    ten seconds of drops, pretty-printed
  droptrace stream --netns 4026532123      only drops in one network namespace
  droptrace stream --filter 'kind=netfilter_rule and port=5301'   only matching drop lines

Needs root (or CAP_BPF + CAP_PERFMON) and a kernel with BTF and drop reasons (5.17+).`,
    );

  const streamCmd = liveOptions(
    p.command('stream').description('write drop events as NDJSON to stdout (first line: {"type":"start"} once attached)'),
    10,
  )
    .addOption(new Option('-d, --duration <seconds>', 'stop by itself after this many seconds').argParser(seconds('--duration')))
    .addOption(
      new Option('--metrics <[addr:]port>', 'also serve Prometheus metrics on http://ADDR:PORT/metrics (address default 127.0.0.1; 0.0.0.0:9464 for every interface)').argParser(
        metricsAddress,
      ),
    )
    .addOption(
      new Option('--node-name <name>', 'this node\'s name in the start line and the node="..." label of every metric (default: --node, else $NODE_NAME, else the host name)').argParser(checkNodeName),
    )
    .addOption(new Option('--filter <expr>', 'write only the drop lines that match (the language below); the stats lines count the rest'))
    .addOption(
      new Option('--metrics-pod-limit <n>', 'pods with their own label values in droptrace_drops_total; further pods count as pod="_overflow"')
        .argParser(count('--metrics-pod-limit'))
        .default(500),
    )
    .addHelpText(
      'after',
      `
Lines: {"type":"start"} (probes attached; the ready signal), {"type":"drop"} per drop (count > 1
when repeats were folded), {"type":"stats"} every --stats-interval and once at the end with exact
kernel counts and every lost event. Fields: docs/ndjson.md; JSON Schema: schema/ndjson.schema.json.
With --prometheus URL: one {"type":"fleet_node"} line per node of the fleet (drops in --since by
kind and pod, drops/s, table fill, NIC allowances), most drops per second first, then exit.
${FILTER_HELP}`,
    );
  fleetOptions(streamCmd);
  streamCmd.action((flags: StreamCommandFlags & FleetFlags) => run(flags.prometheus !== undefined ? fleet('stream', flags, streamCmd) : noSince(flags).then(() => stream(flags))));

  const topCmd = liveOptions(
    p
      .command('top', { isDefault: true })
      .description('full-screen view of drops, tables and pods (the default command; keys: arrows, enter, g, s, /, p, c, ?, q)'),
    2,
    TOP_BACKLOG_MIB,
  )
    .addOption(new Option('--replay <file>', 'play a recorded NDJSON stream (droptrace stream > file) instead of tracing live'))
    .addOption(
      new Option('--speed <n>', 'replay pace: 1 as recorded, 10 ten times faster, 0 everything at once').argParser(speed),
    )
    .addOption(new Option('--group-by <key>', 'group drops by').choices([...GROUP_BYS]))
    .addOption(new Option('--sort <order>', 'sort groups by').choices([...SORTS]))
    .addOption(new Option('--filter <text>', 'start with this filter (the language of droptrace stream --filter: see droptrace stream --help)'));
  fleetOptions(topCmd);
  topCmd.action((flags: TopFlags & FleetFlags) => run(flags.prometheus !== undefined ? fleet('top', flags, topCmd) : noSince(flags).then(() => top(flags, topCmd))));

  // the lab is built on its own: give it the same error handling as the rest
  p.addCommand(labCommand().copyInheritedSettings(p));

  p.command('check')
    .description('test each probe for real here and report kernel features and permissions')
    .option('--json', 'print the report as one JSON object')
    .action((flags: { json?: boolean }) => run(check(flags.json === true)));

  return p;
}

function fail(e: unknown): number {
  if (e instanceof DroptraceError) {
    process.stderr.write(`droptrace: ${e.line()}\n`);
    return e.exitCode;
  }
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`droptrace: internal error: ${msg.split('\n')[0]} (set DROPTRACE_DEBUG=1 for details)\n`);
  if (process.env.DROPTRACE_DEBUG) console.error(e);
  return 1;
}

/** A closed stdout (EPIPE: `droptrace check | head`) just exits; `stream`'s sink handles its own. */
let stdoutOwned = false;
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (stdoutOwned) return;
  if (e.code !== 'EPIPE') {
    process.stderr.write(`droptrace: cannot write to stdout: ${e.code ?? e.message}\n`);
    process.exit(1);
  }
  process.exit(0);
});

async function main(argv: string[]): Promise<number> {
  let pending: Promise<number> | number = 0;
  const p = program((r) => {
    pending = r;
  });
  try {
    // `top` is the default command, so a mistyped command would reach it as an argument
    const first = argv[2];
    if (first !== undefined && first !== 'help' && !first.startsWith('-') && !p.commands.some((c) => c.name() === first || c.aliases().includes(first))) {
      throw new DroptraceError('E_USAGE', 'usage', `unknown command '${first}' (commands: ${p.commands.map((c) => c.name()).join(', ')})`);
    }
    await p.parseAsync(argv);
    return await pending;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version end here too, with exit code 0
      return e.exitCode === 0 ? 0 : 2;
    }
    return fail(e);
  }
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.exitCode = fail(e);
  },
);

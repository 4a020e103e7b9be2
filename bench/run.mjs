#!/usr/bin/env node
// `npm run bench` (not a test): what droptrace costs a node under a drop flood, measured against
// nothing attached and against a bpftrace count-only baseline, in one run on this machine.
//
// A UDP flood (bench/flood.c, compiled here into a temporary directory) runs for a fixed time
// from a sender namespace into an `iptables -j DROP` rule in a receiver namespace (two throw-away
// namespaces `dtbench-<id>-a/b` joined by a veth, 198.18.0.0/15 only: nothing leaves the
// machine). Runs, back to back:
//   1 nothing attached   2 bpftrace count-only   3 droptrace stream (NDJSON to a file)
//   4 droptrace with its TUI store, no terminal (bench/tui-store-run.mjs)
//   5 droptrace stream with --detail-limit 0 (every drop a detail event: the ring buffer and
//     userspace under full load, where lost events are not zero and must match the stats line)
//   6 nothing attached, many flows: the flood spread over --many-flows destination ports
//     (16384), each a flow and a key of its own: the shape of an incident (conntrack full
//     drops every new connection); slower per datagram (unconnected sends), so it is run 7's
//     own baseline
//   7 droptrace stream, many flows: every key is new or under its detail limit, so nearly
//     every drop is a detail event through the ring buffer and userspace
//   8 nothing attached, conntrack in use in the receiver (a state match before the DROP rule:
//     each datagram gets a conntrack entry that dies unconfirmed with it); run 9's baseline
//   9 droptrace stream, conntrack in use: the drop program reads conntrack's counters on every
//     NETFILTER_DROP there (runs 3-7 flood a namespace without conntrack, which skips them)
// Each run floods twice: with kernel.bpf_stats_enabled=1 (BPF ns/event) and with it 0, as on
// a node (drops/s, slowdown, added ns/drop).
// then the userspace-only benchmark (bench/userspace.mjs). Prints a table, the targets of
// issue 6 (met or not; the slowdown judged on the median of the repetitions, each against its
// own baseline run), and last one JSON line with every figure.
//
// Usage: node bench/run.mjs [--seconds 4] [--repeat 5] [--cpu 0] [--flows 1000000]
//                           [--many-flows 16384] [--runs 1,2,3,4,5,6,7,8,9] [--no-userspace]
//                           [--no-setup] [--keep]
// --flows: distinct flows of the userspace RSS measurement; --many-flows: of runs 6 and 7.
// Needs root. Runs scripts/setup.sh first (as npm test does; --no-setup skips it). Leaves
// nothing behind: namespaces deleted and kernel.bpf_stats_enabled restored in every case
// (error, Ctrl-C, SIGTERM). Tables for docs/performance.md:
//   npm run bench | tail -1 | node bench/report-md.mjs
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const CLK_TCK = 100; // USER_HZ: /proc/<pid>/stat times are in 1/100 s on Linux
const BPF_STATS = '/proc/sys/kernel/bpf_stats_enabled';
const KFREE_FORMAT = '/sys/kernel/tracing/events/skb/kfree_skb/format';
const BPFTRACE_PROGRAM = 'tracepoint:skb:kfree_skb { @[args->reason] = count(); }';
/** runs 6 and 7 flood ports MANY_BASE_PORT.. (one flow each), dropped by a rule of their own */
const MANY_BASE_PORT = 20000;
const RUN_NAMES = {
  1: 'nothing attached',
  2: 'bpftrace count-only',
  3: 'droptrace stream',
  4: 'droptrace TUI store',
  5: 'stream, no rate limit',
  6: 'nothing, many flows',
  7: 'stream, many flows',
  8: 'nothing, conntrack on',
  9: 'stream, conntrack on',
};
/** runs of droptrace, and the run of nothing attached each one is compared with */
const DROPTRACE_RUNS = [3, 4, 5, 7, 9];
const baselineOf = (run) => (run >= 8 ? 8 : run >= 6 ? 6 : 1);
/** runs 8 and 9: this rule, first in the receiver's INPUT chain, puts conntrack to work there */
const CONNTRACK_RULE = ['INPUT', '-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP'];

// ---------------------------------------------------------------- options

function parseArgs(argv) {
  const o = { seconds: 4, repeat: 5, cpu: 0, flows: 1_000_000, manyFlows: 16384, runs: [1, 2, 3, 4, 5, 6, 7, 8, 9], userspace: true, setup: true, keep: false, port: 5301 };
  const num = (flag, v, ok) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || !ok(n)) usage(`${flag} wants ${ok.what}, got "${v ?? ''}"`);
    return n;
  };
  const pos = Object.assign((n) => n > 0 && n <= 600, { what: 'a number of seconds from 0 to 600' });
  const reps = Object.assign((n) => Number.isInteger(n) && n >= 1 && n <= 10, { what: 'a whole number from 1 to 10' });
  const cpu = Object.assign((n) => Number.isInteger(n) && n >= -1 && n < cpus().length, { what: `-1 (no pinning) or a CPU from 0 to ${cpus().length - 1}` });
  const flows = Object.assign((n) => Number.isInteger(n) && n >= 1000 && n <= 10_000_000, { what: 'a whole number from 1000 to 10000000' });
  const port = Object.assign((n) => Number.isInteger(n) && n >= 1 && n <= 65535, { what: 'a UDP port' });
  const many = Object.assign((n) => Number.isInteger(n) && n >= 2 && n <= 65536 - MANY_BASE_PORT, { what: `a whole number from 2 to ${65536 - MANY_BASE_PORT}` });
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
      if (!o.runs.length || o.runs.some((r) => !RUN_NAMES[r])) usage(`--runs wants a list of 1..9 such as 1,3, got "${v}"`);
      o.runs = [...new Set(o.runs)].sort();
    } else if (a === '--no-userspace') o.userspace = false;
    else if (a === '--no-setup') o.setup = false;
    else if (a === '--keep') o.keep = true;
    else if (a === '-h' || a === '--help') {
      // the comment block at the top of this file
      const head = readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1);
      const end = head.findIndex((l) => !l.startsWith('//'));
      process.stdout.write(head.slice(0, end).map((l) => l.slice(3)).join('\n') + '\n');
      process.exit(0);
    } else usage(`unknown argument "${a}"`);
  }
  return o;
}

function usage(msg) {
  process.stderr.write(`bench: ${msg} (see node bench/run.mjs --help)\n`);
  process.exit(2);
}

const say = (s) => process.stderr.write(`bench: ${s}\n`);

// ---------------------------------------------------------------- small helpers

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}
const inNs = (ns, cmd, args) => sh('ip', ['netns', 'exec', ns, cmd, ...args]);
const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } }).status === 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x, d = 1) => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

/** utime + stime of a process, in seconds. */
function procCpu(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields after "(comm) ": state is f[0]; utime is field 14 of the full line → f[11]
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

function procStatus(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** busy and total jiffies of all CPUs (/proc/stat). */
function systemCpu() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = f[3] + f[4];
  return { busy: total - idle, total };
}

/** ids of the BPF programs a process holds (its prog and link fds: fdinfo `prog_id:`). */
function progIdsOf(pid) {
  const ids = new Set();
  let fds = [];
  try {
    fds = readdirSync(`/proc/${pid}/fdinfo`);
  } catch {
    return ids;
  }
  for (const fd of fds) {
    try {
      const m = /^prog_id:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      // fd closed meanwhile
    }
  }
  return ids;
}

/** Every loaded BPF program with its run statistics, by id. */
function bpfPrograms() {
  const out = new Map();
  for (const p of JSON.parse(sh('bpftool', ['prog', 'show', '--json']))) {
    out.set(p.id, { id: p.id, name: p.name ?? '', type: p.type, runCnt: p.run_cnt ?? 0, runTimeNs: p.run_time_ns ?? 0 });
  }
  return out;
}

/** `SKB_DROP_REASON_NETFILTER_DROP`'s number on this kernel, from the tracepoint's format. */
function netfilterDropNumber() {
  const m = /\{\s*(\d+),\s*"NETFILTER_DROP"\s*\}/.exec(readFileSync(KFREE_FORMAT, 'utf8'));
  if (!m) throw new Error(`no NETFILTER_DROP in ${KFREE_FORMAT}`);
  return Number(m[1]);
}

function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  let bpftrace = null;
  try {
    bpftrace = sh('bpftrace', ['--version']).trim();
  } catch {
    // reported as missing
  }
  return {
    nproc: cpus().length,
    cpu_model: model,
    kernel: release(),
    node: process.version,
    bpftrace,
    memory_gb: round(Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1048576, 1),
    loadavg_1m_at_start: round(loadavg()[0], 2),
  };
}

// ---------------------------------------------------------------- cleanup (idempotent, sync)

const state = { tmp: null, nsA: null, nsB: null, statsPrev: null, children: new Set(), keep: false };

/** Kills our children, deletes the namespaces, restores kernel.bpf_stats_enabled; each once. */
function cleanup() {
  for (const c of state.children) {
    try {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const k of ['nsA', 'nsB']) {
    if (state[k]) spawnSync('ip', ['netns', 'del', state[k]], { stdio: 'ignore' });
    state[k] = null;
  }
  if (state.statsPrev !== null) {
    try {
      writeFileSync(BPF_STATS, state.statsPrev);
    } catch (e) {
      say(`could not restore kernel.bpf_stats_enabled to ${state.statsPrev.trim()}: ${e.message}`);
    }
    state.statsPrev = null;
  }
  if (state.tmp && !state.keep) rmSync(state.tmp, { recursive: true, force: true });
  else if (state.tmp) say(`kept ${state.tmp}`);
  state.tmp = null;
}

process.on('exit', cleanup);
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(s, () => {
    say(`${s}: cleaning up`);
    cleanup();
    process.exit(130);
  });
}

function track(child) {
  state.children.add(child);
  child.on('exit', () => state.children.delete(child));
  return child;
}

function exited(child) {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) res({ code: child.exitCode, signal: child.signalCode });
    else child.on('exit', (code, signal) => res({ code, signal }));
  });
}

async function stopChild(child, what, timeoutMs = 30_000) {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  const t = setTimeout(() => {
    say(`${what} did not stop within ${timeoutMs / 1000} s after SIGINT: killing it`);
    child.kill('SIGKILL');
  }, timeoutMs);
  const r = await exited(child);
  clearTimeout(t);
  return r;
}

// ---------------------------------------------------------------- the namespaces and the flood

function makeNamespaces(port, manyFlows) {
  const id = randomBytes(3).toString('hex');
  const n = 100 + (randomBytes(1)[0] % 100);
  const a = `dtbench-${id}-a`;
  const b = `dtbench-${id}-b`;
  const vethA = `dtba${id}`;
  const vethB = `dtbb${id}`;
  const ipA = `198.18.${n}.1`;
  const ipB = `198.18.${n}.2`;
  sh('ip', ['netns', 'add', a]);
  state.nsA = a;
  sh('ip', ['netns', 'add', b]);
  state.nsB = b;
  sh('ip', ['link', 'add', vethA, 'netns', a, 'type', 'veth', 'peer', 'name', vethB, 'netns', b]);
  for (const [ns, dev, ip] of [
    [a, vethA, ipA],
    [b, vethB, ipB],
  ]) {
    // no IPv6: no MLD/ND chatter counted as drops in the receiver next to the flood
    inNs(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', dev]);
    sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
  }
  // a permanent neighbour entry: no ARP, no neighbour-queue drops at the start of a run
  const mac = JSON.parse(sh('ip', ['-n', b, '-j', 'link', 'show', vethB]))[0].address;
  sh('ip', ['-n', a, 'neigh', 'replace', ipB, 'lladdr', mac, 'dev', vethA, 'nud', 'permanent']);
  inNs(b, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', String(port), '-j', 'DROP']);
  inNs(b, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', `${MANY_BASE_PORT}:${MANY_BASE_PORT + manyFlows - 1}`, '-j', 'DROP']);
  return { a, b, ipA, ipB, vethA, vethB, inode: statSync(`/run/netns/${b}`).ino };
}

/** Packets the DROP rule of a port (or of the many-flows port range) matched since the last zeroing (exact). */
function ruleCount(ns, port, manyFlows = 1) {
  const out = inNs(ns, 'iptables', ['-L', 'INPUT', '-v', '-x', '-n']);
  const match = manyFlows > 1 ? `dpts:${port}:${port + manyFlows - 1}` : `dpt:${port}`;
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[2] === 'DROP' && new RegExp(`${match}(\\s|$)`).test(line)) return Number(f[0]);
  }
  throw new Error(`no DROP rule for udp ${match} in ${ns}:\n${out}`);
}

function compileFlood(dir) {
  const bin = join(dir, 'flood');
  const r = spawnSync('cc', ['-O2', '-Wall', '-o', bin, join(ROOT, 'bench', 'flood.c')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cc bench/flood.c failed:\n${r.stderr}`);
  return bin;
}

async function flood(o, ns, bin, seconds, flows = 1) {
  const port = flows > 1 ? MANY_BASE_PORT : o.port;
  const child = track(spawn('ip', ['netns', 'exec', ns.a, bin, ns.ipB, String(port), String(seconds), String(o.cpu), String(flows)], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const r = await exited(child);
  if (r.code !== 0) throw new Error(`flood exited with ${r.code ?? r.signal}: ${err.trim()}`);
  return JSON.parse(out.trim().split('\n').pop());
}

// ---------------------------------------------------------------- tracers

/** Output file of a droptrace process: the lines, counted (drop lines summed by kind). */
function readNdjson(file) {
  const r = { lines: 0, bytes: statSync(file).size, dropLines: 0, delivered: 0, folded: 0, finalStats: null, store: null, badLines: 0 };
  for (const group of fileLineGroups(file)) for (const s of group) {
    r.lines++;
    let l;
    try {
      l = JSON.parse(s);
    } catch {
      r.badLines++;
      continue;
    }
    if (l.type === 'drop') {
      r.dropLines++;
      const n = typeof l.count === 'number' ? l.count : 1;
      if (l.folded) r.folded += n;
      else r.delivered += n;
    } else if (l.type === 'stats' && l.final) r.finalStats = l;
    else if (l.type === 'bench-store') r.store = l;
  }
  return r;
}

async function waitForStart(file, child, what, stderr) {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited before its start line: ${stderr().trim()}`);
    try {
      const text = readFileSync(file, 'utf8');
      if (text.includes('"type":"start"') && text.includes('\n')) return;
    } catch {
      // not there yet
    }
    await sleep(25);
  }
  throw new Error(`${what}: no start line within 60 s: ${stderr().trim()}`);
}

/** A droptrace process writing NDJSON to a file (runs 3, 5: the CLI; run 4: the TUI store runner). */
async function startDroptrace(run, ns, dir, rep) {
  const kind = run === 4 ? 'tui' : 'stream';
  const file = join(dir, `run${run}-${rep}.ndjson`);
  const fd = openSync(file, 'w');
  const stream = [CLI, 'stream', '--netns', String(ns.inode), '--counters-interval', '0'];
  const args = run === 3 || run === 7 || run === 9 ? stream : run === 5 ? [...stream, '--detail-limit', '0'] : [join(ROOT, 'bench', 'tui-store-run.mjs'), '--netns', String(ns.inode)];
  const t0 = performance.now();
  const child = track(spawn(process.execPath, args, { stdio: ['ignore', fd, 'pipe'], cwd: ROOT }));
  closeSync(fd);
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  await waitForStart(file, child, `droptrace (${kind})`, () => err);
  return {
    pid: child.pid,
    readyS: (performance.now() - t0) / 1000,
    ownProgs: () => progIdsOf(child.pid),
    isOurs: (p) => p.name.startsWith('dt_'),
    async stop() {
      const r = await stopChild(child, `droptrace (${kind})`);
      if (r.code !== 0) throw new Error(`droptrace (${kind}) exited with ${r.code ?? r.signal}: ${err.trim()}`);
      return { file, out: readNdjson(file), stderr: err };
    },
  };
}

async function startBpftrace() {
  // BEGIN runs once every probe is attached: the ready signal; it adds nothing per drop
  const child = track(spawn('bpftrace', ['-e', `BEGIN { printf("ready\\n"); } ${BPFTRACE_PROGRAM}`], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const t0 = performance.now();
  const until = Date.now() + 60_000;
  while (!out.includes('ready\n')) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`bpftrace exited before attaching: ${(err || out).trim()}`);
    if (Date.now() > until) throw new Error(`bpftrace did not attach within 60 s: ${err.trim()}`);
    await sleep(25);
  }
  return {
    pid: child.pid,
    readyS: (performance.now() - t0) / 1000,
    ownProgs: () => progIdsOf(child.pid),
    isOurs: (p) => p.type === 'tracepoint',
    async stop() {
      await stopChild(child, 'bpftrace');
      const byReason = {};
      for (const m of out.matchAll(/^@\[(\d+)\]:\s*(\d+)$/gm)) byReason[Number(m[1])] = Number(m[2]);
      return { byReason, stderr: err };
    },
  };
}

/** The cost of writing run 3's NDJSON to a file rather than /dev/null, replayed line by line as Node writes it. */
function fileSinkCost(file, dir) {
  let count = 0;
  const time = (target) => {
    const fd = openSync(target, 'w');
    let ms = 0;
    count = 0;
    // only the writes are timed, a group of lines at a time (the reading is not)
    for (const group of fileLineGroups(file)) {
      const c0 = process.cpuUsage();
      for (const l of group) writeSync(fd, l + '\n');
      const c = process.cpuUsage(c0);
      ms += (c.user + c.system) / 1000;
      count += group.length;
    }
    closeSync(fd);
    return ms;
  };
  const replay = join(dir, 'sink-replay.ndjson');
  time('/dev/null'); // warm
  const toNull = time('/dev/null');
  const toFile = time(replay);
  rmSync(replay, { force: true });
  return { lines: count, file_ms: round(toFile, 2), devnull_ms: round(toNull, 2), extra_ms: round(Math.max(0, toFile - toNull), 2) };
}

/**
 * The non-empty lines of a file, in groups, read 16 MiB at a time: a many-flows run writes more
 * than one JavaScript string can hold.
 */
function* fileLineGroups(file) {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(16 << 20);
    const text = new StringDecoder('utf8'); // a character split across two reads stays whole
    let rest = '';
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      const parts = (rest + text.write(buf.subarray(0, n))).split('\n');
      rest = parts.pop();
      yield parts.filter(Boolean);
    }
    if (rest) yield [rest];
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------- one run


async function oneRun(o, run, rep, ns, bin, dir, nfNumber) {
  say(`run ${run} (${RUN_NAMES[run]})${o.repeat > 1 ? `, repetition ${rep}` : ''}`);
  inNs(ns.b, 'iptables', ['-Z', 'INPUT']);
  // runs 8, 9: conntrack at work in the receiver, only for these runs (a rule using it is
  // what registers conntrack's hooks in a namespace; deleting it unregisters them)
  if (run >= 8) inNs(ns.b, 'iptables', ['-I', ...CONNTRACK_RULE]);
  try {
    return await floodRun(o, run, rep, ns, bin, dir, nfNumber);
  } finally {
    if (run >= 8) inNs(ns.b, 'iptables', ['-D', ...CONNTRACK_RULE]);
  }
}

async function floodRun(o, run, rep, ns, bin, dir, nfNumber) {
  const tracer = run === 2 ? await startBpftrace() : DROPTRACE_RUNS.includes(run) ? await startDroptrace(run, ns, dir, rep) : null;
  const flows = run === 6 || run === 7 ? o.manyFlows : 1;
  const port = flows > 1 ? MANY_BASE_PORT : o.port;
  try {
    await sleep(200); // let start-up work (kallsyms, first reconcile) settle before the flood
    const progsBefore = bpfPrograms();
    const cpu0 = tracer ? procCpu(tracer.pid) : null;
    const sys0 = systemCpu();
    const gen = await flood(o, ns, bin, o.seconds, flows);
    const sys1 = systemCpu();
    const cpu1 = tracer ? procCpu(tracer.pid) : null;
    const progsAfter = bpfPrograms();
    const own = tracer ? tracer.ownProgs() : new Set();
    const peakRss = tracer ? procStatus(tracer.pid, 'VmHWM') : null;
    const generatedOn = ruleCount(ns.b, port, flows);
    // The same flood again with kernel.bpf_stats_enabled=0, as a node runs: the stats add two
    // clock reads to every program run, a cost of the measurement, not of the tracer. The
    // throughput figures (drops/s, slowdown, added ns/drop) come from this flood; the program
    // figures (ns/event) can only come from the first.
    writeFileSync(BPF_STATS, '0\n');
    let genOff;
    try {
      genOff = await flood(o, ns, bin, o.seconds, flows);
    } finally {
      writeFileSync(BPF_STATS, '1\n');
    }
    const generated = ruleCount(ns.b, port, flows);
    const generatedOff = generated - generatedOn;

    // BPF programs: ours (held by the tracer's fds) and anyone else's that ran meanwhile
    const programs = [];
    const foreign = [];
    for (const [id, after] of progsAfter) {
      const before = progsBefore.get(id);
      const runs = after.runCnt - (before?.runCnt ?? 0);
      const ns_ = after.runTimeNs - (before?.runTimeNs ?? 0);
      if (own.has(id) && tracer.isOurs(after)) {
        programs.push({ id, name: after.name, type: after.type, run_cnt: runs, run_time_ns: ns_, ns_per_run: runs > 0 ? round(ns_ / runs, 1) : null });
      } else if (!own.has(id) && runs > 0) foreign.push({ id, name: after.name, type: after.type, run_cnt: runs });
    }
    const ran = programs.filter((p) => p.run_cnt > 0);
    const maxRuns = Math.max(0, ...ran.map((p) => p.run_cnt));
    // every program of ours runs once per event: their costs add up
    const kernelNsPerEvent = maxRuns > 0 ? round(ran.reduce((s, p) => s + p.run_time_ns, 0) / maxRuns, 1) : null;

    const wall = gen.seconds;
    const tracerCpuS = cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null;
    const busyS = (sys1.busy - sys0.busy) / CLK_TCK;
    const otherPct = Math.max(0, ((busyS - gen.cpu_s - (tracerCpuS ?? 0)) / wall) * 100);

    const r = {
      run,
      rep,
      name: RUN_NAMES[run],
      seconds: round(genOff.seconds, 3),
      sent: gen.sent + genOff.sent,
      send_errors: gen.errors + genOff.errors,
      /** both floods: what the tracer counted over its life */
      generated,
      /** the flood with bpf_stats off (production) */
      generated_off: generatedOff,
      drops_per_s: Math.round(generatedOff / genOff.seconds),
      /** the flood with bpf_stats on (program figures) */
      stats_on: { seconds: round(wall, 3), generated: generatedOn, drops_per_s: Math.round(generatedOn / wall) },
      generator_cpu_s: gen.cpu_s,
      other_load_pct: round(otherPct, 1),
      ready_s: tracer ? round(tracer.readyS, 2) : null,
      programs,
      foreign_programs: foreign,
      kernel_ns_per_event: kernelNsPerEvent,
      tracer_cpu_pct: tracerCpuS !== null ? round((tracerCpuS / wall) * 100, 1) : null,
      tracer_peak_rss_mb: round(peakRss, 1),
    };
    if (!tracer) return r;
    const res = await tracer.stop();
    if (run === 2) {
      // bpftrace's program has no namespace filter: it counts NETFILTER_DROP machine-wide, so
      // drops made elsewhere meanwhile (other tests, other rules) show up as a surplus
      r.counted = res.byReason[nfNumber] ?? 0;
      r.exact = r.counted === generated;
      r.counted_elsewhere = Math.max(0, r.counted - generated);
      return r;
    }
    const out = res.out;
    const st = out.finalStats;
    if (!st) throw new Error(`droptrace (run ${run}) wrote no final stats line; stderr: ${res.stderr.trim()}`);
    const suppressed = st.kernel?.suppressed ?? 0;
    const lost = st.lost?.total ?? 0;
    r.counted = st.kernel?.by_reason?.NETFILTER_DROP ?? 0;
    r.kernel_drops = st.kernel?.drops ?? null;
    r.exact = r.counted === generated;
    r.events = st.events;
    r.lost = { ring_buffer: st.lost?.ring_buffer ?? null, userspace: st.lost?.userspace ?? null, total: lost };
    r.suppressed = st.kernel?.suppressed ?? null;
    r.folded = st.folded ?? null;
    r.decode_errors = st.decode_errors;
    // what the stream itself says: Σ count of drop lines, from detail events and folded
    const seen = run !== 4 ? { delivered: out.delivered, folded: out.folded, lines: out.lines } : { delivered: out.store?.delivered, folded: out.store?.folded, lines: out.store?.lines };
    r.stream = { lines: seen.lines, delivered: seen.delivered, folded: seen.folded, total: (seen.delivered ?? 0) + (seen.folded ?? 0) };
    // drops that sent no detail event and were not rate-limited on purpose: the lost ones
    r.lost_observed = r.kernel_drops !== null ? r.kernel_drops - (seen.delivered ?? 0) - suppressed : null;
    r.lost_matches_stats = r.lost_observed === lost;
    r.stream_exact = r.stream.total === r.kernel_drops;
    if (run !== 4) {
      r.output = { lines: out.lines, bytes: out.bytes };
      const cost = fileSinkCost(res.file, dir);
      r.file_sink = { ...cost, pct_of_tracer_cpu: tracerCpuS ? round((cost.extra_ms / 1000 / tracerCpuS) * 100, 2) : null };
    }
    if (run === 4) r.store = out.store;
    return r;
  } catch (e) {
    if (tracer) await tracer.stop().catch(() => {});
    throw e;
  }
}

// ---------------------------------------------------------------- userspace benchmark

async function userspaceBench(o) {
  const node = (args, timeoutS) =>
    new Promise((res) => {
      const child = track(spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutS * 1000);
      exited(child).then((r) => {
        clearTimeout(t);
        if (r.code === 0) {
          try {
            res(JSON.parse(out.trim().split('\n').pop()));
          } catch {
            res({ error: `unreadable output: ${out.slice(-200)}` });
          }
        } else res({ error: r.signal === 'SIGKILL' ? `did not finish within ${timeoutS} s` : `exited ${r.code}: ${err.trim().split('\n').slice(-3).join(' ')}` });
      });
    });
  say('userspace: decode + classify + enrich on recorded buffers');
  const rate = await node([join(ROOT, 'bench', 'userspace.mjs'), 'rate'], 120);
  say(`userspace: RSS with ${o.flows} distinct flows`);
  const rss = await node(['--expose-gc', join(ROOT, 'bench', 'userspace.mjs'), 'rss', '--flows', String(o.flows)], 180);
  // the same without Folder (decode + classify + enrich only): what the Folder's memory is
  const rssNoFolder = await node(['--expose-gc', join(ROOT, 'bench', 'userspace.mjs'), 'rss', '--flows', String(o.flows), '--stages', 'enrich', '--reconcile-every', '0'], 120);
  return { rate, rss, rss_without_folder: rssNoFolder };
}

// ---------------------------------------------------------------- report

function pad(s, n, right = false) {
  s = s === null || s === undefined ? '—' : String(s);
  return right ? s.padStart(n) : s.padEnd(n);
}
/** the middle value (the mean of the two middle ones for an even count), null for none */
function median(xs) {
  if (!xs.length) return null;
  const a = [...xs].sort((x, y) => x - y);
  const m = a.length >> 1;
  return a.length % 2 ? a[m] : round((a[m - 1] + a[m]) / 2, 1);
}
const fmtInt = (n) => (n === null || n === undefined ? null : Math.round(n).toLocaleString('en-US'));
const pct = (x) => (x === null || x === undefined ? null : `${x.toFixed(1)}%`);

function report(o, mach, runs, us) {
  const base1 = (rep, run) => {
    const b = baselineOf(run);
    return runs.find((r) => r.run === b && r.rep === rep) ?? runs.find((r) => r.run === b);
  };
  const base2 = (rep) => runs.find((r) => r.run === 2 && r.rep === rep) ?? runs.find((r) => r.run === 2);
  for (const r of runs) {
    const b1 = base1(r.rep, r.run);
    const b2 = base2(r.rep);
    r.slowdown_pct = b1 && r.run !== baselineOf(r.run) ? round((1 - r.drops_per_s / b1.drops_per_s) * 100, 1) : null;
    r.stats_on.slowdown_pct = b1 && r.run !== baselineOf(r.run) ? round((1 - r.stats_on.drops_per_s / b1.stats_on.drops_per_s) * 100, 1) : null;
    r.ns_vs_bpftrace = b2?.kernel_ns_per_event && r.kernel_ns_per_event && r.run > 2 ? round(r.kernel_ns_per_event / b2.kernel_ns_per_event, 2) : null;
    // the whole cost of an attached tracer per drop, hook machinery included (a classic
    // tracepoint builds its record before the program runs: run_time_ns does not see that):
    // the sender's time per drop, minus the same with nothing attached
    r.added_ns_per_drop = b1 && r.run !== baselineOf(r.run) ? round((r.seconds / r.generated_off - b1.seconds / b1.generated_off) * 1e9, 0) : null;
    r.stats_on.added_ns_per_drop =
      b1 && r.run !== baselineOf(r.run) ? round((r.stats_on.seconds / r.stats_on.generated - b1.stats_on.seconds / b1.stats_on.generated) * 1e9, 0) : null;
  }
  for (const r of runs) {
    const b2 = base2(r.rep);
    r.added_vs_bpftrace = b2?.added_ns_per_drop && r.added_ns_per_drop !== null && r.run > 2 ? round(r.added_ns_per_drop / b2.added_ns_per_drop, 2) : null;
  }
  // slowdown relative to bpftrace's own slowdown (all slowdowns are known only now)
  for (const r of runs) {
    const b2 = base2(r.rep);
    r.slowdown_vs_bpftrace = b2 && b2.slowdown_pct && r.slowdown_pct !== null && r.run > 2 ? round(r.slowdown_pct / b2.slowdown_pct, 2) : null;
  }

  const lines = [];
  const w = (s = '') => lines.push(s);
  w();
  w(`droptrace bench — ${mach.nproc} CPUs (${mach.cpu_model}), kernel ${mach.kernel}, ${o.seconds} s per run, generator ${o.cpu >= 0 ? `pinned to CPU ${o.cpu}` : 'not pinned'};`);
  w('two floods per run: one with kernel.bpf_stats_enabled=1 (ns/event, CPU, RSS), one with it 0 as on a node (drops/s, slowdown, added ns/drop)');
  w();
  const cols = [
    ['run', 22],
    ['drops/s', 9, true],
    ['slowdown', 9, true],
    ['(stats on)', 10, true],
    ['generated', 10, true],
    ['counted', 10, true],
    ['exact', 6],
    ['events', 8, true],
    ['lost stats/seen', 16, true],
    ['ns/event', 9, true],
    ['vs bpftrace', 11, true],
    ['added ns/drop', 13, true],
    ['vs bpftrace', 11, true],
    ['CPU %', 6, true],
    ['RSS MB', 7, true],
    ['other load', 10, true],
  ];
  w(cols.map(([h, n, r]) => pad(h, n, r)).join(' '));
  w(cols.map(([, n]) => '-'.repeat(n)).join(' '));
  for (const r of runs) {
    const name = `${r.run} ${r.name}${o.repeat > 1 ? ` #${r.rep}` : ''}`;
    const vals = [
      name,
      fmtInt(r.drops_per_s),
      r.slowdown_pct === null ? '—' : pct(r.slowdown_pct),
      r.stats_on.slowdown_pct === null ? '—' : pct(r.stats_on.slowdown_pct),
      fmtInt(r.generated),
      r.counted === undefined ? '—' : fmtInt(r.counted),
      r.exact === undefined ? '—' : r.exact ? 'yes' : r.counted_elsewhere ? `+${fmtInt(r.counted_elsewhere)}` : 'NO',
      r.events === undefined ? '—' : fmtInt(r.events),
      r.lost ? `${fmtInt(r.lost.total)}/${fmtInt(r.lost_observed)}` : '—',
      r.kernel_ns_per_event,
      r.ns_vs_bpftrace === null ? '—' : `${r.ns_vs_bpftrace}x`,
      r.added_ns_per_drop,
      r.added_vs_bpftrace === null ? '—' : `${r.added_vs_bpftrace}x`,
      r.tracer_cpu_pct,
      r.tracer_peak_rss_mb,
      r.other_load_pct === null ? '—' : `${r.other_load_pct}%`,
    ];
    w(cols.map(([, n, right], i) => pad(vals[i], n, right)).join(' '));
  }
  w();
  w('drops/s, slowdown, added ns/drop: the flood with bpf_stats off; "(stats on)": the slowdown of the flood with it on.');
  w('generated: packets the DROP rule matched over both floods (exact). counted: NETFILTER_DROP counted by bpftrace (@[reason]) or by droptrace');
  w('(stats kernel.by_reason, final line). lost stats/seen: lost.total of the stats line / kernel.drops − Σcount of delivered');
  w('drop lines − kernel.suppressed. ns/event: Σ run_time_ns / run_cnt of the tracer\'s BPF programs during the flood.');
  w('added ns/drop: the sender\'s time per drop minus run 1\'s: the whole per-drop cost, hook machinery included.');
  w('CPU %: the tracer process (utime+stime) over the flood, of one CPU. other load: CPU busy outside generator and tracer.');
  w('bpftrace counts machine-wide: "+N" in exact = N NETFILTER_DROPs made elsewhere during its run.');
  for (const r of runs) {
    if (r.programs?.length) w(`  run ${r.run}${o.repeat > 1 ? `#${r.rep}` : ''} programs: ${r.programs.map((p) => `${p.name} (${p.type}) ${fmtInt(p.run_cnt)} runs, ${p.ns_per_run ?? '—'} ns/run`).join('; ')}`);
    if (r.foreign_programs?.length) w(`  run ${r.run}: WARNING other BPF programs ran during the flood: ${r.foreign_programs.map((p) => `${p.id} ${p.name} (${fmtInt(p.run_cnt)} runs)`).join(', ')} — figures are not clean`);
    if (r.other_load_pct > 15) w(`  run ${r.run}: WARNING the machine was busy with other work (${r.other_load_pct}% of a CPU) — rerun on a quiet machine`);
    if (r.stream) w(`  run ${r.run} stream: ${fmtInt(r.stream.lines)} lines, Σcount ${fmtInt(r.stream.total)} (delivered ${fmtInt(r.stream.delivered)} + folded ${fmtInt(r.stream.folded)}) vs kernel.drops ${fmtInt(r.kernel_drops)}; rate-limited ${fmtInt(r.suppressed)}; lost: ring buffer ${fmtInt(r.lost.ring_buffer)}, userspace ${fmtInt(r.lost.userspace)}; started in ${r.ready_s} s`);
    if (r.file_sink) w(`  run ${r.run} sink: stdout to a file, ${fmtInt(r.output.bytes)} bytes; writing them costs ${r.file_sink.extra_ms} ms more than /dev/null (${r.file_sink.pct_of_tracer_cpu ?? '—'}% of droptrace's CPU in the run)`);
    if (r.store) w(`  run 4 store: ${fmtInt(r.store.lines)} lines ingested, ${r.store.frames} snapshots, store total ${fmtInt(r.store.store_total)} in ${r.store.groups} groups`);
  }
  if (us) {
    w();
    const ra = us.rate;
    if (ra.error) w(`userspace rate: FAILED (${ra.error})`);
    else {
      w(`userspace (recorded buffers of ${ra.batch_records} distinct records, ${ra.record_bytes_avg} B avg; one process, one thread):`);
      w(`  decode only                      ${pad(fmtInt(ra.stages.decode.events_per_s), 11, true)} events/s (${fmtInt(ra.stages.decode.events_per_cpu_s)} per CPU-second)`);
      w(`  + classify (EventBuilder.fold)   ${pad(fmtInt(ra.stages.classify.events_per_s), 11, true)} events/s`);
      w(`  + enrich  (the issue's figure)   ${pad(fmtInt(ra.decode_classify_enrich.events_per_s), 11, true)} events/s (${fmtInt(ra.decode_classify_enrich.events_per_cpu_s)} per CPU-second)`);
      w(`  + Folder.delivered (stream path) ${pad(fmtInt(ra.stages.full_stream_path.events_per_s), 11, true)} events/s`);
      w(`  + NDJSON serialisation           ${pad(fmtInt(ra.plus_ndjson.events_per_s), 11, true)} events/s (${ra.plus_ndjson.ndjson_bytes_per_event} bytes/event)`);
      w(`  + TUI store ingest               ${pad(fmtInt(ra.plus_tui_store.events_per_s), 11, true)} events/s`);
    }
    const rs = us.rss;
    if (rs.error) w(`userspace RSS with ${fmtInt(o.flows)} flows: FAILED (${rs.error})`);
    else
      w(`  RSS with ${fmtInt(rs.flows)} distinct flows (stream path, ${rs.reconciles} full-map reconciles): peak ${rs.peak_rss_mb} MB (Node alone ${rs.baseline_rss_mb} MB; live heap after GC ${rs.retained_heap_mb} MB), ${rs.seconds} s`);
    const nf = us.rss_without_folder;
    if (nf && !nf.error) w(`  the same without Folder (decode+classify+enrich only, no reconcile): peak ${nf.peak_rss_mb} MB (live heap after GC ${nf.retained_heap_mb} MB), ${nf.seconds} s`);
  }

  // targets of issue 6: cost judged on droptrace as shipped (runs 3, 4: default detail limit);
  // exactness and losses on every droptrace run (5 included: that is where losses happen)
  const dt = runs.filter((r) => r.run === 3 || r.run === 4);
  const dtAll = runs.filter((r) => DROPTRACE_RUNS.includes(r.run));
  const all = (f) => dtAll.length > 0 && dtAll.every(f);
  const worst = (f) => (dt.length ? Math.max(...dt.map(f).filter((x) => x !== null && x !== undefined)) : null);
  const targets = [];
  const t = (name, met, measured) => targets.push({ target: name, met, measured });
  if (dtAll.length) {
    t('counted drops == generated, exactly', all((r) => r.exact), dtAll.map((r) => `run ${r.run}: ${fmtInt(r.counted)} of ${fmtInt(r.generated)}`).join('; '));
    const nsRatio = worst((r) => r.ns_vs_bpftrace);
    const addRatio = worst((r) => r.added_vs_bpftrace);
    const okN = (x) => x !== null && Number.isFinite(x);
    t(
      'kernel cost per drop <= 1.5x bpftrace count-only',
      okN(nsRatio) && okN(addRatio) ? nsRatio <= 1.5 && addRatio <= 1.5 : null,
      okN(nsRatio) ? `program run time ${nsRatio}x, added time per drop ${addRatio}x (worst run)` : 'needs runs 1, 2 and 3/4',
    );
    // A single flood is at the mercy of the host (in one invocation the same flood with nothing
    // attached ran at 386,000-422,000 drops/s): each repetition's slowdown is taken against
    // its own baseline, and a run is judged on the median of its repetitions; the worst
    // repetition is shown next to it.
    const slows = [...new Set(dt.map((r) => r.run))].map((run) => {
      const xs = dt.filter((r) => r.run === run && r.slowdown_pct !== null && Number.isFinite(r.slowdown_pct)).map((r) => r.slowdown_pct);
      return { run, median: median(xs), worst: xs.length ? Math.max(...xs) : null, n: xs.length };
    });
    const slow = slows.length && slows.every((x) => x.median !== null) ? Math.max(...slows.map((x) => x.median)) : null;
    t(
      'generator slowdown < 10%',
      slow !== null ? slow < 10 : null,
      slow !== null
        ? slows.map((x) => (x.n > 1 ? `run ${x.run}: ${x.median}% (median of ${x.n}; worst ${x.worst}%)` : `run ${x.run}: ${x.median}% (one repetition: --repeat 3 or more for a median)`)).join('; ')
        : 'needs run 1',
    );
    t('lost detail events == stats line', all((r) => r.lost_matches_stats), dtAll.map((r) => `run ${r.run}: stats ${fmtInt(r.lost.total)}, seen ${fmtInt(r.lost_observed)}`).join('; '));
  }
  if (us && !us.rate.error) t('userspace >= 2M events/s decode+classify+enrich', us.rate.decode_classify_enrich.events_per_s >= 2e6, `${fmtInt(us.rate.decode_classify_enrich.events_per_s)} events/s`);
  if (us && !us.rss.error) t(`RSS <= 150 MB with ${fmtInt(o.flows)} flows`, us.rss.peak_rss_mb <= 150, `${us.rss.peak_rss_mb} MB peak`);
  if (targets.length) {
    w();
    w('targets (issue 6):');
    for (const x of targets) w(`  ${x.met === null ? 'n/a ' : x.met ? 'MET ' : 'NOT '} ${x.target}: ${x.measured}`);
  }
  w();
  process.stdout.write(lines.join('\n') + '\n');
  return targets;
}

// ---------------------------------------------------------------- main

async function main() {
  const o = parseArgs(process.argv.slice(2));
  state.keep = o.keep;
  if (process.getuid?.() !== 0) usage('needs root (network namespaces, iptables, BPF)');
  for (const c of ['cc', 'ip', 'iptables', 'bpftool']) if (!have(c)) usage(`needs ${c} (Debian: scripts/setup.sh installs it)`);
  if (o.runs.includes(2) && !have('bpftrace')) {
    say('bpftrace missing: run 2 (the baseline) skipped');
    o.runs = o.runs.filter((r) => r !== 2);
  }
  if (o.setup) {
    const r = spawnSync('bash', [join(ROOT, 'scripts', 'setup.sh')], { stdio: ['ignore', 2, 2], cwd: ROOT });
    if (r.status !== 0) throw new Error('scripts/setup.sh failed');
  }
  if ((o.runs.includes(3) || o.runs.includes(4)) && !existsSync(CLI)) throw new Error('dist/src/cli.js missing: build first (npm run setup)');
  if (o.runs.includes(2) && !existsSync(KFREE_FORMAT)) throw new Error(`${KFREE_FORMAT} missing: mount tracefs (mount -t tracefs tracefs /sys/kernel/tracing)`);
  const t0 = performance.now();
  const mach = machine();
  state.tmp = mkdtempSync(join(tmpdir(), 'droptrace-bench-'));
  const bin = compileFlood(state.tmp);
  const nfNumber = o.runs.includes(2) ? netfilterDropNumber() : null;

  const already = [...bpfPrograms().values()].filter((p) => /kfree_skb/.test(p.name));
  if (already.length) {
    say(`WARNING: BPF programs named *kfree_skb* are already loaded (${already.map((p) => `${p.id} ${p.name}`).join(', ')}): if attached, they run on every drop of the flood and skew every run`);
  }
  state.statsPrev = readFileSync(BPF_STATS, 'utf8');
  writeFileSync(BPF_STATS, '1\n');
  const ns = makeNamespaces(o.port, o.manyFlows);
  say(`namespaces ${ns.a} → ${ns.b} (receiver netns inode ${ns.inode}), ${ns.ipA} → ${ns.ipB}:${o.port}, flood ${o.seconds} s per run`);
  // warm-up (not reported): first-touch costs out of run 1
  await flood(o, ns, bin, Math.min(1, o.seconds));

  const runs = [];
  for (let rep = 1; rep <= o.repeat; rep++) for (const run of o.runs) runs.push(await oneRun(o, run, rep, ns, bin, state.tmp, nfNumber));
  cleanup(); // namespaces and bpf_stats_enabled back before the userspace part
  const us = o.userspace ? await userspaceBench(o) : null;

  const targets = report(o, mach, runs, us);
  const result = {
    type: 'droptrace-bench',
    schema: 1,
    time: new Date().toISOString(),
    machine: mach,
    options: { seconds: o.seconds, repeat: o.repeat, generator_cpu: o.cpu, batch: 256, payload_bytes: 32, flows: o.flows, many_flows: o.manyFlows },
    bpftrace_program: BPFTRACE_PROGRAM,
    runs,
    userspace: us,
    targets,
    bench_seconds: round((performance.now() - t0) / 1000, 1),
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((e) => {
  say(`failed: ${e instanceof Error ? e.message : String(e)}`);
  cleanup();
  process.exit(1);
});

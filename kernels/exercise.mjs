#!/usr/bin/env node
// SPDX-License-Identifier: GPL-2.0
/**
 * Exercises droptrace on whatever kernel this runs on (natively, or inside a qemu guest started
 * by kernels/run-in-vm.sh) and writes one JSON result: which probes `droptrace check` lists and
 * in which state, and for each scenario the drops that `droptrace stream` reported (reason,
 * family, kind, location, count) next to what the kernel's own skb:kfree_skb tracepoint printed
 * for the same packets (its format decides the reason names, so a name mismatch shows here).
 *
 *   node kernels/exercise.mjs [--set smoke|full] [--global] [--out FILE] [--fault ENV=VALUE]...
 *
 *   --set smoke   check, the kernel-vs-BTF reason-name comparison, netfilter_rule and no_socket
 *   --set full    (default) every scenario below, and a second stream on the classic tracepoint
 *   --global      also run scenarios that change machine-wide settings for a second or two
 *                 (gc_thresh3, nf_conntrack_max); always on inside the throw-away guest
 *   --fault E=V   a degraded pass: check and netfilter_rule again with E=V in droptrace's
 *                 environment (a test knob that points a probe at a kernel function that does
 *                 not exist, e.g. E=__neigh_create:__neigh_create_renamed): a probe must then be
 *                 `unavailable` with a reason naming the last name in V, and drops must still
 *                 be traced and classified on the tracepoint floor
 *
 * Plain JavaScript with no dependencies: it runs the built CLI (dist/src/cli.js) as a user
 * would. Only addresses in 198.18.0.0/15 and fd99::/16, inside namespaces it creates and deletes.
 * Exit status 0 when every expectation held, 1 otherwise (the JSON is written either way).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const IN_VM = process.env.DT_VM === '1';
const SLOW = IN_VM ? 4 : 1; // software-emulated guests are several times slower

// ---- arguments -----------------------------------------------------------------------------
const args = process.argv.slice(2);
const opt = { set: 'full', global: IN_VM, out: null, faults: [] };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--set') opt.set = args[++i];
  else if (a === '--global') opt.global = true;
  else if (a === '--out') opt.out = args[++i];
  else if (a === '--fault') opt.faults.push(args[++i]);
  else {
    process.stderr.write(`exercise: unknown argument ${a}\n`);
    process.exit(2);
  }
}
if (!['smoke', 'full'].includes(opt.set)) {
  process.stderr.write(`exercise: --set wants smoke or full, got ${opt.set}\n`);
  process.exit(2);
}

const t0 = Date.now();
const log = (s) => process.stderr.write(`exercise [${release()} +${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function sh(cmd, argv, o = {}) {
  return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...o });
}
const inNs = (ns, cmd, argv, o) => sh('ip', ['netns', 'exec', ns, cmd, ...argv], o);
const tryWrite = (path, value) => {
  try {
    writeFileSync(path, String(value));
    return true;
  } catch {
    return false;
  }
};
const readOr = (path, dflt = null) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return dflt;
  }
};

// ---- the kernel's own view: tracepoint format and a private trace instance ----------------
const TRACEFS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'].find((d) => existsSync(join(d, 'events')));

/** {number: name} from skb:kfree_skb's print fmt (`__print_symbolic(REC->reason, {2, "NOT_SPECIFIED"}, ...)`). */
function formatReasons() {
  const fmt = TRACEFS && readOr(join(TRACEFS, 'events/skb/kfree_skb/format'));
  if (!fmt) return null;
  const out = {};
  const sym = fmt.slice(fmt.indexOf('__print_symbolic(REC->reason'));
  for (const m of sym.matchAll(/\{\s*(\d+),\s*"([A-Z0-9_]+)"\s*\}/g)) out[m[1]] = m[2];
  return { reasons: out, printFmt: (fmt.match(/print fmt: "([^"]*)"/) ?? [])[1] ?? null };
}

class KernelTrace {
  constructor() {
    this.dir = TRACEFS ? join(TRACEFS, 'instances', `droptrace-matrix-${process.pid}`) : null;
    if (!this.dir) return;
    mkdirSync(this.dir);
    writeFileSync(join(this.dir, 'buffer_size_kb'), '4096');
    writeFileSync(join(this.dir, 'events/skb/kfree_skb/enable'), '1');
  }
  clear() {
    if (this.dir) writeFileSync(join(this.dir, 'trace'), '');
  }
  /**
   * {events: [{reason, fn}], overrun} since clear(), as the kernel printed them; overrun counts
   * events the ring lost (drops elsewhere on a busy machine can fill it)
   */
  read() {
    if (!this.dir) return { events: [], overrun: 0 };
    const text = readFileSync(join(this.dir, 'trace'), 'utf8');
    const events = [];
    for (const line of text.split('\n')) {
      const m = line.match(/kfree_skb: .*location=(\S+).*reason: (\S+)/);
      if (m) events.push({ fn: /^[A-Za-z_]/.test(m[1]) ? m[1].split('+')[0] : null, reason: m[2] });
    }
    const w = text.match(/entries-in-buffer\/entries-written: (\d+)\/(\d+)/);
    return { events, overrun: w ? Number(w[2]) - Number(w[1]) : 0 };
  }
  close() {
    if (!this.dir) return;
    tryWrite(join(this.dir, 'events/skb/kfree_skb/enable'), '0');
    try {
      rmdirSync(this.dir);
    } catch {}
  }
}

// ---- namespaces ------------------------------------------------------------------------------
const created = new Set();
let pairs = 0;
function makePair() {
  const id = randomBytes(3).toString('hex');
  const n = 100 + ((pairs++ * 7 + randomBytes(1)[0]) % 150);
  const p = {
    a: `dtk${id}a`,
    b: `dtk${id}b`,
    vethA: `dka${id}`,
    vethB: `dkb${id}`,
    ipA: `198.19.${n}.1`,
    ipB: `198.19.${n}.2`,
    ip6A: `fd99::${n}:1`,
    ip6B: `fd99::${n}:2`,
    n,
  };
  created.add(p.a);
  created.add(p.b);
  // few processes (each costs a lot in a software-emulated guest), and static neighbours, so
  // no scenario depends on ARP/NDP timing
  const mac = (x) => `02:dd:${id.slice(0, 2)}:${id.slice(2, 4)}:${id.slice(4, 6)}:0${x}`;
  sh('ip', ['-batch', '-'], {
    input: [
      `netns add ${p.a}`,
      `netns add ${p.b}`,
      `link add ${p.vethA} address ${mac(1)} netns ${p.a} type veth peer name ${p.vethB} address ${mac(2)} netns ${p.b}`,
    ].join('\n'),
  });
  for (const [ns, dev, ip, ip6, peer, peer6, peerMac] of [
    [p.a, p.vethA, p.ipA, p.ip6A, p.ipB, p.ip6B, mac(2)],
    [p.b, p.vethB, p.ipB, p.ip6B, p.ipA, p.ip6A, mac(1)],
  ]) {
    sh('ip', ['-n', ns, '-batch', '-'], {
      input: [
        'link set lo up',
        `addr add ${ip}/24 dev ${dev}`,
        `addr add ${ip6}/112 dev ${dev} nodad`,
        `link set ${dev} up`,
        `neigh replace ${peer} lladdr ${peerMac} dev ${dev} nud permanent`,
        `neigh replace ${peer6} lladdr ${peerMac} dev ${dev} nud permanent`,
      ].join('\n'),
    });
  }
  p.netnsA = statSync(`/run/netns/${p.a}`).ino;
  p.netnsB = statSync(`/run/netns/${p.b}`).ino;
  return p;
}
function destroyAll() {
  for (const ns of created) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  created.clear();
}

// ---- traffic (python3, stdlib only: it starts faster than node in a slow guest) -----------
const PY_UDP = `
import socket, sys
src, sport, dst, dport, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_INET6 if ':' in dst else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, sport))
for _ in range(count):
    s.sendto(b'droptrace', (dst, dport))
`;
// raw IPv4 packets with any source: UDP datagrams, or TCP segments with SYN and FIN both set
// (a combination conntrack judges INVALID)
const PY_SPOOF = `
import socket, struct, sys
src, dst, sport, dport, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
mode = sys.argv[6] if len(sys.argv) > 6 else 'udp'
def csum(b):
    if len(b) % 2: b += b'\\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
if mode == 'synfin':
    proto = 6
    l4 = struct.pack('!HHIIBBHHH', sport, dport, 1000, 0, 5 << 4, 0x03, 65535, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, proto, len(l4))
    l4 = l4[:16] + struct.pack('!H', csum(pseudo + l4)) + l4[18:]
else:
    proto = 17
    payload = b'droptrace'
    l4 = struct.pack('!HHHH', sport, dport, 8 + len(payload), 0) + payload
hdr = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst))
hdr = hdr[:10] + struct.pack('!H', csum(hdr)) + hdr[12:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for _ in range(count):
    s.sendto(hdr + l4, (dst, 0))
`;
// one datagram to each of COUNT distinct on-link IPv6 addresses, fast, send buffer raised
// (unresolved packets stay charged to the socket)
const PY_NEIGH6 = `
import socket, sys
prefix, count, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 << 20)
s.bind(('::', sport))
for i in range(count):
    try:
        s.sendto(b'droptrace', ('%s%x' % (prefix, 0x1000 + i), 9))
    except OSError:
        pass
`;
const PY_LISTEN = `
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1024)
print('listening', flush=True)
time.sleep(float(sys.argv[3]))
`;
const PY_CONNECT = `
import socket, sys, time
dst, dport, count, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks = []
for i in range(count):
    c = socket.socket(); c.setblocking(False)
    c.connect_ex((dst, dport)); socks.append(c)
time.sleep(hold)
`;
const py = (ns, code, argv, o) => inNs(ns, '/usr/bin/python3', ['-c', code, ...argv.map(String)], o);

// ---- droptrace itself ------------------------------------------------------------------------
function check(env) {
  const r = spawnSync(process.execPath, [CLI, 'check', '--json'], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 * SLOW });
  let report = null;
  try {
    report = JSON.parse(r.stdout);
  } catch {}
  return { exit: r.status, report, stderr: r.stderr.trim(), missingFunctions: missingFunctions(report) };
}

/**
 * Kernel functions that probes in `report` hook and that this kernel does not have right now
 * (not built in, or in a module not loaded yet): such a probe must be unavailable, saying so.
 */
function missingFunctions(report) {
  const fns = new Set();
  for (const p of report?.probes ?? []) {
    const m = p.hook.match(/^(?:kprobe|kretprobe|fentry|fexit)\/(.+)$/);
    if (m) fns.add(m[1]);
  }
  if (fns.size === 0) return [];
  const have = new Set();
  for (const line of (readOr('/proc/kallsyms', '') ?? '').split('\n')) {
    const name = line.split(/\s+/)[2];
    if (fns.has(name)) have.add(name);
  }
  return [...fns].filter((f) => !have.has(f));
}

function startStream(extra, env) {
  const child = spawn(process.execPath, [CLI, 'stream', '--stats-interval', '3600', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const s = { child, lines: [], err: '', waiters: [], exited: false };
  child.stderr.on('data', (d) => (s.err += d));
  createInterface({ input: child.stdout }).on('line', (l) => {
    try {
      s.lines.push(JSON.parse(l));
    } catch {
      s.err += `unparsable line: ${l}\n`;
    }
    for (const w of s.waiters.splice(0)) w();
  });
  s.done = new Promise((res) => child.on('exit', (code, signal) => res({ code, signal })));
  s.done.then(() => {
    s.exited = true;
    for (const w of s.waiters.splice(0)) w();
  });
  s.until = (pred, ms) =>
    new Promise((res) => {
      const t = setTimeout(() => res(false), ms);
      const tick = () => {
        if (pred(s.lines)) {
          clearTimeout(t);
          res(true);
        } else if (s.exited) {
          clearTimeout(t);
          res(false);
        } else s.waiters.push(tick);
      };
      tick();
    });
  s.stop = async () => {
    if (!s.exited) child.kill('SIGINT');
    const t = setTimeout(() => child.kill('SIGKILL'), 20_000 * SLOW);
    const r = await s.done;
    clearTimeout(t);
    return r;
  };
  return s;
}

const drops = (lines) => lines.filter((l) => l.type === 'drop');
const sum = (ds) => ds.reduce((n, d) => n + (d.count ?? 1), 0);

// ---- scenarios -------------------------------------------------------------------------------
// expect: what DESIGN.md's classification says this drop is, on every kernel.
// exact: the drop count is deterministic (else: at least one).
const SCENARIOS = [
  {
    name: 'netfilter_rule',
    smoke: true,
    what: 'iptables -A INPUT -p udp --dport 5301 -j DROP; 20 UDP datagrams',
    expect: { family: 'netfilter', kind: 'netfilter_rule', reason: 'NETFILTER_DROP' },
    exact: 20,
    setup: (p) => inNs(p.b, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '5301', '-j', 'DROP']),
    act: (p) => py(p.a, PY_UDP, [p.ipA, 41001, p.ipB, 5301, 20]),
    mine: (d, p) => d.netns === p.netnsB && d.flow?.dport === 5301,
  },
  {
    name: 'no_socket',
    smoke: true,
    what: '5 UDP datagrams to a closed port',
    expect: { family: 'other', kind: 'no_socket', reason: 'NO_SOCKET' },
    exact: 5,
    act: (p) => py(p.a, PY_UDP, [p.ipA, 41002, p.ipB, 5302, 5]),
    mine: (d, p) => d.netns === p.netnsB && d.flow?.dport === 5302,
  },
  {
    name: 'martian_source',
    what: '5 raw UDP datagrams with the forged source 127.0.0.9',
    expect: { family: 'martian', kind: 'martian_source' },
    exact: 5,
    act: (p) => py(p.a, PY_SPOOF, ['127.0.0.9', p.ipB, 41003, 5303, 5]),
    mine: (d, p) => d.netns === p.netnsB && d.flow?.dport === 5303,
  },
  {
    name: 'rp_filter',
    what: 'rp_filter=1; 5 raw UDP datagrams from 198.19.250.9, which has no route back',
    expect: { family: 'martian', kind: 'rp_filter', reason: 'IP_RPFILTER' },
    exact: 5,
    setup: (p) => {
      inNs(p.b, 'sysctl', ['-qw', 'net.ipv4.conf.all.rp_filter=1', `net.ipv4.conf.${p.vethB}.rp_filter=1`]);
    },
    act: (p) => py(p.a, PY_SPOOF, ['198.19.250.9', p.ipB, 41004, 5304, 5]),
    mine: (d, p) => d.netns === p.netnsB && d.flow?.dport === 5304,
  },
  {
    name: 'conntrack_invalid',
    what: 'iptables -A INPUT -m conntrack --ctstate INVALID -j DROP; 3 TCP segments with SYN and FIN set',
    expect: { family: 'conntrack', kind: 'conntrack_invalid', reason: 'NETFILTER_DROP' },
    exact: 3,
    setup: (p) => inNs(p.b, 'iptables', ['-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP']),
    act: (p) => py(p.a, PY_SPOOF, [p.ipA, p.ipB, 41006, 5306, 3, 'synfin']),
    mine: (d, p) => d.netns === p.netnsB && d.flow?.dport === 5306,
  },
  {
    name: 'neigh_resolution_failed',
    what: '3 UDP datagrams to an on-link address nobody has (one ARP probe, 100 ms)',
    expect: { family: 'neigh', kind: 'neigh_resolution_failed', reason: 'NEIGH_FAILED' },
    exact: 3,
    setup: (p) => {
      // per device, inside the namespace: give up after one probe
      inNs(p.a, 'sysctl', ['-qw', `net.ipv4.neigh.${p.vethA}.mcast_solicit=1`, `net.ipv4.neigh.${p.vethA}.retrans_time_ms=100`]);
    },
    act: (p) => py(p.a, PY_UDP, [p.ipA, 41007, `198.19.${p.n}.77`, 5307, 3]),
    mine: (d, p) => d.netns === p.netnsA && d.flow?.dport === 5307,
  },
  {
    name: 'neigh_table_full',
    global: true,
    what: 'IPv6 gc_thresh3 lowered to 256 for ~2 s; 600 datagrams to distinct on-link addresses',
    expect: { family: 'neigh', kind: 'neigh_table_full', reason: 'NEIGH_CREATEFAIL' },
    act: (p) => {
      const base = '/proc/sys/net/ipv6/neigh/default/';
      const saved = ['gc_thresh1', 'gc_thresh2', 'gc_thresh3'].map((k) => [k, readOr(base + k)?.trim()]);
      try {
        // the table is shared by every namespace: lower the limit only for the burst
        tryWrite(base + 'gc_thresh1', 64);
        tryWrite(base + 'gc_thresh2', 128);
        tryWrite(base + 'gc_thresh3', 256);
        py(p.a, PY_NEIGH6, [`fd99::${p.n}:`, 600, 41005]);
      } finally {
        for (const [k, v] of saved) if (v) tryWrite(base + k, v);
      }
    },
    mine: (d, p) => d.netns === p.netnsA && d.reason === 'NEIGH_CREATEFAIL',
  },
  {
    name: 'conntrack_table_full',
    global: true,
    what: 'nf_conntrack_max lowered to 30 for ~2 s, conntrack on in the receiver; 45 TCP connects',
    expect: { family: 'conntrack', kind: 'conntrack_table_full', reason: 'NETFILTER_DROP' },
    setup: (p) => {
      inNs(p.b, 'iptables', ['-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'NEW,ESTABLISHED', '-j', 'ACCEPT']);
    },
    act: async (p) => {
      const max = '/proc/sys/net/netfilter/nf_conntrack_max';
      const saved = readOr(max)?.trim();
      if (!saved) throw new Error('no /proc/sys/net/netfilter/nf_conntrack_max: conntrack did not load');
      const listener = spawn('ip', ['netns', 'exec', p.b, '/usr/bin/python3', '-c', PY_LISTEN, p.ipB, '5310', String(30 * SLOW)], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      try {
        await new Promise((res) => listener.stdout.once('data', res));
        tryWrite(max, 30);
        py(p.a, PY_CONNECT, [p.ipB, 5310, 45, 1.5]);
      } catch (e) {
        listener.kill('SIGKILL');
        throw e;
      } finally {
        if (saved) tryWrite(max, saved);
      }
      // killing the listener frees its queued connections (6.1 reports those as NOT_SPECIFIED
      // drops at tcp_disconnect): only after the drops of the scenario were measured
      return () => listener.kill('SIGKILL');
    },
    mine: (d, p) => d.netns === p.netnsB && d.flow?.dport === 5310,
  },
];

/** One stream, the given scenarios one after another, each cross-checked with the kernel's trace. */
async function runStreamPass(label, streamArgs, scenarios, env, trace) {
  const pass = { label, args: streamArgs, env, start: null, scenarios: [], stats: null, exit: null, stderr: '' };
  const tp = Date.now();
  // each scenario in its own pair of namespaces, set up before the stream starts
  const ready = [];
  for (const sc of scenarios) {
    const p = makePair();
    try {
      sc.setup?.(p);
      ready.push([sc, p, null]);
    } catch (e) {
      ready.push([sc, p, `setup failed: ${String(e.stderr || e.message).trim().split('\n')[0]}`]);
    }
  }
  pass.setupMs = Date.now() - tp;
  pass.modules = loadedModules();
  const s = startStream(streamArgs, env);
  const t = Date.now();
  const started = await s.until((ls) => ls.some((l) => l.type === 'start'), 120_000 * SLOW);
  pass.startMs = Date.now() - t;
  if (!started) {
    await s.stop();
    pass.stderr = s.err.trim();
    pass.error = `stream did not start: ${s.err.trim().split('\n').slice(-3).join(' | ')}`;
    return pass;
  }
  pass.start = s.lines.find((l) => l.type === 'start');
  for (const [sc, p, setupError] of ready) {
    const r = { name: sc.name, what: sc.what, expect: sc.expect, exact: sc.exact ?? null, ok: false };
    const ts = Date.now();
    let after;
    try {
      if (setupError) throw new Error(setupError);
      trace.clear();
      const from = s.lines.length;
      after = await sc.act(p);
      const want = sc.exact ?? 1;
      await s.until((ls) => sum(drops(ls).filter((d) => sc.mine(d, p))) >= want, 15_000 * SLOW);
      // a moment for late duplicates (a count must be exact, not at least)
      await sleep(sc.exact ? 300 * SLOW : 1000 * SLOW);
      const mine = drops(s.lines).filter((d) => sc.mine(d, p));
      const seen = new Map();
      for (const d of mine) {
        const k = `${d.family}|${d.kind}|${d.reason}|${d.location}`;
        seen.set(k, (seen.get(k) ?? 0) + (d.count ?? 1));
      }
      r.drops = [...seen].map(([k, count]) => {
        const [family, kind, reason, location] = k.split('|');
        return { family, kind, reason, location, count };
      });
      r.sample = mine[0] ?? null;
      // everything else droptrace reported meanwhile, for the record (kernel noise differs)
      const window = new Map();
      for (const d of drops(s.lines.slice(from))) {
        if (sc.mine(d, p)) continue;
        const where = d.netns === p.netnsA ? 'sender' : d.netns === p.netnsB ? 'receiver' : 'elsewhere';
        const k = `${d.reason}@${d.location} (${where})`;
        window.set(k, (window.get(k) ?? 0) + (d.count ?? 1));
      }
      r.otherDrops = Object.fromEntries(window);
      // the kernel's own words for the same packets
      const { events: kt, overrun } = trace.read();
      r.kernelTrace = {};
      if (overrun) r.kernelTraceOverrun = overrun;
      for (const e of kt) {
        const k = `${e.reason}@${e.fn ?? '?'}`;
        r.kernelTrace[k] = (r.kernelTrace[k] ?? 0) + 1;
      }
      const problems = [];
      const total = sum(mine);
      if (total === 0) problems.push('no drop reported');
      if (sc.exact && total !== sc.exact) problems.push(`${total} drops reported, expected exactly ${sc.exact}`);
      for (const d of r.drops) {
        for (const f of ['family', 'kind', 'reason']) {
          if (sc.expect[f] && d[f] !== sc.expect[f]) problems.push(`${f} ${d[f]}, expected ${sc.expect[f]}`);
        }
        // every reason name droptrace printed, the kernel printed for at least as many drops
        const k = kt.filter((e) => e.reason === d.reason && (e.fn === null || e.fn === d.location)).length;
        if (trace.dir && k < d.count) {
          const msg = `kernel trace shows ${k} × ${d.reason} at ${d.location}, droptrace ${d.count}`;
          // a ring the rest of the machine overran proves nothing either way
          if (overrun) (r.notes ??= []).push(`${msg} (inconclusive: the trace ring lost ${overrun} events)`);
          else problems.push(msg);
        }
      }
      r.problems = [...new Set(problems)];
      r.ok = r.problems.length === 0;
    } catch (e) {
      r.problems = [`error: ${String(e.stderr || e.message).trim().split('\n')[0]}`];
    }
    try {
      after?.();
    } catch {}
    r.ms = Date.now() - ts;
    log(`${label} ${sc.name}: ${r.ok ? 'ok' : r.problems.join('; ')}`);
    pass.scenarios.push(r);
  }
  const ex = await s.stop();
  pass.exit = ex.code ?? ex.signal;
  pass.stats = s.lines.filter((l) => l.type === 'stats').at(-1) ?? null;
  pass.ms = Date.now() - tp;
  pass.stderr = s.err.trim();
  return pass;
}

/** the networking modules loaded now (a probe on a module's function needs the module) */
function loadedModules() {
  const mods = (readOr('/proc/modules', '') ?? '').split('\n').map((l) => l.split(' ')[0]);
  return mods.filter((m) => /^(nf_|nft_|x_tables|xt_|ip_tables|iptable_|veth)/.test(m)).sort();
}

// ---- main ------------------------------------------------------------------------------------
const result = {
  kernel: release(),
  where: IN_VM ? 'qemu' : 'native',
  set: opt.set,
  global: opt.global,
  node: process.version,
  time: new Date().toISOString(),
  checks: [],
  reasonNames: null,
  passes: [],
  faults: [],
  skipped: [],
  ok: false,
};

function reasonNameCheck() {
  const fmt = formatReasons();
  const r = { tracefs: TRACEFS ?? null, formatCount: 0, btfCount: 0, mismatches: [], ok: false };
  if (!fmt) {
    r.mismatches.push('no skb:kfree_skb format in tracefs');
    return r;
  }
  // droptrace's own naming code, fed by the running kernel's BTF
  const out = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { loadNative } from ${JSON.stringify(join(ROOT, 'dist/src/native/binding.js'))};
       import { ReasonNames } from ${JSON.stringify(join(ROOT, 'dist/src/pipeline/reasons.js'))};
       const n = ReasonNames.fromKernel((e) => loadNative().btfEnum(e));
       process.stdout.write(JSON.stringify(n ? [...n.entries()] : null));`,
    ],
    { encoding: 'utf8' },
  );
  let names = null;
  try {
    names = new Map(JSON.parse(out.stdout));
  } catch {
    r.mismatches.push(`reading droptrace's reason names failed: ${out.stderr.trim().split('\n')[0]}`);
    return r;
  }
  r.printFmt = fmt.printFmt;
  r.formatCount = Object.keys(fmt.reasons).length;
  r.btfCount = names.size;
  for (const [num, name] of Object.entries(fmt.reasons)) {
    const ours = names.get(Number(num));
    if (ours !== name) r.mismatches.push(`${num}: kernel format says ${name}, droptrace says ${ours ?? 'nothing'}`);
  }
  r.sample = Object.fromEntries(['NO_SOCKET', 'NETFILTER_DROP', 'IP_RPFILTER', 'NEIGH_CREATEFAIL'].map((n) => [n, Number(Object.entries(fmt.reasons).find(([, v]) => v === n)?.[0] ?? -1)]));
  r.ok = r.mismatches.length === 0 && r.formatCount > 0;
  return r;
}

async function main() {
  if (!existsSync(CLI)) throw new Error(`${CLI} missing: build droptrace first (npm run build)`);
  log(`${result.where}, set ${opt.set}${opt.global ? ', global scenarios on' : ''}`);
  let c = check({});
  result.checks.push({ when: 'start', ...c });
  log(`check: exit ${c.exit}, ${c.report?.probes?.filter((p) => p.state === 'attached').length ?? 0} probes attached`);
  result.reasonNames = reasonNameCheck();
  log(`reason names: ${result.reasonNames.ok ? 'kernel format and droptrace agree' : result.reasonNames.mismatches.slice(0, 3).join('; ')}`);

  const trace = new KernelTrace();
  try {
    const wanted = SCENARIOS.filter((s) => (opt.set === 'full' || s.smoke) && (opt.global || !s.global));
    for (const s of SCENARIOS) if (!wanted.includes(s) && opt.set === 'full') result.skipped.push(`${s.name}: changes machine-wide settings (needs --global)`);
    // First the smoke scenarios, which load no conntrack module: on a kernel where conntrack
    // is a module, its probes are unavailable here (the function does not exist yet), and
    // the drop probes must carry on without them.
    const passes = [['default', [], wanted.filter((s) => s.smoke)]];
    if (opt.set === 'full') {
      passes.push(['default', [], wanted.filter((s) => !s.smoke)]);
      // the floor, forced: the classic tracepoint must classify the same
      passes.push(['tracepoint', ['--hook', 'tracepoint/skb/kfree_skb'], wanted.filter((s) => s.smoke)]);
    }
    for (const [label, argv, scs] of passes) {
      if (scs.length === 0) continue;
      result.passes.push(await runStreamPass(label, argv, scs, {}, trace));
      destroyAll();
    }
    for (const f of opt.faults) {
      const eq = f.indexOf('=');
      const env = { [f.slice(0, eq)]: f.slice(eq + 1) };
      const fc = check(env);
      const lost = fc.report?.probes?.filter((p) => p.state === 'unavailable') ?? [];
      const pass = await runStreamPass(`fault ${f}`, [], SCENARIOS.filter((s) => s.name === 'netfilter_rule'), env, trace);
      destroyAll();
      const problems = [];
      if (fc.exit !== 0) problems.push(`check exit ${fc.exit}: ${fc.stderr}`);
      // the function the fault points at (the last name in VALUE) must be named in a reason
      const missing = f.slice(eq + 1).split(/[:=,]/).at(-1);
      if (!lost.some((p) => p.why && p.why.includes(missing))) problems.push(`no probe reported unavailable naming ${missing}`);
      if (!fc.report?.probes?.some((p) => p.probe === 'kfree_skb' && p.state === 'attached')) problems.push('no drop probe attached');
      if (!pass.scenarios.every((s) => s.ok)) problems.push('the tracepoint floor did not classify netfilter_rule');
      result.faults.push({ env, check: fc, unavailable: lost, pass, problems, ok: problems.length === 0 });
    }
    // after the scenarios modules such as nf_conntrack are loaded: probes on them can attach now
    c = check({});
    result.checks.push({ when: 'end', ...c });
  } finally {
    trace.close();
    destroyAll();
  }
  result.ok =
    result.checks.every((c) => c.exit === 0) &&
    result.reasonNames.ok &&
    result.passes.every((p) => !p.error && p.exit === 0 && p.scenarios.every((s) => s.ok)) &&
    result.faults.every((f) => f.ok);
}

const finish = (code) => {
  result.ms = Date.now() - t0;
  const json = JSON.stringify(result, null, 1);
  if (opt.out) {
    mkdirSync(dirname(opt.out), { recursive: true });
    writeFileSync(opt.out, json + '\n');
  } else process.stdout.write(json + '\n');
  process.exit(code);
};
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    destroyAll();
    result.error = `interrupted (${sig})`;
    finish(130);
  });
}
main().then(
  () => finish(result.ok ? 0 : 1),
  (e) => {
    destroyAll();
    result.error = String(e.message ?? e);
    log(`error: ${result.error}`);
    finish(1);
  },
);

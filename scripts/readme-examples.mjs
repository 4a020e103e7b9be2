#!/usr/bin/env node
// The README's examples from a real run: `droptrace check`, `droptrace stream --netns` while
// real drops happen in throw-away namespaces, and the first screen of `droptrace top` in tmux.
// Each example is rewritten in place between its marker comments in README.md
// (<!-- example:NAME --> ... <!-- /example:NAME -->), with the date and kernel it ran on;
// docs/tui.txt is rewritten whole. Volatile values (times, netns inodes, the host name) stay as
// they came. test/readme-examples.test.ts checks that every marker block is there and that
// every JSON line in them passes the NDJSON schema.
//
// Run as root after a build (bash scripts/setup.sh), on a machine where namespaces may be made:
//   node scripts/readme-examples.mjs [--dry-run]      (--dry-run: print, write nothing)
//
// The drops, all in namespaces this script creates (198.18.0.0/15, fd99::/16) and deletes:
//   stream: a DNS query into an iptables DROP rule with a comment (the question and the rule),
//           a datagram to a "ClusterIP" that a DNAT rule sends on to a closed port (the service),
//           pods' UDP inside VXLAN 42 on flannel's port 8472 dropped by a rule on the node (inner),
//           IPv6 multicast nobody joined (benign);
//   neigh:  `droptrace lab neigh-overflow` (IPv6): the table full, and the datagrams queued on
//           entries whose resolution then failed (neigh_resolution_failed, the overflow named);
//   top:    the stream's drops again, `droptrace top` at 100x40 in tmux, no key pressed;
//           docs/tui.txt: the same, and the first screen during neigh-overflow at 120x40.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const README = join(ROOT, 'README.md');
const TUI_TXT = join(ROOT, 'docs', 'tui.txt');
const dryRun = process.argv.includes('--dry-run');

function fail(msg) {
  console.error(`readme-examples: ${msg}`);
  process.exit(1);
}
if (process.getuid?.() !== 0) fail('needs root (BPF programs, network namespaces)');
if (!existsSync(CLI)) fail('dist/ is not built: run bash scripts/setup.sh first');
if (spawnSync('tmux', ['-V']).status !== 0) fail('tmux is not installed (the top example runs in it)');

const { createPair } = await import('../dist/src/lab/pair.js');
const { addVxlan } = await import('../dist/src/lab/overlay.js');
const { findScenario } = await import('../dist/src/lab/index.js');

const log = (s) => console.error(`readme-examples: ${s}`);
const sh = (cmd, args, input) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(input ? { input } : {}) });
const inNs = (ns, cmd, args, input) => sh('ip', ['netns', 'exec', ns, cmd, ...args], input);

function sendUdp(ns, src, sport, dst, dport, count, payload = 'droptrace') {
  const js = `
    const s = require('node:dgram').createSocket(${JSON.stringify(dst.includes(':') ? 'udp6' : 'udp4')});
    s.bind(${sport}, ${JSON.stringify(src)}, async () => {
      for (let i = 0; i < ${count}; i++) await new Promise((r, j) => s.send(${JSON.stringify(payload)}, ${dport}, ${JSON.stringify(dst)}, (e) => e ? j(e) : r()));
      s.close();
    });`;
  inNs(ns, process.execPath, ['-e', js]);
}

/** A real resolver query (Node's c-ares client) from `ns` to `server`: one datagram, no retry. */
function dnsQuery(ns, server, name) {
  inNs(ns, process.execPath, [
    '-e',
    `const r = new (require('node:dns').promises.Resolver)({ timeout: 200, tries: 1 }); r.setServers([${JSON.stringify(server)}]);
     r.resolve4(${JSON.stringify(name)}).catch(() => {});`,
  ]);
}

/** `droptrace stream ARGS` as a child; its lines parsed as they come. */
function stream(args) {
  const child = spawn(process.execPath, [CLI, 'stream', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const run = { child, lines: [], raw: [], err: '' };
  child.stderr.on('data', (d) => (run.err += d));
  const rl = createInterface({ input: child.stdout });
  rl.on('line', (s) => {
    run.raw.push(s);
    run.lines.push(JSON.parse(s));
  });
  run.closed = new Promise((res) => child.on('close', (code) => res(code)));
  run.until = async (what, pred, timeoutMs = 60_000) => {
    const end = Date.now() + timeoutMs;
    while (!pred(run.lines)) {
      if (child.exitCode !== null || Date.now() > end) throw new Error(`droptrace stream ended, or ${timeoutMs} ms passed, waiting for ${what}; stderr: ${run.err}`);
      await sleep(100);
    }
  };
  run.stop = async () => {
    if (child.exitCode === null) child.kill('SIGINT');
    const code = await run.closed;
    if (code !== 0) throw new Error(`droptrace stream exited ${code}: ${run.err}`);
  };
  return run;
}

const drops = (ls) => ls.filter((l) => l.type === 'drop');

/** `droptrace top ARGS` in tmux (private socket, no config) at cols x rows. */
function tmuxTop(dir, args, cols, rows) {
  const sock = join(dir, 'tmux.sock');
  const tmux = (...a) => sh('tmux', ['-S', sock, ...a]);
  const cmd = `env -u CI NO_COLOR=1 LANG=C.UTF-8 ${process.execPath} ${CLI} top ${args.join(' ')} 2>${dir}/err; echo $? >${dir}/rc`;
  tmux('-f', '/dev/null', 'new-session', '-d', '-s', 'top', '-x', String(cols), '-y', String(rows), cmd);
  const screen = () => tmux('capture-pane', '-p', '-t', 'top');
  return {
    screen,
    async until(what, pred, timeoutMs = 60_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const s = screen();
        if (pred(s)) return s;
        if (existsSync(join(dir, 'rc')) || Date.now() > end) throw new Error(`droptrace top ended, or ${timeoutMs} ms passed, waiting for ${what}:\n${s}\n${existsSync(join(dir, 'err')) ? readFileSync(join(dir, 'err'), 'utf8') : ''}`);
        await sleep(100);
      }
    },
    async quit() {
      tmux('send-keys', '-t', 'top', 'q');
      const end = Date.now() + 10_000;
      while (!existsSync(join(dir, 'rc')) && Date.now() < end) await sleep(50);
      spawnSync('tmux', ['-S', sock, 'kill-server'], { stdio: 'ignore' });
    },
  };
}

// --- the pair every stream/top example but neigh-overflow runs on -------------------------

/** Two namespaces, the rules, the service, the tunnel and the pods file; `drive()` makes one round of drops. */
function stage(dir) {
  const p = createPair({ prefix: 'dtrdm' });
  const vip = `198.19.${p.subnet}.10`;
  const vx = addVxlan(p, { vni: 42, dstport: 8472 });
  // the receiving namespace b is the node running CoreDNS: a NetworkPolicy-like DROP rule with
  // its comment closes port 53, a DNAT rule stands for kube-proxy's ClusterIP rule
  const ipt = (args) => inNs(p.b, 'iptables', ['-w', '5', ...args]);
  ipt(['-A', 'INPUT', '-p', 'udp', '--dport', '53', '-m', 'comment', '--comment', 'kube-system/coredns: deny-from-batch (NetworkPolicy)', '-j', 'DROP']);
  inNs(p.a, 'ip', ['route', 'add', `${vip}/32`, 'via', p.ipB]);
  ipt(['-t', 'nat', '-A', 'PREROUTING', '-d', vip, '-p', 'udp', '--dport', '80', '-j', 'DNAT', '--to-destination', `${p.ipB}:8080`]);
  ipt(['-A', 'INPUT', '-p', 'udp', '--dport', '8080', '-m', 'comment', '--comment', 'shop/api: port 8080 closed', '-j', 'DROP']);
  ipt(['-A', 'INPUT', '-p', 'udp', '--dport', '8472', '-m', 'comment', '--comment', 'node firewall: flannel VXLAN from unknown nodes', '-j', 'DROP']);
  const pods = join(dir, 'pods.json');
  writeFileSync(
    pods,
    JSON.stringify([
      { namespace: 'batch', name: 'report-28411', uid: 'u-report', ips: [p.ipA, p.ip6A] },
      { namespace: 'kube-system', name: 'coredns-5d78c9869d-x7k2p', uid: 'u-coredns', ips: [p.ipB, p.ip6B] },
      { namespace: 'shop', name: 'web-6f7b9', uid: 'u-web', ips: [vx.innerA] },
      { namespace: 'shop', name: 'db-0', uid: 'u-db', ips: [vx.innerB] },
    ]),
  );
  const drive = (n = 1) => {
    for (let i = 0; i < n; i++) dnsQuery(p.a, p.ipB, 'orders-db.shop.svc.cluster.local');
    sendUdp(p.a, p.ipA, 41080, vip, 80, n);
    sendUdp(p.a, vx.innerA, 45555, vx.innerB, 5432, n);
    // IPv6 multicast to a group nobody in b joined: freed at ip6_mc_input, benign
    sendUdp(p.a, `${p.ip6A}`, 41900, `ff02::db8:1%${p.vethA}`, 9, n);
  };
  return { p, vip, vx, pods, drive };
}

const isDns = (l) => l.kind === 'netfilter_rule' && l.dns?.name && l.rule;
const isService = (l) => l.service && l.rule;
const isInner = (l) => l.inner && l.rule;
const isBenign = (l) => l.benign === true;

async function streamExample(dir) {
  const st = stage(dir);
  try {
    const args = ['--netns', String(st.p.netnsB), '--pods', st.pods, '--no-pod-discovery', '--counters-interval', '0'];
    const s = stream(args);
    await s.until('the start line', (ls) => ls.length > 0);
    st.drive(1);
    await s.until('the DNS, service, VXLAN and benign drops', (ls) => {
      const d = drops(ls);
      return d.some(isDns) && d.some(isService) && d.some(isInner) && d.some(isBenign);
    });
    await s.stop();
    const pick = (f) => s.raw[s.lines.indexOf(drops(s.lines).find(f))];
    const lines = [s.raw[0], pick(isDns), pick(isService), pick(isInner), pick(isBenign), s.raw.at(-1)];
    return { cmd: `droptrace stream ${args.join(' ').replace(st.pods, 'pods.json')}`, lines };
  } finally {
    st.p.destroy();
  }
}

async function neighExample() {
  const scenario = findScenario('neigh-overflow');
  let s;
  let netns = 0;
  await scenario.run({
    durationMs: 1500,
    beforeProvoke: async (namespaces) => {
      netns = namespaces.find((n) => n.name.endsWith('-a')).netns;
      s = stream(['--netns', String(netns), '--counters-interval', '0']);
      await s.until('the start line', (ls) => ls.length > 0);
    },
  });
  const full = (l) => l.kind === 'neigh_table_full' && l.flow?.dport === 9;
  const failed = (l) => l.kind === 'neigh_resolution_failed' && l.flow?.dport === 9 && / full /.test(l.explain);
  try {
    await s.until('neigh_table_full and neigh_resolution_failed drops of the burst', (ls) => drops(ls).some(full) && drops(ls).some(failed));
  } finally {
    await s.stop();
  }
  const pick = (f) => s.raw[s.lines.indexOf(drops(s.lines).find(f))];
  return { cmd: `droptrace stream --netns ${netns}`, lines: [pick(full), pick(failed), s.raw.at(-1)] };
}

async function topExample(dir) {
  const st = stage(dir);
  const t = tmuxTop(dir, ['--netns', String(st.p.netnsB), '--pods', st.pods, '--no-pod-discovery', '--counters-interval', '1'], 100, 40);
  try {
    await t.until('the LIVE header', (s) => /^droptrace {2}LIVE /m.test(s) && /^probes ✓ kfree_skb/m.test(s));
    // the DNS queries most often, so their rule is the top group and its detail is open; more
    // rounds until the detail names the rule (its snapshot may come after the first drops) and
    // the tables panel has its first sample
    const ready = (s) => /^─ detail: netfilter_rule /m.test(s) && /dropped by rule/.test(s) && /benign \d+ hidden/.test(s) && !/waiting for the first sample/.test(s);
    for (let i = 0; i < 20 && !ready(t.screen()); i++) {
      st.drive(1);
      for (let j = 0; j < 4; j++) dnsQuery(st.p.a, st.p.ipB, 'orders-db.shop.svc.cluster.local');
      await sleep(1000);
    }
    return await t.until('the groups, the benign count, the tables and the open detail naming the rule', ready, 10_000);
  } finally {
    await t.quit();
    st.p.destroy();
  }
}

async function topNeighExample(dir) {
  const scenario = findScenario('neigh-overflow');
  let t;
  try {
    await scenario.run({
      durationMs: 1500,
      beforeProvoke: async (namespaces) => {
        const a = namespaces.find((n) => n.name.endsWith('-a'));
        writeFileSync(join(dir, 'pods.json'), JSON.stringify([{ namespace: 'lab', name: 'burst-1', uid: 'u-burst-1', ips: ['fd99::1', '198.18.0.1'], netns: a.netns }]));
        t = tmuxTop(dir, ['--netns', String(a.netns), '--counters-interval', '0.5', '--pods', `${dir}/pods.json`, '--no-pod-discovery'], 120, 40);
        await t.until('the LIVE header', (s) => /^droptrace {2}LIVE /m.test(s) && /^probes ✓ kfree_skb/m.test(s));
      },
    });
    return await t.until('both neighbour kinds', (s) => /^[› ]neigh_table_full +\d+ /m.test(s) && /^[› ]neigh_resolution_failed +\d+ /m.test(s) && /^─ detail: /m.test(s) && !/waiting for the first sample/.test(s));
  } finally {
    await t?.quit();
  }
}

// --- writing ---------------------------------------------------------------------------------

const trimScreen = (s) => s.replace(/\s+$/, '').split('\n').map((l) => l.replace(/\s+$/, '')).join('\n');

/** Replaces what is between <!-- example:NAME --> and <!-- /example:NAME --> in `text`. */
function replaceBlock(text, name, body) {
  const open = `<!-- example:${name} -->`;
  const close = `<!-- /example:${name} -->`;
  const i = text.indexOf(open);
  const j = text.indexOf(close);
  if (i < 0 || j < i) fail(`README.md has no ${open} ... ${close} block`);
  return text.slice(0, i + open.length) + '\n' + body + '\n' + text.slice(j);
}

/** `make()` again when it fails (a burst that did not fill the table), at most three runs. */
async function thrice(what, make) {
  for (let i = 1; ; i++) {
    try {
      return await make();
    } catch (e) {
      if (i === 3) throw e;
      log(`${what}: run ${i} failed (${e instanceof Error ? e.message.split('\n')[0] : e}), again`);
    }
  }
}

const workDir = mkdtempSync(join(tmpdir(), 'dt-readme-'));
const dirs = ['top'].map((d) => join(workDir, d));
for (const d of dirs) sh('mkdir', ['-p', d]);
try {
  const ranOn = `${new Date().toISOString().slice(0, 10)}, kernel ${release()}`;
  log('droptrace check');
  const check = spawnSync(process.execPath, [CLI, 'check'], { encoding: 'utf8' });
  if (check.status !== 0) fail(`droptrace check exited ${check.status}: ${check.stderr}`);
  log('stream: DNS into a rule, a service, VXLAN, multicast');
  const st = await streamExample(workDir);
  log('stream: neigh-overflow');
  // on a loaded machine a burst sometimes does not fill the table: again, at most three times
  const ne = await thrice('stream: neigh-overflow', () => neighExample());
  log('top: 100x40');
  const top = await topExample(dirs[0]);
  log('top: neigh-overflow, 120x40');
  // on a loaded machine a burst sometimes does not fill the table (every datagram got an entry):
  // that run shows no neigh_table_full, so the scenario runs again, at most three times
  let runs = 0;
  const topNeigh = await thrice('top: neigh-overflow', () => {
    const d = join(workDir, `topneigh${++runs}`);
    sh('mkdir', ['-p', d]);
    return topNeighExample(d);
  });

  const stamp = (what) => `<sub>Real output of ${what}, regenerated by \`node scripts/readme-examples.mjs\` on ${ranOn}.</sub>\n`;
  const fence = (s) => '```\n' + s + '\n```';
  let md = readFileSync(README, 'utf8');
  md = replaceBlock(md, 'check', stamp('`./droptrace check`') + fence(`$ ./droptrace check\n${check.stdout.trimEnd()}`));
  md = replaceBlock(
    md,
    'stream',
    stamp('`droptrace stream` while a pod\'s DNS query hits a DROP rule with a comment, a packet to a ClusterIP (DNAT) hits another, pods\' traffic inside VXLAN 42 (flannel\'s port 8472) hits a third, and IPv6 multicast nobody joined arrives (the start line, those four drop lines and the final stats line)') +
      fence(`$ ${st.cmd}\n${st.lines.join('\n')}`),
  );
  md = replaceBlock(
    md,
    'neigh',
    stamp('`droptrace stream` during `droptrace lab neigh-overflow` (IPv6): a datagram that found the neighbour table full, one that waited on an entry whose resolution then failed, and the final stats line') +
      fence(`$ ${ne.cmd}      # meanwhile: droptrace lab neigh-overflow\n${ne.lines.join('\n')}`),
  );
  const topCmd = 'droptrace top --netns N --pods pods.json';
  md = replaceBlock(md, 'top', stamp(`\`${topCmd}\` in a 100x40 terminal during the drops above, no key pressed`) + fence(trimScreen(top)));
  const tui =
    `The first screen of \`${topCmd}\` (100x40, no key pressed) while a DNS query hits a DROP rule with a comment, a\n` +
    `packet to a ClusterIP (DNAT) and pods' traffic inside VXLAN hit others, and IPv6 multicast nobody joined arrives.\n` +
    `Regenerated by node scripts/readme-examples.mjs on ${ranOn}:\n\n${trimScreen(top)}\n\n` +
    `The first screen of \`droptrace top --netns A --pods pods.json\` during \`droptrace lab neigh-overflow\` (120x40,\n` +
    `no key pressed; test/tui/top-first-screen.e2e.test.ts checks the same screen):\n\n${trimScreen(topNeigh)}\n`;
  if (dryRun) {
    process.stdout.write(md + '\n----- docs/tui.txt -----\n' + tui);
  } else {
    writeFileSync(README, md);
    writeFileSync(TUI_TXT, tui);
    log(`README.md and docs/tui.txt rewritten (${ranOn})`);
  }
} catch (e) {
  // one line, no stack trace: what failed is in the message
  log(`failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
} finally {
  rmSync(workDir, { recursive: true, force: true });
}

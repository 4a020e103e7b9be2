#!/usr/bin/env node
// SPDX-License-Identifier: GPL-2.0
/**
 * Regenerates README.md's examples from a real run (root): `droptrace check`, a few lines of
 * `droptrace stream` and the first screen of `droptrace top`, written between the README's
 * `<!-- example:NAME -->` / `<!-- /example:NAME -->` markers. Nothing in those blocks is typed
 * by hand: run this after a change to what droptrace prints (`npm run readme-examples`).
 *
 * The scene: two throw-away namespaces on 198.18.96.0/24 (dtrx-<id>-a → dtrx-<id>-b), in b an
 * iptables DROP rule for UDP 53 with a kube-proxy-like comment, and from a:
 *  - a DNS query (A kube-dns.kube-system.svc.cluster.local.) to b's port 53: `netfilter_rule`,
 *    with the question and the rule;
 *  - datagrams to an on-link address nobody has: `neigh_resolution_failed`;
 *  - a datagram to a closed port: `no_socket`.
 * droptrace watches namespace a and b (two streams: --netns takes one). Times, inodes, the
 * node's and kernel's names stay as they came: it is a real run. Leaves nothing behind.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const README = join(ROOT, 'README.md');
const id = randomBytes(3).toString('hex');
const A = `dtrx-${id}-a`;
const B = `dtrx-${id}-b`;
const IP_A = '198.18.96.1';
const IP_B = '198.18.96.2';
const NOBODY = '198.18.96.77';
const dir = mkdtempSync(join(tmpdir(), 'dt-readme-'));
const sock = join(dir, 'tmux.sock');

const say = (m) => process.stderr.write(`readme-examples: ${m}\n`);
const run = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const inNs = (ns, cmd, args) => run('ip', ['netns', 'exec', ns, cmd, ...args]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function cleanup() {
  spawnSync('tmux', ['-S', sock, 'kill-server'], { stdio: 'ignore' });
  for (const ns of [A, B]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => (cleanup(), process.exit(130)));

function scene() {
  run('ip', ['netns', 'add', A]);
  run('ip', ['netns', 'add', B]);
  run('ip', ['link', 'add', `dtrxa${id}`, 'netns', A, 'type', 'veth', 'peer', 'name', `dtrxb${id}`, 'netns', B]);
  inNs(A, 'ip', ['addr', 'add', `${IP_A}/24`, 'dev', `dtrxa${id}`]);
  inNs(B, 'ip', ['addr', 'add', `${IP_B}/24`, 'dev', `dtrxb${id}`]);
  for (const [ns, dev] of [[A, `dtrxa${id}`], [B, `dtrxb${id}`]]) {
    inNs(ns, 'ip', ['link', 'set', dev, 'up']);
    inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
    // no IPv6: its link-local chatter would be drops next to the ones shown
    inNs(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
  }
  inNs(B, 'iptables', ['-w', '5', '-A', 'INPUT', '-p', 'udp', '--dport', '53', '-m', 'comment', '--comment', 'kube-system/kube-dns:dns has no endpoints', '-j', 'REJECT']);
  return { a: statSync(`/run/netns/${A}`).ino, b: statSync(`/run/netns/${B}`).ino };
}

/** A DNS query (A record) for `name`, as a resolver sends it. */
const PY_TRAFFIC = `
import socket, struct, sys, time
ip_b, nobody = sys.argv[1], sys.argv[2]
def query(name, qid):
    q = struct.pack('>HHHHHH', qid, 0x0100, 1, 0, 0, 0)
    for part in name.rstrip('.').split('.'):
        q += bytes([len(part)]) + part.encode()
    return q + b'\\0' + struct.pack('>HH', 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(3):
    s.sendto(query('kube-dns.kube-system.svc.cluster.local', 0x5a01 + i), (ip_b, 53))
    time.sleep(0.2)
for i in range(3):
    s.sendto(b'x', (nobody, 8080))
s.sendto(b'x', (ip_b, 9))
`;
const traffic = () => inNs(A, 'python3', ['-c', PY_TRAFFIC, IP_B, NOBODY]);

/** `droptrace stream` over the scene: its lines, once `traffic` is done and the rule named. */
async function stream(netns, seconds, extra = []) {
  const child = spawn(process.execPath, [CLI, 'stream', '--netns', String(netns), '--duration', String(seconds), '--counters-interval', '0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  while (!out.includes('"type":"start"')) {
    if (child.exitCode !== null) throw new Error(`droptrace stream ended: ${err.trim()}`);
    await sleep(50);
  }
  const code = await new Promise((r) => child.on('exit', r));
  if (code !== 0) throw new Error(`droptrace stream exited with ${code}: ${err.trim()}`);
  return out.trim().split('\n').map((l) => JSON.parse(l));
}

function block(text, name, body) {
  const open = `<!-- example:${name} -->`;
  const close = `<!-- /example:${name} -->`;
  const i = text.indexOf(open);
  const j = text.indexOf(close);
  if (i < 0 || j < i) throw new Error(`README.md has no ${open} … ${close} block`);
  return text.slice(0, i + open.length) + '\n' + body + '\n' + text.slice(j);
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('needs root (BPF, network namespaces)');
  const kernel = run('uname', ['-r']).trim();
  const when = new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
  const ns = scene();

  say('droptrace check');
  const check = spawnSync(process.execPath, [CLI, 'check'], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`droptrace check: ${check.stderr.trim()}`);

  say('droptrace stream, namespace a (the client) and b (the DNS server)');
  const [la, lb] = await Promise.all([stream(ns.a, 9), stream(ns.b, 9, ['--stack', '--stack-per-key', '1']), sleep(1500).then(traffic)]);
  const start = lb.find((l) => l.type === 'start');
  const rule = lb.find((l) => l.type === 'drop' && l.kind === 'netfilter_rule' && l.rule && l.dns && l.stack);
  const neigh = la.find((l) => l.type === 'drop' && l.kind === 'neigh_resolution_failed');
  const stats = lb.findLast((l) => l.type === 'stats' && l.final);
  if (!start || !rule || !neigh || !stats) throw new Error(`the run lacks a line it should have: start ${!!start}, rule ${!!rule}, neigh ${!!neigh}, stats ${!!stats}`);

  say('droptrace top in tmux, 100x40');
  const cmd = `env -u CI NO_COLOR=1 LANG=C.UTF-8 ${process.execPath} ${CLI} top --netns ${ns.b} --counters-interval 1 2>${join(dir, 'err')}`;
  run('tmux', ['-S', sock, '-f', '/dev/null', 'new-session', '-d', '-s', 'top', '-x', '100', '-y', '40', cmd]);
  const deadline = Date.now() + 20_000;
  let screen = '';
  let sent = false;
  while (Date.now() < deadline) {
    screen = run('tmux', ['-S', sock, 'capture-pane', '-p', '-t', 'top']);
    if (!sent && screen.includes('drops/s')) {
      traffic();
      sent = true;
    } else if (sent && /─ detail: /.test(screen) && screen.includes('rule')) break;
    await sleep(200);
  }
  await sleep(1500);
  screen = run('tmux', ['-S', sock, 'capture-pane', '-p', '-t', 'top']).replace(/\s+$/gm, '').trimEnd();
  run('tmux', ['-S', sock, 'send-keys', '-t', 'top', 'q']);

  const note = (what) => `<!-- generated by scripts/readme-examples.mjs on ${when}, kernel ${kernel}: ${what} -->`;
  let text = readFileSync(README, 'utf8');
  text = block(text, 'check', `${note('do not edit by hand')}\n\`\`\`\n$ ./droptrace check\n${check.stdout.trimEnd()}\n\`\`\``);
  text = block(
    text,
    'stream',
    `${note('do not edit by hand')}\n\`\`\`\n` +
      `$ ./droptrace stream --netns ${ns.b} --stack --stack-per-key 1   # the DNS server's netns; a client's queries hit a REJECT rule\n` +
      [start, rule, stats].map((l) => JSON.stringify(l)).join('\n') +
      `\n$ ./droptrace stream --netns ${ns.a}   # the client's netns; it also sends to ${NOBODY}, which nobody has\n` +
      JSON.stringify(neigh) +
      '\n```',
  );
  text = block(text, 'top', `${note('the first screen, no key pressed')}\n\`\`\`\n$ ./droptrace top --netns ${ns.b}\n${screen}\n\`\`\``);
  writeFileSync(README, text);
  say(`README.md: check, stream and top examples written (kernel ${kernel})`);
}

try {
  await main();
} catch (e) {
  say(e instanceof Error ? e.message : String(e));
  process.exitCode = 1;
} finally {
  cleanup();
}

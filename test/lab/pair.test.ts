/**
 * The shared namespace pair (src/lab/pair.ts) and the python senders: the plan and the exact
 * commands without root; as root, a real pair with a DROP rule, and a destroy that deletes the
 * namespaces even with a process still running inside them. Without root that part skips.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { DroptraceError } from '../../src/errors.js';
import { createPair, pairSteps, planPair } from '../../src/lab/pair.js';
import type { NsPair } from '../../src/lab/pair.js';
import { senderCommand, senderPath } from '../../src/lab/senders.js';
import type { SenderName } from '../../src/lab/senders.js';

const plan = () =>
  planPair({
    names: ['dtx-a', 'dtx-b'],
    devs: ['dxa', 'dxb'],
    subnet: 7,
    macs: ['02:00:00:00:00:01', '02:00:00:00:00:02'],
    drop: [
      { proto: 'udp', dport: 5301 },
      { proto: 'tcp', dport: [20000, 20009] },
    ],
  });

describe('planPair and pairSteps', () => {
  it('addresses the pair in 198.18.<n>.0/24 and fd99::<n>:0/112, with permanent neighbours both ways', () => {
    const p = plan();
    expect([p.ipA, p.ipB, p.ip6A, p.ip6B, p.len4, p.len6]).toEqual(['198.18.7.1', '198.18.7.2', 'fd99::7:1', 'fd99::7:2', 24, 112]);
    expect(pairSteps(p)).toEqual([
      {
        cmd: 'ip',
        args: ['-batch', '-'],
        input: 'netns add dtx-a\nnetns add dtx-b\nlink add dxa address 02:00:00:00:00:01 netns dtx-a type veth peer name dxb address 02:00:00:00:00:02 netns dtx-b',
      },
      {
        cmd: 'ip',
        args: ['-n', 'dtx-a', '-batch', '-'],
        input: [
          'link set lo up',
          'addr add 198.18.7.1/24 dev dxa',
          'addr add fd99::7:1/112 dev dxa nodad',
          'link set dxa up',
          'neigh replace 198.18.7.2 lladdr 02:00:00:00:00:02 dev dxa nud permanent',
          'neigh replace fd99::7:2 lladdr 02:00:00:00:00:02 dev dxa nud permanent',
        ].join('\n'),
      },
      {
        cmd: 'ip',
        args: ['-n', 'dtx-b', '-batch', '-'],
        input: [
          'link set lo up',
          'addr add 198.18.7.2/24 dev dxb',
          'addr add fd99::7:2/112 dev dxb nodad',
          'link set dxb up',
          'neigh replace 198.18.7.1 lladdr 02:00:00:00:00:01 dev dxb nud permanent',
          'neigh replace fd99::7:1 lladdr 02:00:00:00:00:01 dev dxb nud permanent',
        ].join('\n'),
      },
      { cmd: 'ip', args: ['netns', 'exec', 'dtx-b', 'iptables', '-w', '5', '-A', 'INPUT', '-p', 'udp', '--dport', '5301', '-j', 'DROP'] },
      { cmd: 'ip', args: ['netns', 'exec', 'dtx-b', 'iptables', '-w', '5', '-A', 'INPUT', '-p', 'tcp', '--dport', '20000:20009', '-j', 'DROP'] },
    ]);
  });

  it('turns IPv6 off before addressing, and gives only a a neighbour entry when asked', () => {
    const p = planPair({ names: ['dtx-a', 'dtx-b'], devs: ['dxa', 'dxb'], subnet: 9, net4: '198.19', ipv6: false, neighbours: 'a', macs: ['02:00:00:00:00:01', '02:00:00:00:00:02'] });
    const steps = pairSteps(p);
    expect(steps.slice(1).map((s) => [s.args.slice(0, 4).join(' '), s.input])).toEqual([
      ['netns exec dtx-a sysctl', undefined],
      ['-n dtx-a -batch -', 'link set lo up\naddr add 198.19.9.1/24 dev dxa\nlink set dxa up\nneigh replace 198.19.9.2 lladdr 02:00:00:00:00:02 dev dxa nud permanent'],
      ['netns exec dtx-b sysctl', undefined],
      ['-n dtx-b -batch -', 'link set lo up\naddr add 198.19.9.2/24 dev dxb\nlink set dxb up'],
    ]);
  });

  it('refuses names the kernel or ip would not take, in one line', () => {
    expect(() => planPair({ devs: ['a-much-too-long-dev', 'b'] })).toThrow(new DroptraceError('E_PAIR', 'runtime', 'namespace pair: bad device name "a-much-too-long-dev" (at most 15 letters, digits, _ . -)'));
    expect(() => planPair({ names: ['a b', 'c'] })).toThrow('namespace pair: bad namespace name "a b"');
    expect(() => planPair({ subnet: 256 })).toThrow('namespace pair: subnet wants 0..255, got 256');
  });
});

describe('python senders', () => {
  const names: SenderName[] = ['neigh_burst', 'tcp_listener', 'tcp_connector', 'raw_sender', 'clash_sender', 'udp_send', 'spoof', 'neigh6_burst', 'listen_for', 'connect_hold', 'udp_flood'];
  it('are real files that python3 compiles', () => {
    for (const n of names) expect(existsSync(senderPath(n)), senderPath(n)).toBe(true);
    const r = spawnSync('python3', ['-B', '-c', 'import sys, ast\nfor p in sys.argv[1:]: ast.parse(open(p).read(), p)', ...names.map(senderPath)], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('run by path, unbuffered, without writing bytecode into the package', () => {
    const [python, args] = senderCommand('udp_send', ['198.18.0.1', 1, '198.18.0.2', 2, 3]);
    expect([python.endsWith('python3'), args]).toEqual([true, ['-B', '-u', senderPath('udp_send'), '198.18.0.1', '1', '198.18.0.2', '2', '3']]);
  });
});

const root = process.getuid?.() === 0;
if (!root) console.warn('skipping the real namespace pair test: it needs root');

describe.skipIf(!root)('a real pair (root)', () => {
  let p: NsPair | undefined;
  afterEach(() => p?.destroy());

  it('drops what its rule says in b, knows both inodes, and destroy() leaves nothing even with a process inside', async () => {
    p = createPair({ prefix: 'dtpt', drop: [{ proto: 'udp', dport: 5301 }] });
    expect(p.netnsA).toBeGreaterThan(0);
    expect(p.netnsB).not.toBe(p.netnsA);
    const [python, args] = senderCommand('udp_send', [p.ipA, 40001, p.ipB, 5301, 7]);
    spawnSync('ip', ['netns', 'exec', p.a, python, ...args], { stdio: 'ignore' });
    const rules = spawnSync('ip', ['netns', 'exec', p.b, 'iptables', '-L', 'INPUT', '-v', '-x', '-n'], { encoding: 'utf8' }).stdout;
    expect(rules.split('\n').find((l) => l.includes('dpt:5301'))?.trim().split(/\s+/)[0]).toBe('7');
    // a process inside keeps a namespace alive after `ip netns del`: destroy() kills it first
    const sleeper = spawn('ip', ['netns', 'exec', p.b, 'sleep', '300'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const ended = new Promise<NodeJS.Signals | null>((res) => sleeper.on('exit', (_c, sig) => res(sig)));
    await new Promise((res) => sleeper.on('spawn', res));
    // `ip netns exec` has exec'd sleep once the namespace lists it
    while (!spawnSync('ip', ['netns', 'pids', p.b], { encoding: 'utf8' }).stdout.includes(String(sleeper.pid))) await new Promise((r) => setImmediate(r));
    p.destroy();
    p.destroy(); // idempotent
    expect([existsSync(`/run/netns/${p.a}`), existsSync(`/run/netns/${p.b}`)]).toEqual([false, false]);
    expect(await ended).toBe('SIGKILL');
  });

  it('never deletes a namespace it did not make', () => {
    const name = `dtpt-keep-${process.pid}`;
    spawnSync('ip', ['netns', 'add', name]);
    try {
      expect(() => createPair({ names: [`dtpt-new-${process.pid}`, name] })).toThrow(`namespace pair: namespace ${name} exists already`);
      expect(existsSync(`/run/netns/${name}`)).toBe(true);
      expect(existsSync(`/run/netns/dtpt-new-${process.pid}`)).toBe(false);
    } finally {
      spawnSync('ip', ['netns', 'del', name]);
    }
  });
});

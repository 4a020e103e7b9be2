/**
 * The rule reader on a fake machine: enters the netns through one of its processes, reads rule
 * texts and iptables-nft comments once per rule (not at every snapshot), legacy tables only
 * where the netns has them. The command outputs are the recorded ones of fixtures/rules/.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RuleReader } from '../../../src/host/rules/reader.js';
import { FakeIo } from '../fake-io.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '..', 'fixtures', 'rules', name), 'utf8');
const HOST = 4026531833;
const POD = 4026532320;
const ok = (stdout: string) => ({ code: 0, stdout, stderr: '' });

function machine(): FakeIo {
  const io = new FakeIo();
  io.dirs.set('/proc', ['1', '300', 'self']);
  io.links.set('/proc/self/ns/net', `net:[${HOST}]`);
  io.links.set('/proc/1/ns/net', `net:[${HOST}]`);
  io.links.set('/proc/300/ns/net', `net:[${POD}]`);
  io.files.set('/proc/300/comm', 'pause\n');
  io.files.set('/proc/300/net/ip_tables_names', '');
  io.commands.set('nsenter -t 300 -n nft -j list ruleset', ok(fixture('nft-1.json')));
  io.commands.set('nsenter -t 300 -n nft -a list ruleset', ok(fixture('nft-0.txt')));
  io.commands.set('nsenter -t 300 -n iptables-nft-save -c', ok(fixture('iptables-nft-save-0.txt')));
  return io;
}

describe('RuleReader', () => {
  it('reads texts and comments once per rule; later snapshots only list the counters', async () => {
    const io = machine();
    const reader = new RuleReader(io);
    const first = await reader.read(POD);
    expect(first.rules.map((r) => [r.position, r.text, r.comment, r.packets])).toEqual([
      [1, '-A INPUT -p udp -m udp --dport 5301 -j DROP', 'svc-a: default/dns-a has no endpoints', 3],
      [2, '-A INPUT -p udp -m udp --dport 5302 -j REJECT --reject-with icmp-port-unreachable', 'svc-b', 0],
      [1, 'udp dport 5303 counter drop', 'native-c', 2],
      [2, 'ip saddr 198.18.0.0/24 tcp dport { 80, 443 } counter reject with icmp port-unreachable', null, 0],
      [3, 'udp dport 5304 drop', null, null],
    ]);
    const spawnsAfterFirst = io.execLog.length;
    const again = await reader.read(POD);
    expect(again.rules.map((r) => r.comment)).toEqual(first.rules.map((r) => r.comment));
    expect(io.execLog.slice(spawnsAfterFirst)).toEqual(['nsenter -t 300 -n nft -j list ruleset']);
    expect(io.execLog.filter((c) => c.includes('legacy'))).toEqual([]);
  });

  it('adds legacy iptables rules where the netns has legacy tables', async () => {
    const io = machine();
    io.files.set('/proc/300/net/ip_tables_names', 'filter\n');
    io.commands.set('nsenter -t 300 -n iptables-legacy-save -c', ok(fixture('iptables-legacy-save.txt')));
    const snap = await new RuleReader(io).read(POD);
    expect(snap.rules.filter((r) => r.backend === 'iptables-legacy').map((r) => [r.table, r.chain, r.position, r.comment])).toEqual([
      ['filter', 'INPUT', 1, 'legacy svc'],
      ['filter', 'INPUT', 2, null],
      ['filter', 'INPUT', 4, null],
    ]);
  });

  it('fails with one line when nft fails or the netns is gone', async () => {
    const io = machine();
    io.commands.set('nsenter -t 300 -n nft -j list ruleset', { code: 1, stdout: '', stderr: 'netlink: Error: cache initialization failed: Operation not permitted\n' });
    await expect(new RuleReader(io).read(POD)).rejects.toThrow('nft -j list ruleset: netlink: Error: cache initialization failed: Operation not permitted');
    await expect(new RuleReader(machine()).read(4026539999)).rejects.toThrow('netns 4026539999 cannot be entered (no process and no name)');
  });
});

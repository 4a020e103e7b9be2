/**
 * The drops the kernel matrix provokes, each in its own namespace pair (src/lab/pair.ts, on
 * 198.19.<n>.0/24 and fd99::<n>:0/112): what DESIGN.md's classification says each one is, on
 * every kernel, and whether its count is deterministic.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createPair } from '../src/lab/pair.js';
import type { NsPair } from '../src/lab/pair.js';
import { senderCommand } from '../src/lab/senders.js';
import type { Line } from './droptrace.js';
import { inNs, py, readOr, SLOW, tryWrite } from './util.js';

const made: NsPair[] = [];
let pairs = 0;

/**
 * A pair for one scenario; ip -batch keeps it to few processes (each costs a lot in a
 * software-emulated guest), and static neighbours keep every scenario off ARP/NDP timing.
 */
export function makePair(): NsPair {
  const id = randomBytes(3).toString('hex');
  const n = 100 + ((pairs++ * 7 + randomBytes(1)[0]!) % 150);
  const p = createPair({ names: [`dtk${id}a`, `dtk${id}b`], devs: [`dka${id}`, `dkb${id}`], subnet: n, net4: '198.19' });
  made.push(p);
  return p;
}

export function destroyAll(): void {
  for (const p of made.splice(0)) p.destroy();
}

export interface Expect {
  family: string;
  kind: string;
  reason?: string;
}

export interface Scenario {
  name: string;
  /** in the smoke set */
  smoke?: boolean;
  /** changes machine-wide settings for a second or two */
  global?: boolean;
  what: string;
  expect: Expect;
  /** the drop count is deterministic (else: at least one) */
  exact?: number;
  setup?: (p: NsPair) => void;
  /** provokes the drops; may return what to do once they were measured */
  act: (p: NsPair) => unknown;
  /** the drops of this scenario among everything the stream reports */
  mine: (d: Line, p: NsPair) => boolean;
}

export const SCENARIOS: Scenario[] = [
  {
    name: 'netfilter_rule',
    smoke: true,
    what: 'iptables -A INPUT -p udp --dport 5301 -j DROP; 20 UDP datagrams',
    expect: { family: 'netfilter', kind: 'netfilter_rule', reason: 'NETFILTER_DROP' },
    exact: 20,
    setup: (p) => inNs(p.b, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '5301', '-j', 'DROP']),
    act: (p) => py(p.a, 'udp_send', [p.ipA, 41001, p.ipB, 5301, 20]),
    mine: (d, p) => d.netns === p.netnsB && d.flow?.dport === 5301,
  },
  {
    name: 'no_socket',
    smoke: true,
    what: '5 UDP datagrams to a closed port',
    expect: { family: 'other', kind: 'no_socket', reason: 'NO_SOCKET' },
    exact: 5,
    act: (p) => py(p.a, 'udp_send', [p.ipA, 41002, p.ipB, 5302, 5]),
    mine: (d, p) => d.netns === p.netnsB && d.flow?.dport === 5302,
  },
  {
    name: 'martian_source',
    what: '5 raw UDP datagrams with the forged source 127.0.0.9',
    expect: { family: 'martian', kind: 'martian_source' },
    exact: 5,
    act: (p) => py(p.a, 'spoof', ['127.0.0.9', p.ipB, 41003, 5303, 5]),
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
    act: (p) => py(p.a, 'spoof', ['198.19.250.9', p.ipB, 41004, 5304, 5]),
    mine: (d, p) => d.netns === p.netnsB && d.flow?.dport === 5304,
  },
  {
    name: 'conntrack_invalid',
    what: 'iptables -A INPUT -m conntrack --ctstate INVALID -j DROP; 3 TCP segments with SYN and FIN set',
    expect: { family: 'conntrack', kind: 'conntrack_invalid', reason: 'NETFILTER_DROP' },
    exact: 3,
    setup: (p) => inNs(p.b, 'iptables', ['-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP']),
    act: (p) => py(p.a, 'spoof', [p.ipA, p.ipB, 41006, 5306, 3, 'synfin']),
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
    act: (p) => py(p.a, 'udp_send', [p.ipA, 41007, `198.19.${p.subnet}.77`, 5307, 3]),
    mine: (d, p) => d.netns === p.netnsA && d.flow?.dport === 5307,
  },
  {
    name: 'neigh_table_full',
    global: true,
    what: 'IPv6 gc_thresh3 lowered to 256 for ~2 s; 600 datagrams to distinct on-link addresses',
    expect: { family: 'neigh', kind: 'neigh_table_full', reason: 'NEIGH_CREATEFAIL' },
    act: (p) => {
      const base = '/proc/sys/net/ipv6/neigh/default/';
      const saved = ['gc_thresh1', 'gc_thresh2', 'gc_thresh3'].map((k) => [k, readOr(base + k)?.trim()] as const);
      try {
        // the table is shared by every namespace: lower the limit only for the burst
        tryWrite(base + 'gc_thresh1', 64);
        tryWrite(base + 'gc_thresh2', 128);
        tryWrite(base + 'gc_thresh3', 256);
        py(p.a, 'neigh6_burst', [`fd99::${p.subnet}:`, 600, 41005]);
      } finally {
        for (const [k, v] of saved) if (v) tryWrite(base + k, v);
      }
    },
    // without drop reasons (before 5.17): the place that frees a packet whose neighbour could not be created
    mine: (d, p) => d.netns === p.netnsA && (d.reason === null ? d.location === 'ip6_finish_output2' : d.reason === 'NEIGH_CREATEFAIL'),
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
      const [python, args] = senderCommand('listen_for', [p.ipB, 5310, 30 * SLOW]);
      const listener = spawn('ip', ['netns', 'exec', p.b, python, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
      try {
        await new Promise((res) => listener.stdout.once('data', res));
        tryWrite(max, 30);
        py(p.a, 'connect_hold', [p.ipB, 5310, 45, 1.5]);
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

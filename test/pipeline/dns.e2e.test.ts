/**
 * The fate of DNS queries end to end, as root: a client namespace queries a tiny DNS responder
 * in a second one, whose nft rule drops every third query (the rule's counter is the truth);
 * `droptrace stream --dns --netns <client>` must count exactly that many unanswered, the
 * answered ones exactly as the client saw them, and queries the client's own OUTPUT rule drops
 * as dropped on this node, with their kind.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inNs, makePair, sendUdp } from '../helpers/netns.js';
import type { Pair } from '../helpers/netns.js';
import { schemaErrors } from '../helpers/schema.js';
import { startStream } from '../helpers/stream.js';
import type { Line } from '../helpers/stream.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('skipping end-to-end DNS tests: they need root (BPF programs, network namespaces)');

/** answers every query with one A record (the question echoed, then 198.18.0.53) */
const RESPONDER = `
  const s = require('node:dgram').createSocket('udp4');
  s.on('message', (q, r) => {
    const a = Buffer.concat([q.subarray(0, 2), Buffer.from([0x81, 0x80]), q.subarray(4, 6), Buffer.from([0, 1, 0, 0, 0, 0]), q.subarray(12),
      Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 18, 0, 53])]);
    s.send(a, r.port, r.address);
  });
  s.bind(53, process.argv[1], () => console.log('ready'));`;

/** N queries, one socket each (or all from SPORT), each waiting 300 ms for its answer; prints how many came */
const CLIENT = `
  const dgram = require('node:dgram');
  const [dst, n, sport] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
  const q = (id) => Buffer.concat([Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.from('\\x04cart\\x04shop\\x00', 'latin1'), Buffer.from([0, 1, 0, 1])]);
  (async () => {
    let answered = 0;
    for (let i = 0; i < n; i++) {
      const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
      await new Promise((r) => s.bind(sport || 0, r));
      answered += await new Promise((r) => {
        const t = setTimeout(() => r(0), 300);
        s.on('message', () => { clearTimeout(t); r(1); });
        s.send(q(i + 1), 53, dst);
      });
      s.close();
    }
    console.log(JSON.stringify({ answered }));
  })();`;

const dnsLines = (ls: Line[]) => ls.filter((l) => l.type === 'dns');
const sum = (ls: Line[], f: string) => ls.reduce((n, l) => n + (l[f] as number), 0);

describe.skipIf(!isRoot)('droptrace stream --dns, end to end', () => {
  let p: Pair;
  let responder: ReturnType<typeof spawn> | null = null;
  beforeAll(async () => {
    p = makePair();
    sendUdp(p.a, p.ipA, 40000, p.ipB, 9, 1);
    responder = spawn('ip', ['netns', 'exec', p.b, process.execPath, '-e', RESPONDER, p.ipB], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((res) => responder!.stdout!.once('data', () => res()));
    // every third query to the resolver is dropped there, beyond the traced "node" (the client's netns)
    inNs(p.b, 'nft', ['add table inet dtdns; add chain inet dtdns in { type filter hook input priority 0; }; add rule inet dtdns in udp dport 53 numgen inc mod 3 == 0 counter drop']);
    // queries from port 45000 are dropped by the client's own OUTPUT rule: on this node
    inNs(p.a, 'iptables', ['-A', 'OUTPUT', '-p', 'udp', '--sport', '45000', '--dport', '53', '-j', 'DROP']);
  });
  afterAll(() => {
    responder?.kill();
    p?.destroy();
  });

  it('unanswered exactly as the router dropped, answered as the client saw, dropped on this node with its kind, and the verdict', async () => {
    const N = 60;
    const LOCAL = 5;
    const s = startStream(['--dns', '--dns-timeout', '1', '--netns', String(p.netnsA), '--stats-interval', '1', '--counters-interval', '0']);
    try {
      const start = await s.ready;
      expect((start.probes as Array<{ probe: string; state: string }>).filter((x) => x.probe === 'dns').map((x) => x.state)).toEqual(['attached', 'attached']);
      const client = JSON.parse(inNs(p.a, process.execPath, ['-e', CLIENT, p.ipB, String(N), '0'])) as { answered: number };
      JSON.parse(inNs(p.a, process.execPath, ['-e', CLIENT, p.ipB, String(LOCAL), '45000']));
      await s.until((ls) => sum(dnsLines(ls), 'queries') >= N + LOCAL, 20_000);
      expect((await s.stop()).code).toBe(0);
      const routerDropped = Number(/packets (\d+)/.exec(inNs(p.b, 'nft', ['list', 'table', 'inet', 'dtdns']))![1]);
      const lines = dnsLines(s.lines);
      const answered = sum(lines, 'answered');
      const unanswered = sum(lines, 'unanswered');
      const dropped = sum(lines, 'dropped');
      expect({ queries: sum(lines, 'queries'), answered, unanswered, dropped }).toEqual({ queries: N + LOCAL, answered: client.answered, unanswered: routerDropped, dropped: LOCAL });
      expect(routerDropped).toBe(N / 3);
      for (const l of lines) {
        expect(l).toMatchObject({ netns: p.netnsA, client: p.ipA, resolver: p.ipB, resolver_port: 53, pod: null });
      }
      const kinds: Record<string, number> = {};
      for (const l of lines) for (const [k, n] of Object.entries(l.drop_kinds as Record<string, number>)) kinds[k] = (kinds[k] ?? 0) + n;
      expect(kinds).toEqual({ netfilter_rule: LOCAL });
      const verdicts = lines.filter((l) => typeof l.verdict === 'string').map((l) => l.verdict as string);
      expect(verdicts.length).toBeGreaterThan(0);
      expect(verdicts[0]).toMatch(new RegExp(`^DNS from ${p.ipA.replace(/\./g, '\\.')} \\(netns ${p.netnsA}\\) to ${p.ipB.replace(/\./g, '\\.')}:53: \\d+% unanswered in the last \\d+ s, none dropped on this node; lost beyond this node, between it and the resolver`));
      const st = s.lines.find((l) => l.type === 'stats' && l.final === true)!.dns as Record<string, unknown>;
      expect(st).toMatchObject({ lost: { ring_buffer: 0, userspace: 0 }, decode_errors: 0, pending: 0, evicted: 0, unmatched_answers: 0 });
      // every query the kernel saw leave and every answer it saw arrive
      expect(st.seen).toBe(N + answered);
      expect(schemaErrors(s.lines)).toEqual([]);
    } finally {
      await s.stop();
    }
  }, 60_000);
});

/**
 * Packets the receiver's input route lookup refuses (ip_rcv_finish_core), sent with a forged
 * IPv4 source through a raw socket in the neighbouring namespace. Nothing global changes:
 * rp_filter is set in the receiver's own namespace.
 *
 * martian-source  source 127.0.0.9 (loopback arriving on a veth, route_localnet=0):
 *                 IP_LOCALNET; source = the receiver's own address: IP_LOCAL_SOURCE.
 * rp-filter       rp_filter=1 and the source's network routed via another interface of the
 *                 receiver: IP_RPFILTER.
 */
import { DroptraceError } from '../errors.js';
import { beforeProvoke, netstatCounter, observe, runLab } from './session.js';
import type { LabOptions, LabResult, Scenario } from './types.js';

const PER_KIND = 4;
const DPORT = 9;

function ipv4Only(name: string, opts: LabOptions): void {
  if (opts.family === 6) throw new DroptraceError('E_USAGE', 'usage', `lab scenario ${name} is IPv4 only (these checks are IPv4's input route)`, { hint: 'drop --family 6' });
}

async function martianSource(opts: LabOptions): Promise<LabResult> {
  ipv4Only('martian-source', opts);
  return runLab('martian-source', opts, async (lab) => {
    const p = await lab.pair();
    const loop = { proto: 'udp' as const, src: '127.0.0.9', dst: p.ip4B, sport: 40000, dport: DPORT };
    const self = { proto: 'udp' as const, src: p.ip4B, dst: p.ip4B, sport: 40001, dport: DPORT };
    const packets = [...Array<typeof loop>(PER_KIND).fill(loop), ...Array<typeof self>(PER_KIND).fill(self)];
    const sender = lab.helper(p.a.name, 'raw udp sender', 'raw_sender', { packets });
    await sender.expect('ready');
    await beforeProvoke(lab, opts);
    const started = Date.now();
    sender.send('go');
    const res = await sender.expectJson<{ sent: number }>('done');
    lab.notes.push(`${PER_KIND} UDP datagrams from 127.0.0.9 and ${PER_KIND} from ${p.ip4B} (the receiver's own address) sent by ${p.a.name} through a raw socket`);
    lab.log(`sent ${res.sent} datagrams with forged sources`);
    await observe(lab, started, opts.durationMs ?? 0);
    return {
      expect: [
        { family: 'martian', kind: 'martian_source', reason: 'IP_LOCALNET', netns: p.b.netns, flow: loop, count: PER_KIND },
        { family: 'martian', kind: 'martian_source', reason: 'IP_LOCAL_SOURCE', netns: p.b.netns, flow: self, count: PER_KIND },
      ],
    };
  });
}

async function rpFilter(opts: LabOptions): Promise<LabResult> {
  ipv4Only('rp-filter', opts);
  return runLab('rp-filter', opts, async (lab) => {
    const p = await lab.pair();
    // The receiver reaches 198.19.0.0/24 through a second interface (a veth whose both ends
    // it owns), so a packet from there arriving on dtv1 fails the strict reverse-path check.
    await lab.ip(p.b.name, ['link', 'add', 'dtv2', 'type', 'veth', 'peer', 'name', 'dtv3']);
    await lab.ip(p.b.name, ['addr', 'add', '198.19.0.1/24', 'dev', 'dtv2']);
    await lab.ip(p.b.name, ['link', 'set', 'dtv2', 'up']);
    await lab.ip(p.b.name, ['link', 'set', 'dtv3', 'up']);
    await lab.nsSysctl(p.b.name, 'net.ipv4.conf.all.rp_filter', 1);
    await lab.nsSysctl(p.b.name, `net.ipv4.conf.${p.devB}.rp_filter`, 1);
    const flow = { proto: 'udp' as const, src: '198.19.0.7', dst: p.ip4B, sport: 40000, dport: DPORT };
    const sender = lab.helper(p.a.name, 'raw udp sender', 'raw_sender', { packets: Array<typeof flow>(PER_KIND).fill(flow) });
    await sender.expect('ready');
    await beforeProvoke(lab, opts);
    const rpf = async () => netstatCounter(await lab.readNsFile(p.b.name, '/proc/net/netstat'), 'TcpExt', 'IPReversePathFilter');
    const rpfBefore = await rpf();
    const started = Date.now();
    sender.send('go');
    const res = await sender.expectJson<{ sent: number }>('done');
    lab.notes.push(`${p.b.name} TcpExtIPReversePathFilter +${(await rpf()) - rpfBefore}`);
    lab.notes.push(`${p.b.name}: rp_filter=1 (all and ${p.devB}), 198.19.0.0/24 routed via dtv2; ${res.sent} UDP datagrams from 198.19.0.7 arrive on ${p.devB}`);
    lab.log(`sent ${res.sent} datagrams from a source routed via another interface`);
    await observe(lab, started, opts.durationMs ?? 0);
    return {
      expect: [{ family: 'martian', kind: 'rp_filter', reason: 'IP_RPFILTER', netns: p.b.netns, flow, count: PER_KIND }],
    };
  });
}

export const martianSourceScenario: Scenario = {
  name: 'martian-source',
  summary: 'forged IPv4 sources (127.0.0.9, the receiver\'s own address) dropped by the input route: IP_LOCALNET, IP_LOCAL_SOURCE',
  run: martianSource,
};

export const rpFilterScenario: Scenario = {
  name: 'rp-filter',
  summary: 'strict reverse-path filter (rp_filter=1 in the receiver namespace) drops a source routed via another interface: IP_RPFILTER',
  run: rpFilter,
};

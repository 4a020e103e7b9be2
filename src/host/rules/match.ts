/**
 * Could this rule have matched this drop's flow? 'nomatch' only when a condition it can read
 * (protocol, ports, addresses, IP version) says no; 'match' when every condition says yes;
 * 'unknown' when some condition is beyond what the flow tells (ct state, marks, sets, devices).
 */
import { BlockList, isIPv6 } from 'node:net';
import type { Flow } from '../../pipeline/events.js';
import type { Cond, RuleInfo } from './types.js';

export type FlowMatch = 'match' | 'nomatch' | 'unknown';

const PROTO_NUMBERS: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58, 'ipv6-icmp': 58 };
const protoNumber = (p: string | number): number | undefined => (typeof p === 'number' ? p : PROTO_NUMBERS[p.toLowerCase()]);

export function matchFlow(r: RuleInfo, flow: Flow | null): FlowMatch {
  if (flow === null) return 'unknown';
  const ver = isIPv6(flow.src) ? 6 : 4;
  if ((r.family === 'ip' && ver !== 4) || (r.family === 'ip6' && ver !== 6) || r.family === 'arp') return 'nomatch';
  let unknown = r.family === 'bridge' || r.family === 'netdev';
  for (const c of r.conds) {
    const v = condHolds(c, flow, ver);
    if (v === false) return 'nomatch';
    if (v === null) unknown = true;
  }
  return unknown ? 'unknown' : 'match';
}

function condHolds(c: Cond, f: Flow, ver: 4 | 6): boolean | null {
  let hit: boolean;
  switch (c.key) {
    case 'unknown':
      return null;
    case 'ipver':
      hit = c.values.includes(ver);
      break;
    case 'proto': {
      const mine = protoNumber(f.proto);
      if (mine === undefined) return null;
      hit = c.values.some((v) => protoNumber(v) === mine);
      break;
    }
    case 'sport':
    case 'dport': {
      const port = c.key === 'sport' ? f.sport : f.dport;
      // a port rule never matches a packet without ports (ICMP)
      if (port === undefined) return c.neg ? null : false;
      hit = c.values.some((v) => (typeof v === 'number' ? v === port : port >= v.lo && port <= v.hi));
      break;
    }
    case 'saddr':
    case 'daddr': {
      const ip = c.key === 'saddr' ? f.src : f.dst;
      hit = c.values.some((v) => inNet(ip, v.addr, v.len));
      break;
    }
  }
  return c.neg ? !hit : hit;
}

function inNet(ip: string, addr: string, len: number | null): boolean {
  const t = isIPv6(addr) ? 'ipv6' : 'ipv4';
  if ((t === 'ipv6') !== isIPv6(ip)) return false;
  const b = new BlockList();
  try {
    if (len === null) b.addAddress(addr, t);
    else b.addSubnet(addr, len, t);
    return b.check(ip, t);
  } catch {
    return false;
  }
}

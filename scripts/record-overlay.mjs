#!/usr/bin/env node
// Records real ring-buffer records of tunnelled drops for the overlay decode tests
// (test/pipeline/overlay.test.ts): UDP between pods inside VXLAN 42 (4789) dropped by a rule on
// the receiving node, an ARP frame inside the same tunnel, IPv6 pods inside VXLAN 72 sent to
// 8472 where the peer listens on 4789 only, and a hand-made Geneve datagram with options and
// an ICMP echo inside. Run as root after a build:
//   node scripts/record-overlay.mjs > test/fixtures/golden-overlay-6.18.json
import { EVENT_FIELDS } from '../dist/src/gen/record.js';
import { createPair } from '../dist/src/lab/pair.js';
import { addVxlan, sendGeneve } from '../dist/src/lab/overlay.js';
import { capture, ns, writeFixture } from './record-lib.mjs';

const sendUdp = (n, src, sport, dst, dport, count) =>
  ns(n, process.execPath, '-e', `
    const s = require('node:dgram').createSocket('${dst.includes(':') ? 'udp6' : 'udp4'}');
    s.bind(${sport}, '${src}', async () => {
      for (let i = 0; i < ${count}; i++) await new Promise((r) => s.send('overlay', ${dport}, '${dst}', r));
      s.close();
    });`);

const p = createPair({ prefix: 'dtrec', subnet: 9 });
try {
  const vx42 = addVxlan(p, { vni: 42, dstport: 4789 });
  const vx72 = addVxlan(p, { vni: 72, dstport: 8472, onlyA: true, ipv6: true });
  ns(p.b, 'iptables', '-w', '5', '-A', 'INPUT', '-p', 'udp', '--dport', '4789', '-j', 'DROP');
  const records = [];
  const want = new Set(['vxlan-udp4', 'vxlan-arp', 'vxlan-udp6', 'geneve-icmp']);
  const seen = new Set();
  await capture(p.netnsB, (r) => {
    const encap = r[EVENT_FIELDS.encap[0]];
    const l4 = r[EVENT_FIELDS.inner_l4_proto[0]];
    const v6 = r[EVENT_FIELDS.inner_flags[0]] & 2;
    const what = encap === 2 ? 'geneve-icmp' : encap !== 1 ? '' : l4 === 0 ? 'vxlan-arp' : l4 === 17 ? (v6 ? 'vxlan-udp6' : 'vxlan-udp4') : '';
    // one of each, in the order above
    if (want.has(what) && !seen.has(what)) {
      seen.add(what);
      records.push([what, r.toString('hex')]);
    }
  }, () => {
    sendUdp(p.a, vx42.innerA, 5555, vx42.innerB, 7777, 1);
    // no neighbour entry for .3: the kernel asks for it by ARP, inside the tunnel
    sendUdp(p.a, vx42.innerA, 5557, '198.19.42.3', 7777, 1);
    sendUdp(p.a, vx72.inner6A, 6000, vx72.inner6B, 7000, 1);
    sendGeneve(p.a, { src: p.ip6A, sport: 40066, dst: p.ip6B, vni: 0xabcdef, optionBytes: 8, innerSrc: '198.19.66.1', innerDst: '198.19.66.2', count: 1 });
  }).catch(() => {});
  const order = [...want];
  records.sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0]));
  if (records.length !== want.size) throw new Error(`recorded ${records.map((r) => r[0]).join(', ')}; wanted ${order.join(', ')}`);
  const addrs = { outerA: p.ipA, outerB: p.ipB, outer6A: p.ip6A, outer6B: p.ip6B, netnsB: p.netnsB, ...vx42, vx72: vx72 };
  writeFixture(records.map((r) => r[1]), { what: order, addrs });
} finally {
  p.destroy();
}

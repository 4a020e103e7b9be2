#!/usr/bin/env node
// Records real ring-buffer records of drops after DNAT for the decoder's Services tests
// (test/fixtures/golden-dnat-6.18.json): a datagram to a "ClusterIP" translated to a port a
// rule drops, a DNS query likewise, a TCP SYN, and the IPv6 datagram, in throw-away
// namespaces (198.18.7.0/24, 198.19.7.0/24, fd99::/16). Run as root after a build:
//   node scripts/record-golden-dnat.mjs > test/fixtures/golden-dnat-6.18.json
import { EVENT_FIELDS } from '../dist/src/gen/record.js';
import { capture, ns, vethPair, writeFixture } from './record-lib.mjs';

const A = 'dtdnata', B = 'dtdnatb';
const { netnsB, cleanup } = vethPair(A, B, 'dtdv');
try {
  ns(A, 'ip', 'route', 'add', '198.19.7.0/24', 'via', '198.18.7.2');
  ns(A, 'ip', '-6', 'route', 'add', 'fd99:53::/64', 'via', 'fd99::7:2');
  const dnat = (cmd, vip, proto, port, to) => ns(B, cmd, '-t', 'nat', '-A', 'PREROUTING', '-d', vip, '-p', proto, '--dport', String(port), '-j', 'DNAT', '--to-destination', to);
  dnat('iptables', '198.19.7.10', 'udp', 53, '198.18.7.2:5353');
  dnat('iptables', '198.19.7.11', 'udp', 53, '198.18.7.2:53');
  dnat('iptables', '198.19.7.12', 'tcp', 80, '198.18.7.2:8080');
  dnat('ip6tables', 'fd99:53::7:10', 'udp', 53, '[fd99::7:2]:5353');
  for (const [cmd, proto, port] of [['iptables', 'udp', 5353], ['iptables', 'udp', 53], ['iptables', 'tcp', 8080], ['ip6tables', 'udp', 5353]])
    ns(B, cmd, '-A', 'INPUT', '-p', proto, '--dport', String(port), '-j', 'DROP');
  const send = (proto, src, sport, dst, port, payload = "'golden'") => ns(A, process.execPath, '-e', `
    const s=require('node:dgram').createSocket('${proto}');
    s.bind(${sport},'${src}',()=>s.send(${payload},${port},'${dst}',()=>s.close()));`);
  send('udp4', '198.18.7.1', 41000, '198.18.7.2', 9); // resolve neighbours first
  send('udp6', 'fd99::7:1', 41000, 'fd99::7:2', 9);
  const records = [];
  await capture(netnsB, (r) => {
    // only the drops after DNAT (the netns' own chatter is no fixture)
    if (r[EVENT_FIELDS.dnat_family[0]] !== 0) records.push(r.toString('hex'));
  }, () => {
    send('udp4', '198.18.7.1', 41010, '198.19.7.10', 53);
    // a DNS query (A record of kube-dns.droptrace.test) to the "ClusterIP", translated to :53
    send('udp4', '198.18.7.1', 41011, '198.19.7.11', 53, `Buffer.concat([Buffer.from([0x12,0x34,1,0,0,1,0,0,0,0,0,0]),
        ...'kube-dns.droptrace.test'.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
        Buffer.from([0,0,1,0,1])])`);
    ns(A, process.execPath, '-e', `require('node:net').connect({host:'198.19.7.12',port:80,localAddress:'198.18.7.1',localPort:41012}).on('error',()=>{}); setTimeout(()=>process.exit(0),300)`);
    send('udp6', 'fd99::7:1', 41013, 'fd99:53::7:10', 53);
  });
  writeFixture(records);
} finally {
  cleanup();
}

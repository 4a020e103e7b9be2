#!/usr/bin/env node
// Records real ring-buffer records for the decoder's golden tests (test/fixtures/golden.json):
// UDP to a closed port (IPv4 and IPv6), a rule drop and a spoofed source, in throw-away
// namespaces. Run as root after a build: node scripts/record-golden.mjs > test/fixtures/golden-6.18.json
import { capture, ns, vethPair, writeFixture } from './record-lib.mjs';

const A = 'dtgolda', B = 'dtgoldb';
const { netnsB, cleanup } = vethPair(A, B, 'dtgv');
try {
  ns(B, 'iptables', '-A', 'INPUT', '-p', 'tcp', '--dport', '8080', '-j', 'DROP');
  ns(B, 'iptables', '-A', 'INPUT', '-p', 'udp', '--dport', '53', '-j', 'DROP');
  const send = (proto, src, dst, port) => ns(A, process.execPath, '-e', `
    const s=require('node:dgram').createSocket('${proto}');
    s.bind(41000,'${src}',()=>s.send('golden',${port},'${dst}',()=>s.close()));`);
  send('udp4', '198.18.7.1', '198.18.7.2', 9); // resolve neighbours first
  send('udp6', 'fd99::7:1', 'fd99::7:2', 9);
  const records = [];
  await capture(netnsB, (r) => records.push(r.toString('hex')), () => {
    send('udp4', '198.18.7.1', '198.18.7.2', 5400);
    send('udp6', 'fd99::7:1', 'fd99::7:2', 5406);
    ns(A, process.execPath, '-e', `require('node:net').connect({host:'198.18.7.2',port:8080,localAddress:'198.18.7.1',localPort:41001}).on('error',()=>{}); setTimeout(()=>process.exit(0),300)`);
    ns(A, 'python3', '-c', `
import socket,struct
p=b'golden'; u=struct.pack('!HHHH',41002,5403,8+len(p),0)+p
h=struct.pack('!BBHHHBBH4s4s',0x45,0,20+len(u),1,0,64,17,0,socket.inet_aton('127.0.0.9'),socket.inet_aton('198.18.7.2'))
socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_RAW).sendto(h+u,('198.18.7.2',0))`);
    // a DNS query (A record of kube-dns.droptrace.test) into the port-53 DROP rule
    ns(A, process.execPath, '-e', `
      const q = Buffer.concat([Buffer.from([0x12,0x34,1,0,0,1,0,0,0,0,0,0]),
        ...'kube-dns.droptrace.test'.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
        Buffer.from([0,0,1,0,1])]);
      const s=require('node:dgram').createSocket('udp4');
      s.bind(41003,'198.18.7.1',()=>s.send(q,53,'198.18.7.2',()=>s.close()));`);
  });
  writeFixture(records);
} finally {
  cleanup();
}

# SPDX-License-Identifier: GPL-2.0
"""Shared by the lab's senders: the JSON argument, the line protocol, raw IPv4/TCP/UDP builders.

Protocol (Helper in src/lab/helper.ts): a sender prints `ready` once its sockets exist, waits
for `go` on stdin, provokes, prints `done <json>`; some then wait for one more line before they
close their sockets. Standard library only: python3 is on every Debian, Node has no raw sockets.
"""
import errno, json, socket, struct, sys

# the lab's senders take one JSON argument; the positional ones (udp_send.py ...) none of this
A = json.loads(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].startswith('{') else {}


def say(*parts):
    print(*parts, flush=True)


def wait_go():
    say('ready')
    if sys.stdin.readline().strip() != 'go':
        sys.exit(0)


def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def ip4(src, dst, proto, l4):
    # the kernel fills in total length, id and header checksum for IP_HDRINCL
    return struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(l4), 0, 0x4000, 64, proto, 0,
                       socket.inet_aton(src), socket.inet_aton(dst)) + l4


def tcp4(src, dst, sport, dport, flags, seq=1000, ack=0):
    h = struct.pack('!HHIIBBHHH', sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    ph = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, 6, len(h))
    return ip4(src, dst, 6, h[:16] + struct.pack('!H', csum(ph + h)) + h[18:])


def udp4(src, dst, sport, dport, data=b'droptrace-lab'):
    # UDP checksum 0: "none", valid for IPv4
    return ip4(src, dst, 17, struct.pack('!HHHH', sport, dport, 8 + len(data), 0) + data)


def raw4():
    return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno))

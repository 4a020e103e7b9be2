# SPDX-License-Identifier: GPL-2.0
"""COUNT raw IPv4 packets with any source address: UDP datagrams, or (MODE synfin) TCP segments
with SYN and FIN both set, a combination conntrack judges INVALID.

usage: spoof.py SRC DST SPORT DPORT COUNT [udp|synfin]
"""
import socket, struct, sys
from dtlab import csum

src, dst, sport, dport, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
mode = sys.argv[6] if len(sys.argv) > 6 else 'udp'
if mode == 'synfin':
    proto = 6
    l4 = struct.pack('!HHIIBBHHH', sport, dport, 1000, 0, 5 << 4, 0x03, 65535, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, proto, len(l4))
    l4 = l4[:16] + struct.pack('!H', csum(pseudo + l4)) + l4[18:]
else:
    proto = 17
    payload = b'droptrace'
    l4 = struct.pack('!HHHH', sport, dport, 8 + len(payload), 0) + payload
hdr = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst))
hdr = hdr[:10] + struct.pack('!H', csum(hdr)) + hdr[12:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for _ in range(count):
    s.sendto(hdr + l4, (dst, 0))

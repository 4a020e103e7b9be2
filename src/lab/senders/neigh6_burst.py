# SPDX-License-Identifier: GPL-2.0
"""One datagram to each of COUNT distinct on-link IPv6 addresses PREFIX<1000+i>, fast, with a
raised send buffer (unresolved packets stay charged to the socket); errors are ignored.

usage: neigh6_burst.py PREFIX COUNT SPORT
"""
import socket, sys

prefix, count, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 << 20)
s.bind(('::', sport))
for i in range(count):
    try:
        s.sendto(b'droptrace', ('%s%x' % (prefix, 0x1000 + i), 9))
    except OSError:
        pass

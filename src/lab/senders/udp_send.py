# SPDX-License-Identifier: GPL-2.0
"""COUNT UDP datagrams from SRC:SPORT to DST:DPORT (IPv4 or IPv6), then exit.

usage: udp_send.py SRC SPORT DST DPORT COUNT
"""
import socket, sys

src, sport, dst, dport, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_INET6 if ':' in dst else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, sport))
for _ in range(count):
    s.sendto(b'droptrace', (dst, dport))

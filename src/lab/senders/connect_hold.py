# SPDX-License-Identifier: GPL-2.0
"""COUNT non-blocking TCP connects to DST:DPORT, held open for HOLD seconds.

usage: connect_hold.py DST DPORT COUNT HOLD
"""
import socket, sys, time

dst, dport, count, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks = []
for i in range(count):
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex((dst, dport))
    socks.append(c)
time.sleep(hold)

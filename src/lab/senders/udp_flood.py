# SPDX-License-Identifier: GPL-2.0
"""UDP to DST at PPS datagrams a second, over PORTS ports from 30000, until killed.

usage: udp_flood.py DST PPS PORTS
"""
import socket, sys, time

dst, pps, ports = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
batch = max(1, pps // 100)
n = 0
due = time.monotonic()
while True:
    for _ in range(batch):
        try:
            s.sendto(b"dtsoak", (dst, 30000 + n % ports))
        except OSError:
            pass
        n += 1
    due += batch / pps
    d = due - time.monotonic()
    if d > 0:
        time.sleep(d)

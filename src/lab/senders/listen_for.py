# SPDX-License-Identifier: GPL-2.0
"""A TCP listener on ADDR:PORT that prints `listening` once bound and lives SECONDS.

usage: listen_for.py ADDR PORT SECONDS
"""
import socket, sys, time

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1024)
print('listening', flush=True)
time.sleep(float(sys.argv[3]))

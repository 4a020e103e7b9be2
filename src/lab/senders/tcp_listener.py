# SPDX-License-Identifier: GPL-2.0
"""A TCP listener that holds its port until stdin closes. Argument (JSON): {addr, port}."""
import socket, sys
from dtlab import A, say

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((A['addr'], A['port']))
s.listen(4096)
say('ready')
sys.stdin.readline()

# SPDX-License-Identifier: GPL-2.0
"""`count` non-blocking TCP connects, then `waitMs` for them to complete: shorter than the 1 s
SYN retransmission, so every connect that got no answer cost exactly one dropped SYN.
Unanswered sockets are closed at once (no packet is sent for them); answered ones stay open
(their conntrack entries are assured, so early_drop cannot evict them) until the next line.

Argument (JSON): {addr, port, count, waitMs}. Line protocol: see dtlab.py.
"""
import json, select, socket, sys, time
from dtlab import A, say, wait_go

wait_go()
socks = []
for i in range(A['count']):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.setblocking(False)
    c.connect_ex((A['addr'], A['port']))
    socks.append(c)
deadline = time.monotonic() + A['waitMs'] / 1000
pending, established, refused = set(socks), 0, 0
while pending and time.monotonic() < deadline:
    _, w, _ = select.select([], list(pending), [], max(0, deadline - time.monotonic()))
    for c in w:
        pending.discard(c)
        if c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            established += 1
        else:
            refused += 1
for c in pending:
    c.close()
say('done', json.dumps({'established': established, 'refused': refused, 'unanswered': len(pending)}))
sys.stdin.readline()

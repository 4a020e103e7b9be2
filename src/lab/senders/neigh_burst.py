# SPDX-License-Identifier: GPL-2.0
"""UDP datagrams to `count` distinct on-link addresses, as fast as possible: each needs a new
neighbour entry. Non-blocking, with a forced 64 MiB send buffer, because packets waiting for
resolution stay charged to the socket: a blocking sender would stall, entries would time out to
FAILED and forced GC could evict them instead of the table overflowing.

Argument (JSON): {count, family: 4|6, prefix6, base4, dport}. Line protocol: see dtlab.py.
"""
import json, socket, struct, time
from dtlab import A, errname, say, wait_go

n = A['count']
if A['family'] == 6:
    # fd99::<i>:0:7: the low 24 bits never change, so every target shares one solicited-node
    # multicast group and its neighbour solicitations need one multicast entry, made early
    dsts = ['%s%x:0:7' % (A['prefix6'], i + 1) for i in range(n)]
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
else:
    base = struct.unpack('!I', socket.inet_aton(A['base4']))[0]
    dsts = [socket.inet_ntoa(struct.pack('!I', base + i)) for i in range(n)]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 32, 64 << 20)  # SO_SNDBUFFORCE
s.setblocking(False)
wait_go()
t0 = time.monotonic()
sent, errors = 0, {}
for d in dsts:
    try:
        s.sendto(b'droptrace-lab', (d, A['dport']))
        sent += 1
    except OSError as e:
        errors[errname(e)] = errors.get(errname(e), 0) + 1
say('done', json.dumps({'sent': sent, 'errors': errors, 'ms': round((time.monotonic() - t0) * 1000, 1)}))

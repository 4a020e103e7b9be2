# SPDX-License-Identifier: GPL-2.0
"""The conntrack insert race, made reliable: two processes pinned to two CPUs send the same TCP
SYN (same tuple, a fresh source port per round) through a raw socket at the same moment, after
a two-party spin barrier in shared memory. Both create an unconfirmed entry; the one confirmed
second clashes, TCP may not resolve a clash, and it is dropped in POSTROUTING, which the raw
socket reports as EPERM, so the drops are counted exactly.

Argument (JSON): {src, dst, dport, pairs, sport, timeoutMs}. Line protocol: see dtlab.py.
"""
import json, mmap, os, struct, time
from dtlab import A, raw4, say, tcp4, wait_go

src, dst, dport, pairs, base = A['src'], A['dst'], A['dport'], A['pairs'], A['sport']
pkts = [tcp4(src, dst, base + i, dport, 0x02) for i in range(pairs)]
cpus = sorted(os.sched_getaffinity(0))[:2]
shm = mmap.mmap(-1, 32)
wait_go()
pid = os.fork()
me = 0 if pid else 1
os.sched_setaffinity(0, {cpus[me]})
s = raw4()
mine, other = me * 8, (1 - me) * 8
eperm, others, stuck = 0, 0, False
limit = time.monotonic() + A['timeoutMs'] / 1000
for i in range(pairs):
    shm[mine:mine + 8] = struct.pack('q', i + 1)
    spins = 0
    while struct.unpack('q', shm[other:other + 8])[0] < i + 1:
        spins += 1
        if spins & 0xfff == 0 and time.monotonic() > limit:
            stuck = True
            break
    if stuck:
        break
    try:
        s.sendto(pkts[i], (dst, 0))
    except PermissionError:
        eperm += 1
    except OSError:
        others += 1
shm[16 + me * 8:24 + me * 8] = struct.pack('q', eperm)
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
total = struct.unpack('q', shm[16:24])[0] + struct.unpack('q', shm[24:32])[0]
say('done', json.dumps({'pairs': pairs, 'eperm': total, 'otherErrors': others, 'cpus': cpus, 'stuck': stuck}))

# SPDX-License-Identifier: GPL-2.0
"""Hand-made IPv4 packets through a raw socket.

Argument (JSON): {packets: [{proto: tcp|udp, src, dst, sport, dport, flags?, seq?, ack?}]}.
Line protocol: see dtlab.py.
"""
import json
from dtlab import A, errname, raw4, say, tcp4, udp4, wait_go

s = raw4()
pkts = []
for p in A['packets']:
    if p['proto'] == 'tcp':
        pkts.append((p['dst'], tcp4(p['src'], p['dst'], p['sport'], p['dport'], p['flags'], p.get('seq', 1000), p.get('ack', 0))))
    else:
        pkts.append((p['dst'], udp4(p['src'], p['dst'], p['sport'], p['dport'])))
wait_go()
sent, errors = 0, {}
for dst, pkt in pkts:
    try:
        s.sendto(pkt, (dst, 0))
        sent += 1
    except OSError as e:
        errors[errname(e)] = errors.get(errname(e), 0) + 1
say('done', json.dumps({'sent': sent, 'errors': errors}))

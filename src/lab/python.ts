/**
 * The lab's packet senders: small python3 programs (standard library only) run inside a
 * namespace with `ip netns exec NS python3 -c CODE ARGS_JSON`. Node has no raw sockets, and
 * python3 is on every Debian; a program is a few lines, so it lives inline.
 *
 * Protocol (see Helper in session.ts): the program prints `ready` once its sockets exist,
 * waits for `go` on stdin, provokes, prints `done <json>`; some then wait for one more line
 * before they close their sockets.
 */

/** Shared by every program: argument, line protocol, IPv4/TCP/UDP builders for raw sockets. */
const PRELUDE = String.raw`
import errno, json, os, socket, struct, sys, time
A = json.loads(sys.argv[1])
def say(*parts):
    print(*parts, flush=True)
def wait_go():
    say('ready')
    if sys.stdin.readline().strip() != 'go':
        sys.exit(0)
def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def ip4(src, dst, proto, l4):
    # the kernel fills in total length, id and header checksum for IP_HDRINCL
    return struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(l4), 0, 0x4000, 64, proto, 0,
                       socket.inet_aton(src), socket.inet_aton(dst)) + l4
def tcp4(src, dst, sport, dport, flags, seq=1000, ack=0):
    h = struct.pack('!HHIIBBHHH', sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    ph = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, 6, len(h))
    return ip4(src, dst, 6, h[:16] + struct.pack('!H', csum(ph + h)) + h[18:])
def udp4(src, dst, sport, dport, data=b'droptrace-lab'):
    # UDP checksum 0: "none", valid for IPv4
    return ip4(src, dst, 17, struct.pack('!HHHH', sport, dport, 8 + len(data), 0) + data)
def raw4():
    return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno))
`;

/**
 * UDP datagrams to `count` distinct on-link addresses, as fast as possible: each needs a new
 * neighbour entry. Non-blocking, with a forced 64 MiB send buffer, because packets waiting
 * for resolution stay charged to the socket: a blocking sender would stall, entries would
 * time out to FAILED and forced GC could evict them instead of the table overflowing.
 */
export const NEIGH_SENDER =
  PRELUDE +
  String.raw`
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
`;

/** A TCP listener that holds its port until stdin closes. */
export const TCP_LISTENER =
  PRELUDE +
  String.raw`
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((A['addr'], A['port']))
s.listen(4096)
say('ready')
sys.stdin.readline()
`;

/**
 * `count` non-blocking TCP connects, then `waitMs` for them to complete: shorter than the 1 s
 * SYN retransmission, so every connect that got no answer cost exactly one dropped SYN.
 * Unanswered sockets are closed at once (no packet is sent for them); answered ones stay open
 * (their conntrack entries are assured, so early_drop cannot evict them) until the next line.
 */
export const TCP_CONNECTOR =
  PRELUDE +
  String.raw`
import select
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
`;

/** Hand-made IPv4 packets through a raw socket: [{proto, src, dst, sport, dport, flags?}]. */
export const RAW_SENDER =
  PRELUDE +
  String.raw`
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
`;

/**
 * The conntrack insert race, made reliable: two processes pinned to two CPUs send the same
 * TCP SYN (same tuple, a fresh source port per round) through a raw socket at the same
 * moment, after a two-party spin barrier in shared memory. Both create an unconfirmed entry;
 * the one confirmed second clashes, TCP may not resolve a clash, and it is dropped in
 * POSTROUTING — which the raw socket reports as EPERM, so the drops are counted exactly.
 */
export const CLASH_SENDER =
  PRELUDE +
  String.raw`
import mmap
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
`;

/**
 * The addon's lost-key table end to end, as root: with JS stalled and a 64 KiB backlog, more
 * distinct keys are lost than the table holds (65,536 per read). Every lost record is counted,
 * on its key while the table has room and as `userLostUnkeyed` (never folded: the stats line's
 * `unfolded`) after; a read hands the table out and starts a new one (read and reset).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNative } from '../../src/native/binding.js';
import type { NativeBinding, TracerHandle } from '../../src/native/binding.js';
import { EVENT_SIZE, FIELDS } from '../../src/pipeline/layout.js';
import { inNs, makePair, sendUdp } from '../helpers/netns.js';
import type { Pair } from '../helpers/netns.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('skipping lost-key table tests: they need root (BPF programs, network namespaces)');

const TABLE = 65536;
const PORTS = 10000;
const SOURCES = 7;

/** One datagram to each of ports 20000-29999 from each of SOURCES source ports: 70,000 keys. */
const SPRAY = `
import socket, sys
dst = sys.argv[1]
socks = []
for i in range(${SOURCES}):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('', 0))
    socks.append(s)
for port in range(20000, 20000 + ${PORTS}):
    for s in socks:
        s.sendto(b'droptrace', (dst, port))
`;

describe.skipIf(!isRoot)('the lost-key table', () => {
  let p: Pair;
  let native: NativeBinding;
  beforeAll(() => {
    native = loadNative();
    p = makePair();
    sendUdp(p.a, p.ipA, 40000, p.ipB, 9, 1); // resolve neighbours first
    inNs(p.b, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '20000:29999', '-j', 'DROP']);
  });
  afterAll(() => p?.destroy());

  it('past 65,536 keys counts losses as unkeyed; a read resets the table', async () => {
    const keySize = native.layout().keySize;
    // 32 MiB of ring holds the whole spray (~120 B a record): nothing is lost in the kernel
    const t: TracerHandle = native.createTracer({ filterNetns: p.netnsB, extras: false, keyBurst: 0, ringBytes: 32 << 20, backlogBytes: 64 << 10 });
    try {
      t.attach();
      let delivered = 0;
      let stalled = false;
      const ended = new Promise((resolve) =>
        t.start(
          (buf) => {
            delivered += countRecords(buf);
            if (!stalled) {
              stalled = true;
              // JS is blocked while the spray is dropped: 64 KiB may wait for it, the rest is lost
              inNs(p.a, '/usr/bin/python3', ['-c', SPRAY, p.ipB]);
            }
          },
          (err) => resolve(err),
        ),
      );
      sendUdp(p.a, p.ipA, 40400, p.ipB, 20000, 1);
      const total = BigInt(SOURCES * PORTS + 1);
      for (;;) {
        const c = t.readCounters();
        if (c.seen >= total && BigInt(delivered) + c.userLost + c.ringLost + c.shortRecords === c.seen) break;
        await new Promise((r) => setImmediate(r));
      }
      t.stop();
      expect(await ended).toBeUndefined();
      const c = t.readCounters();
      expect(c.ringLost).toBe(0n);
      expect(c.userLost).toBeGreaterThan(BigInt(TABLE));
      const lost = t.readLostKeys();
      const entry = keySize + 16;
      let perKey = 0n;
      for (let off = 0; off < lost.length; off += entry) perKey += lost.readBigUInt64LE(off + keySize);
      // the table was full: exactly its size in keys, and the rest counted without a key
      expect(lost.length / entry).toBe(TABLE);
      expect(c.userLostUnkeyed).toBeGreaterThan(0n);
      expect(perKey + c.userLostUnkeyed).toBe(c.userLost);
      // read and reset: nothing is handed out twice
      expect(t.readLostKeys().length).toBe(0);
    } finally {
      t.close();
    }
  });
});

/** Records in a batch, read from each record's own size field. */
function countRecords(buf: Buffer): number {
  let n = 0;
  for (let off = 0; off + EVENT_SIZE <= buf.length; n++) off += buf.readUInt16LE(off + FIELDS.size[0]);
  return n;
}

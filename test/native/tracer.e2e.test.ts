/**
 * The native layer end to end, as root, through the real addon: coded errors, a second attach
 * refused, teardown from every state without a hang, a real poll failure reported, the byte cap
 * between the poller and a stalled JS thread, and the key map's size read back from the kernel.
 * Every tracer filters on a namespace this file creates, so other tests' drops never count.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DroptraceError } from '../../src/errors.js';
import { loadNative } from '../../src/native/binding.js';
import type { NativeBinding, TracerHandle } from '../../src/native/binding.js';
import { KEY_MAP_BUDGET_BYTES, mapBytes } from '../../src/native/map-memory.js';
import { FIELDS, KEY_FIELDS } from '../../src/pipeline/layout.js';
import { inNs, makePair, sendUdp } from '../helpers/netns.js';
import type { Pair } from '../helpers/netns.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('skipping native tracer tests: they need root (BPF programs, network namespaces)');

function codeOf(f: () => unknown): [string, string] | undefined {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DroptraceError);
    return [(e as DroptraceError).code, (e as DroptraceError).stage];
  }
  return undefined;
}

/** start(), resolving with onEnd's argument; records the bytes of every batch. */
function run(t: TracerHandle, onBatch: (buf: Buffer) => void = () => {}): Promise<DroptraceError | undefined> {
  return new Promise((resolve) => t.start(onBatch, (err) => resolve(err)));
}

describe.skipIf(!isRoot)('native tracer', () => {
  let p: Pair;
  let native: NativeBinding;
  beforeAll(() => {
    native = loadNative();
    p = makePair();
  });
  afterAll(() => p?.destroy());

  const tracer = (extra: Parameters<NativeBinding['createTracer']>[0] = {}) => native.createTracer({ filterNetns: p.netnsB, extras: false, ...extra });

  it('refuses a second attach, a start before attach and any use after close, each with its code', () => {
    const never = tracer();
    expect(codeOf(() => never.start(() => {}, () => {}))).toEqual(['E_NOT_ATTACHED', 'state']);
    never.close();
    expect(codeOf(() => never.attach())).toEqual(['E_CLOSED', 'state']);

    const t = tracer();
    try {
      expect(t.attach().find((r) => r.state === 'attached')?.hook).toBe('tp_btf/kfree_skb');
      expect(codeOf(() => t.attach())).toEqual(['E_ALREADY_ATTACHED', 'state']);
      const e = (() => {
        try {
          t.attach();
        } catch (err) {
          return err as DroptraceError;
        }
      })();
      expect(e!.line()).toBe('tracer already attached: attach called twice on one tracer (create a new tracer to attach again)');
    } finally {
      t.close();
    }
  });

  it('tears down from every state, more than once, without a hang', async () => {
    // never attached
    const a = tracer();
    a.close();
    a.close();
    // attached, never started
    const b = tracer();
    b.attach();
    b.close();
    b.close();
    // polling: close() aborts the hand-over and joins the poller; onEnd still runs once
    const c = tracer();
    c.attach();
    let ends = 0;
    const ended = run(c).then((err) => {
      ends++;
      return err;
    });
    c.close();
    expect(await ended).toBeUndefined();
    c.close();
    expect(ends).toBe(1);
    expect(codeOf(() => c.start(() => {}, () => {}))).toEqual(['E_CLOSED', 'state']);
    // stopped and drained, then closed
    const d = tracer();
    d.attach();
    const dEnd = run(d);
    d.stop();
    expect(await dEnd).toBeUndefined();
    d.close();
  });

  it('reports a failed poll to onEnd with E_POLL (a real EINVAL from epoll_wait), then closes cleanly', async () => {
    const t = tracer();
    try {
      t.attach();
      const ended = run(t);
      expect(t.breakPoll()).toBe(true);
      const err = await ended;
      expect(err).toBeInstanceOf(DroptraceError);
      expect([err!.code, err!.stage, err!.exitCode]).toEqual(['E_POLL', 'poll', 1]);
      expect(err!.line()).toBe(
        'reading the ring buffer failed, the stream ended: ring_buffer__poll failed: Invalid argument (errno 22) (restart droptrace; if it happens again, report it with the output of droptrace check)',
      );
      expect(t.readCounters().pollErrors).toBe(1n);
    } finally {
      t.close();
      t.close();
    }
  });

  it('caps the bytes waiting for a stalled JS thread and counts every record past the cap, per key', async () => {
    const PORT = 5401;
    const N = 4000;
    const BACKLOG = 64 << 10;
    const L = native.layout();
    const [sizeOff] = FIELDS.size;
    const [dportOff] = FIELDS.dport;
    const [keyDportOff] = KEY_FIELDS.dport;
    inNs(p.b, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', String(PORT), '-j', 'DROP']);
    const t = tracer({ keyBurst: 0, backlogBytes: BACKLOG });
    try {
      t.attach();
      let delivered = 0;
      let other = 0;
      let stalled = false;
      const ended = run(t, (buf) => {
        for (let off = 0; off + L.size <= buf.length; off += buf.readUInt16LE(off + sizeOff)) {
          if (buf.readUInt16LE(off + dportOff) === PORT) delivered++;
          else other++;
        }
        if (!stalled) {
          stalled = true;
          // JS is blocked while the flood is dropped: only BACKLOG bytes may wait for it
          sendUdp(p.a, p.ipA, 40401, p.ipB, PORT, N);
        }
      });
      sendUdp(p.a, p.ipA, 40400, p.ipB, PORT, 1);
      // wait until the kernel has counted everything and every record is accounted for
      for (;;) {
        const c = t.readCounters();
        if (c.seen >= BigInt(N + 1) && BigInt(delivered + other) + c.userLost + c.ringLost + c.shortRecords === c.seen) break;
        await new Promise((r) => setImmediate(r));
      }
      t.stop();
      expect(await ended).toBeUndefined();
      const c = t.readCounters();
      expect(c.suppressed).toBe(0n);
      expect(c.userLost).toBeGreaterThan(0n);
      // what JS got plus what the addon counted as lost is exactly what the kernel saw
      expect(BigInt(delivered + other) + c.userLost + c.ringLost + c.shortRecords).toBe(c.seen);
      // every lost record is counted on its key: the flood's, and any other drop of the
      // namespace that came while JS was stalled
      const lost = t.readLostKeys();
      const entry = L.keySize + 16;
      let perKey = 0n;
      let floodLost = 0n;
      for (let off = 0; off < lost.length; off += entry) {
        const n = lost.readBigUInt64LE(off + L.keySize);
        perKey += n;
        if (lost.readUInt16LE(off + keyDportOff) === PORT) floodLost += n;
      }
      expect(perKey).toBe(c.userLost);
      expect(floodLost).toBeGreaterThan(0n);
      // 4001 records of ~120 B fit the 8 MiB ring: the flood is delivered or lost in userspace
      expect(c.ringLost).toBe(0n);
      expect(BigInt(delivered) + floodLost).toBe(BigInt(N + 1));
    } finally {
      t.close();
      inNs(p.b, 'iptables', ['-F', 'INPUT']);
    }
  });

  it('ends runStream on a poll failure: the final stats line, then the E_POLL error, nothing left attached', async () => {
    const { runStream } = await import('../../src/pipeline/stream.js');
    const { kernelReasons } = await import('../../src/pipeline/live.js');
    const { Symbolizer } = await import('../../src/pipeline/kallsyms.js');
    let handle: TracerHandle | undefined;
    const wrapped: NativeBinding = {
      ...native,
      createTracer: (o) => (handle = native.createTracer(o)),
    };
    const lines: Array<{ type: string; final?: boolean }> = [];
    const ac = new AbortController();
    const done = runStream({
      native: wrapped,
      tracer: { filterNetns: p.netnsB, extras: false },
      reasons: kernelReasons(),
      symbols: Symbolizer.fromProc(),
      meta: { version: 'test', node: 'test', kernel: 'test' },
      emit: (l) => {
        lines.push(l as { type: string; final?: boolean });
        // the poller starts right after the start line, in the same tick
        if (l.type === 'start') setImmediate(() => expect(handle!.breakPoll()).toBe(true));
      },
      statsIntervalMs: 3_600_000,
      signal: ac.signal,
    });
    const err = await done.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DroptraceError);
    expect((err as DroptraceError).code).toBe('E_POLL');
    // a stray drop of the netns (IPv6 link-local traffic) may come between: nothing else may
    expect(lines.map((l) => l.type).filter((t) => t !== 'drop')).toEqual(['start', 'stats']);
    expect(lines.at(-1)!.final).toBe(true);
    expect(handle!.mapInfo()).toEqual([]);
  });

  it('loads a key map shared by all CPUs whose size the kernel confirms', () => {
    const t = tracer();
    try {
      t.attach();
      const key = t.mapInfo().find((m) => m.name === 'key_counts')!;
      expect({ type: key.type, maxEntries: key.maxEntries, keySize: key.keySize, valueSize: key.valueSize }).toEqual({
        type: 'lru_hash',
        maxEntries: 65536,
        keySize: native.layout().keySize,
        valueSize: 32,
      });
      // the formula leaves out the map's fixed header only
      const est = mapBytes(key, 1);
      expect(key.memlock).toBeGreaterThanOrEqual(est);
      expect(key.memlock - est).toBeLessThan(4096);
      expect(key.memlock).toBeLessThanOrEqual(KEY_MAP_BUDGET_BYTES);
    } finally {
      t.close();
    }
  });
});

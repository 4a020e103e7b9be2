/**
 * The pcap sink: a new private file (never over an existing one or through a symlink), headers
 * and the DNS question only unless payload is asked for, --pcap-max stops writing and says so,
 * and a full disk (a real 64 KiB tmpfs) ends the stream cleanly through runStream.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DroptraceError } from '../../src/errors.js';
import { WallClock } from '../../src/pipeline/clock.js';
import { Decoder } from '../../src/pipeline/decode.js';
import type { RawDrop } from '../../src/pipeline/decode.js';
import type { DropEvent, StatsLine, StreamLine } from '../../src/pipeline/events.js';
import { Symbolizer } from '../../src/pipeline/kallsyms.js';
import { FIELDS } from '../../src/pipeline/layout.js';
import { ReasonNames } from '../../src/pipeline/reasons.js';
import { runStream } from '../../src/pipeline/stream.js';
import { PcapSink } from '../../src/sinks/pcap.js';
import { FakeBinding, GOLDEN, GOLDEN_CLOCKS } from '../helpers/fake-tracer.js';
import { capturedDns, capturedUdp, DNS_MESSAGE, SECRET } from '../helpers/records.js';

const dir = mkdtempSync(join(tmpdir(), 'droptrace-pcap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `c${n++}.pcapng`);

const tshark = (() => {
  try {
    execFileSync('tshark', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const clock = new WallClock(GOLDEN_CLOCKS);
const describeDrop = (d: RawDrop) => ({ time: clock.at(d.monoDeltaNs), kind: 'k', family: 'other', reason: 'R', location: 'l', netns: d.netns, ifname: d.ifname }) as DropEvent;

/** The packet blocks of a pcapng file: captured bytes, original length, timestamp (ns). */
function packets(file: string): Array<{ data: Buffer; orig: number; ns: bigint }> {
  const b = readFileSync(file);
  const out: Array<{ data: Buffer; orig: number; ns: bigint }> = [];
  for (let off = 0; off < b.length; ) {
    const type = b.readUInt32LE(off);
    const len = b.readUInt32LE(off + 4);
    if (type === 6) {
      const capLen = b.readUInt32LE(off + 20);
      const ns = (BigInt(b.readUInt32LE(off + 12)) << 32n) | BigInt(b.readUInt32LE(off + 16));
      out.push({ data: b.subarray(off + 28, off + 28 + capLen), orig: b.readUInt32LE(off + 24), ns });
    }
    off += len;
  }
  return out;
}

function capture(sink: PcapSink, records: Buffer[]): void {
  const drops = new Decoder(GOLDEN_CLOCKS.monotonicNs).decode(Buffer.concat(records)).drops;
  sink.capture(drops, describeDrop);
}

describe('PcapSink', () => {
  it('creates the file new with mode 0600 and refuses an existing file or a symlink, exit 2, the file untouched', () => {
    const f = fresh();
    new PcapSink({ path: f }).close();
    expect(statSync(f).mode & 0o777).toBe(0o600);
    const existing = fresh();
    writeFileSync(existing, 'keep me');
    const link = fresh();
    symlinkSync(join(dir, 'nowhere'), link);
    const errors = [existing, link].map((p) => {
      try {
        new PcapSink({ path: p });
        return null;
      } catch (e) {
        return e instanceof DroptraceError ? [e.code, e.exitCode, e.line()] : e;
      }
    });
    expect(errors).toEqual([
      ['E_PCAP', 2, `cannot create --pcap file ${existing}: it exists (droptrace writes a new file, never over one) (name a file that does not exist yet)`],
      ['E_PCAP', 2, `cannot create --pcap file ${link}: it is a symlink (name a file that does not exist yet)`],
    ]);
    expect(readFileSync(existing, 'utf8')).toBe('keep me');
    expect(() => statSync(join(dir, 'nowhere'))).toThrow();
  });

  it('keeps IP and UDP headers and the DNS question by default, the payload only when asked', () => {
    const headers = fresh();
    const sink = new PcapSink({ path: headers });
    capture(sink, [capturedUdp(), capturedDns()]);
    sink.close();
    const got = packets(headers);
    expect(got.map((p) => [p.data.length, p.orig])).toEqual([
      [28, 28 + SECRET.length],
      [28 + DNS_MESSAGE.length, 28 + DNS_MESSAGE.length + SECRET.length],
    ]);
    expect(got[1]!.data.subarray(28)).toEqual(DNS_MESSAGE);
    // each packet at its drop's kernel time, to the nanosecond
    const kernelNs = (r: Buffer) => GOLDEN_CLOCKS.realtimeNs + r.readBigUInt64LE(FIELDS.ts_ns[0]) - GOLDEN_CLOCKS.monotonicNs;
    expect(got.map((p) => p.ns)).toEqual([kernelNs(capturedUdp()), kernelNs(capturedDns())]);
    expect(readFileSync(headers).includes(SECRET)).toBe(false);
    expect(sink.stats()).toEqual({ packets: 2, bytes: readFileSync(headers).length, skipped: 0, limit_reached: false });

    if (tshark) {
      // cut short after the question, the DNS message still reads as one
      const names = execFileSync('tshark', ['-r', headers, '-T', 'fields', '-e', 'dns.qry.name'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(names.split('\n')).toEqual(['', 'kube-dns.droptrace.test', '']);
    } else console.warn('skipping the tshark read: tshark (Debian package tshark) is not installed');

    const full = fresh();
    const withPayload = new PcapSink({ path: full, payload: true });
    capture(withPayload, [capturedUdp(), capturedDns()]);
    withPayload.close();
    expect(packets(full).map((p) => p.data.subarray(p.data.length - SECRET.length))).toEqual([SECRET, SECRET]);
  });

  it('--pcap-max: stops before the file would pass it, says so once, counts what it skipped', () => {
    const f = fresh();
    const warnings: string[] = [];
    const sink = new PcapSink({ path: f, maxBytes: 400, warn: (l) => warnings.push(l) });
    for (let i = 0; i < 5; i++) capture(sink, [capturedUdp()]);
    sink.close();
    const s = sink.stats();
    expect(statSync(f).size).toBe(s.bytes);
    expect(s.bytes).toBeLessThanOrEqual(400);
    expect(s.packets + s.skipped).toBe(5);
    expect(s.skipped).toBeGreaterThan(0);
    expect(s.limit_reached).toBe(true);
    expect(packets(f).length).toBe(s.packets);
    expect(warnings).toEqual([`--pcap file ${f} reached --pcap-max (400 bytes): no more packets are written to it, the stream goes on`]);
  });
});

/** A 64 KiB tmpfs, mounted for this test (needs root and mount(8)). */
function tinyDisk(): string | null {
  const mnt = join(dir, 'tiny');
  mkdirSync(mnt);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'droptrace-test', mnt], { stdio: 'pipe' });
    return mnt;
  } catch (e) {
    console.warn(`skipping the full-disk test: cannot mount a tmpfs (${(e as Error).message.split('\n')[0]})`);
    return null;
  }
}

describe('a full disk under --pcap', () => {
  const mnt = tinyDisk();
  afterAll(() => {
    if (mnt) execFileSync('umount', [mnt]);
  });

  it.skipIf(!mnt)('ends the stream cleanly: one error (ENOSPC), the final stats line, the tracer closed', async () => {
    const path = join(mnt!, 'drops.pcapng');
    const sink = new PcapSink({ path, payload: true });
    // about 300 bytes a packet: 64 KiB fill within 300 batches of one packet
    const batches = Array.from({ length: 600 }, () => Buffer.concat([capturedUdp(), capturedDns()]));
    const fake = new FakeBinding({ batches });
    const lines: StreamLine[] = [];
    const err = await runStream({
      native: fake,
      tracer: { captureHeaders: true },
      reasons: new ReasonNames(GOLDEN.reasons),
      symbols: new Symbolizer(''),
      sysctl: () => null,
      meta: { version: 't', node: 'n', kernel: 'k' },
      emit: (l) => lines.push(l),
      tap: sink,
      statsIntervalMs: 3_600_000,
      signal: new AbortController().signal,
    }).then(
      () => null,
      (e: unknown) => e,
    );
    sink.close();
    expect(err).toBeInstanceOf(DroptraceError);
    const e = err as DroptraceError;
    expect([e.code, e.exitCode]).toEqual(['E_PCAP_WRITE', 1]);
    expect(e.line()).toMatch(new RegExp(`^cannot write --pcap file ${path}: ENOSPC after \\d+ bytes$`));
    const last = lines.at(-1) as StatsLine;
    expect(last).toMatchObject({ type: 'stats', final: true, failures: 1 });
    expect(last.pcap!.bytes).toBe(statSync(path).size);
    expect(last.pcap!.packets).toBeGreaterThan(0);
    expect(fake.tracer.delivered).toBeLessThan(batches.length);
    expect([fake.tracer.stopped, fake.tracer.closed, fake.tracer.attached]).toEqual([true, true, false]);
  });
});

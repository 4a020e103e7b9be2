/**
 * `--pcap FILE`: dropped packets as pcapng (LINKTYPE_RAW: each packet starts at its IP header),
 * with the drop's kind, reason, netns and device in each packet's comment, for tshark/Wireshark.
 * Only detail events have bytes; folded drops are counted, not captured.
 *
 * A capture holds other people's traffic, so by default it keeps headers only (IP and L4, plus
 * the question of a DNS message); L4 payload (HTTP headers, tokens) only with `payload`. The
 * file is created new and private (an existing file or a symlink is refused, never truncated
 * or followed), and `maxBytes` caps it: past the cap no more packets are written, the stream
 * goes on, and the stats lines say so.
 */
import { closeSync, constants, lstatSync, openSync, writeSync } from 'node:fs';
import { DroptraceError } from '../errors.js';
import type { PacketTap } from '../pipeline/batch.js';
import { DropTime, timeMs } from '../pipeline/clock.js';
import type { LineTime } from '../pipeline/clock.js';
import type { RawDrop } from '../pipeline/decode.js';
import type { DropEvent } from '../pipeline/events.js';
import { FLAGS, PAYLOAD_MAX } from '../pipeline/layout.js';
import { dnsQuestionEnd, ipLength, l4PayloadOffset } from '../pipeline/packet.js';

const LINKTYPE_RAW = 101;

/** A packet block's timestamp: a described drop's time is a DropTime, to the nanosecond. */
function epochNsOf(t: LineTime): bigint {
  return t instanceof DropTime ? t.epochNs() : BigInt(timeMs(t)) * 1_000_000n;
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function option(code: number, value: Buffer): Buffer {
  const b = Buffer.alloc(4 + pad4(value.length));
  b.writeUInt16LE(code, 0);
  b.writeUInt16LE(value.length, 2);
  value.copy(b, 4);
  return b;
}

function block(type: number, body: Buffer): Buffer {
  const len = 12 + body.length;
  const b = Buffer.alloc(len);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(len, 4);
  body.copy(b, 8);
  b.writeUInt32LE(len, len - 4);
  return b;
}

const END = Buffer.alloc(4);

/**
 * How many bytes of a captured packet to keep: the IP and L4 headers (8 bytes past the IP
 * header when the L4 protocol is neither TCP nor UDP: the ICMP header), and for DNS the
 * message up to the end of its question. Everything with `payload`.
 */
export function keptLength(d: RawDrop, data: Uint8Array, payload: boolean): number {
  if (payload) return data.length;
  let end = l4PayloadOffset(data);
  if (end < 0) {
    const v = data.length ? data[0]! >> 4 : 0;
    const ipHeader = v === 4 ? (data[0]! & 0xf) * 4 : v === 6 ? 40 : 0;
    end = ipHeader + 8;
  } else if (d.sport === 53 || d.dport === 53) {
    const q = dnsQuestionEnd(data, end, d.l4Proto === 6);
    if (q > 0) end = q;
  }
  return Math.min(Math.max(end, 0), data.length);
}

export interface PcapOptions {
  path: string;
  /** stop writing packets once the file would pass this many bytes (absent: no cap) */
  maxBytes?: number;
  /** keep the L4 payload too (default: headers and the DNS question only) */
  payload?: boolean;
  /** one line on stderr, said once when the cap is reached */
  warn?: (line: string) => void;
}

export interface PcapStats {
  packets: number;
  bytes: number;
  /** packets not written because the file reached maxBytes */
  skipped: number;
  limit_reached: boolean;
}

function errnoOf(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

export class PcapSink implements PacketTap {
  private fd: number;
  private packets = 0;
  private bytes = 0;
  private skipped = 0;
  private limitReached = false;
  private readonly blocks: Buffer[] = [];

  constructor(private readonly o: PcapOptions) {
    try {
      this.fd = openSync(o.path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    } catch (e) {
      let code = errnoOf(e);
      // O_EXCL refuses any symlink with EEXIST, a dangling one too: say which it is
      if (code === 'EEXIST' && isSymlink(o.path)) code = 'ELOOP';
      const why = code === 'EEXIST' ? 'it exists (droptrace writes a new file, never over one)' : code === 'ELOOP' ? 'it is a symlink' : code;
      throw new DroptraceError('E_PCAP', 'input', `cannot create --pcap file ${o.path}: ${why}`, {
        ...(code === 'EEXIST' || code === 'ELOOP' ? { hint: 'name a file that does not exist yet' } : {}),
      });
    }
    const shb = Buffer.alloc(16);
    shb.writeUInt32LE(0x1a2b3c4d, 0); // byte-order magic
    shb.writeUInt16LE(1, 4);
    shb.writeUInt16LE(0, 6);
    shb.writeBigInt64LE(-1n, 8); // section length unknown
    const idb = Buffer.alloc(8);
    idb.writeUInt16LE(LINKTYPE_RAW, 0);
    idb.writeUInt32LE(PAYLOAD_MAX, 4);
    this.writeAll(
      Buffer.concat([
        block(0x0a0d0d0a, Buffer.concat([shb, option(4, Buffer.from('droptrace')), END])),
        // if_name, and if_tsresol 9: timestamps in nanoseconds
        block(1, Buffer.concat([idb, option(2, Buffer.from('droptrace-drops')), option(9, Buffer.from([9])), END])),
      ]),
    );
  }

  /** One packet block: wall-clock time in ns, the kept bytes, the packet's full length, a comment. */
  static packet(timeNs: bigint, data: Uint8Array, origLen: number, comment: string): Buffer {
    const head = Buffer.alloc(20);
    head.writeUInt32LE(0, 0);
    head.writeUInt32LE(Number(timeNs >> 32n), 4);
    head.writeUInt32LE(Number(timeNs & 0xffffffffn), 8);
    head.writeUInt32LE(data.length, 12);
    head.writeUInt32LE(Math.max(origLen, data.length), 16);
    const body = Buffer.alloc(pad4(data.length));
    body.set(data);
    return block(6, Buffer.concat([head, body, option(1, Buffer.from(comment)), END]));
  }

  capture(drops: readonly RawDrop[], describe: (d: RawDrop) => DropEvent): void {
    if (this.fd < 0) return;
    const blocks = this.blocks;
    blocks.length = 0;
    let size = 0;
    for (const d of drops) {
      if (!d.payload || !(d.flags & FLAGS.PAYLOAD_L3)) continue;
      if (this.limitReached) {
        this.skipped++;
        continue;
      }
      const ev = describe(d);
      const comment = `droptrace: ${ev.kind} (${ev.family}) reason=${ev.reason} location=${ev.location} netns=${ev.netns} dev=${ev.ifname}`;
      const data = d.payload.subarray(0, keptLength(d, d.payload, this.o.payload === true));
      const b = PcapSink.packet(epochNsOf(ev.time), data, ipLength(d.payload), comment);
      if (this.o.maxBytes !== undefined && this.bytes + size + b.length > this.o.maxBytes) {
        this.limitReached = true;
        this.skipped++;
        this.o.warn?.(`--pcap file ${this.o.path} reached --pcap-max (${this.o.maxBytes} bytes): no more packets are written to it, the stream goes on`);
        continue;
      }
      blocks.push(b);
      size += b.length;
    }
    if (!blocks.length) return;
    this.writeAll(blocks.length === 1 ? blocks[0]! : Buffer.concat(blocks, size));
    this.packets += blocks.length;
    blocks.length = 0;
  }

  stats(): PcapStats {
    return { packets: this.packets, bytes: this.bytes, skipped: this.skipped, limit_reached: this.limitReached };
  }

  /** A write that fails (a full disk: ENOSPC) closes the file and throws: the stream ends on it. */
  private writeAll(buf: Buffer): void {
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    } catch (e) {
      this.bytes += off;
      this.close();
      throw new DroptraceError('E_PCAP_WRITE', 'runtime', `cannot write --pcap file ${this.o.path}: ${errnoOf(e)} after ${this.bytes} bytes`);
    }
    this.bytes += off;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

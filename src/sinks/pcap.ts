/**
 * `--pcap FILE`: dropped packets' headers as pcapng (LINKTYPE_RAW: each packet starts at its
 * IP header), with the drop's kind, reason, netns and device in each packet's comment, for
 * tshark/Wireshark. Only detail events have bytes; folded drops are counted, not captured.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { DroptraceError } from '../errors.js';

const LINKTYPE_RAW = 101;

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

export class PcapWriter {
  private fd: number;
  packets = 0;

  constructor(path: string, snaplen: number) {
    try {
      this.fd = openSync(path, 'w');
    } catch (e) {
      throw new DroptraceError('E_PCAP', 'input', `cannot write --pcap file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const shb = Buffer.alloc(16);
    shb.writeUInt32LE(0x1a2b3c4d, 0); // byte-order magic
    shb.writeUInt16LE(1, 4);
    shb.writeUInt16LE(0, 6);
    shb.writeBigInt64LE(-1n, 8); // section length unknown
    const idb = Buffer.alloc(8);
    idb.writeUInt16LE(LINKTYPE_RAW, 0);
    idb.writeUInt32LE(snaplen, 4);
    writeSync(
      this.fd,
      Buffer.concat([
        block(0x0a0d0d0a, Buffer.concat([shb, option(4, Buffer.from('droptrace')), END])),
        // if_name, and if_tsresol 9: timestamps in nanoseconds
        block(1, Buffer.concat([idb, option(2, Buffer.from('droptrace-drops')), option(9, Buffer.from([9])), END])),
      ]),
    );
  }

  /** One packet: wall-clock time in ns, the captured bytes, the packet's full length, a comment. */
  packet(timeNs: bigint, data: Uint8Array, origLen: number, comment: string): Buffer {
    const head = Buffer.alloc(20);
    head.writeUInt32LE(0, 0);
    head.writeUInt32LE(Number(timeNs >> 32n), 4);
    head.writeUInt32LE(Number(timeNs & 0xffffffffn), 8);
    head.writeUInt32LE(data.length, 12);
    head.writeUInt32LE(Math.max(origLen, data.length), 16);
    const body = Buffer.alloc(pad4(data.length));
    body.set(data);
    this.packets++;
    return block(6, Buffer.concat([head, body, option(1, Buffer.from(comment)), END]));
  }

  write(blocks: Buffer[]): void {
    if (blocks.length) writeSync(this.fd, Buffer.concat(blocks));
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** Full length of the IP packet whose header starts `p` (0 when unknown). */
export function ipLength(p: Uint8Array): number {
  if (p.length < 4) return 0;
  if (p[0]! >> 4 === 4) return (p[2]! << 8) | p[3]!;
  if (p[0]! >> 4 === 6 && p.length >= 6) return 40 + ((p[4]! << 8) | p[5]!);
  return 0;
}

/** Where the L4 payload (after the UDP/TCP header) starts in an IP packet, or -1. */
export function l4PayloadOffset(p: Uint8Array): number {
  if (p.length < 1) return -1;
  let off: number;
  let proto: number;
  if (p[0]! >> 4 === 4) {
    off = (p[0]! & 0xf) * 4;
    proto = p[9] ?? -1;
  } else if (p[0]! >> 4 === 6) {
    off = 40;
    proto = p[6] ?? -1;
  } else return -1;
  if (proto === 17) return off + 8;
  if (proto === 6 && p.length > off + 12) return off + (p[off + 12]! >> 4) * 4;
  return -1;
}

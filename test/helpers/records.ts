/** Records with an IP-header capture (what the addon sends with --pcap), made from the golden ones. */
import { EVENT_SIZE, FIELDS, FLAGS, KEY_ENTRY_SIZE, KEY_FIELDS, KEY_SIZE } from '../../src/pipeline/layout.js';
import { GOLDEN_RECORDS } from './fake-tracer.js';

/** An IPv4 + UDP packet around `l4Payload`, addresses and ports from the record. */
export function udp4Packet(record: Buffer, l4Payload: Uint8Array): Buffer {
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + 8 + l4Payload.length, 2);
  ip[8] = 64;
  ip[9] = 17;
  record.copy(ip, 12, FIELDS.saddr[0], FIELDS.saddr[0] + 4);
  record.copy(ip, 16, FIELDS.daddr[0], FIELDS.daddr[0] + 4);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(record.readUInt16LE(FIELDS.sport[0]), 0);
  udp.writeUInt16BE(record.readUInt16LE(FIELDS.dport[0]), 2);
  udp.writeUInt16BE(8 + l4Payload.length, 4);
  return Buffer.concat([ip, udp, l4Payload]);
}

/** `record` with `packet` as its captured bytes, flagged as starting at the IP header. */
export function withCapture(record: Buffer, packet: Uint8Array): Buffer {
  const r = Buffer.concat([record.subarray(0, EVENT_SIZE), packet]);
  r.writeUInt16LE(r.length, FIELDS.size[0]);
  r.writeUInt16LE(packet.length, FIELDS.payload_len[0]);
  r[FIELDS.flags[0]] = r[FIELDS.flags[0]]! | FLAGS.PAYLOAD_L3;
  return r;
}

/** The golden DNS drop (record 4): its DNS query, then bytes past the question that must not reach a capture by default. */
export const DNS_RECORD = GOLDEN_RECORDS[4]!;
export const DNS_MESSAGE = DNS_RECORD.subarray(EVENT_SIZE, DNS_RECORD.readUInt16LE(FIELDS.size[0]));
export const SECRET = Buffer.from('Authorization: Bearer s3cr3t');

/** The golden UDP drop to port 5400 (record 0) with a payload that is not DNS. */
export function capturedUdp(): Buffer {
  return withCapture(GOLDEN_RECORDS[0]!, udp4Packet(GOLDEN_RECORDS[0]!, SECRET));
}

export function capturedDns(): Buffer {
  return withCapture(DNS_RECORD, udp4Packet(DNS_RECORD, Buffer.concat([DNS_MESSAGE, SECRET])));
}

/** The key-map entry of a record's key: `count` drops, `suppressed` of them without detail. */
export function keyEntry(r: Buffer, count: number, suppressed: number): Buffer {
  const e = Buffer.alloc(KEY_ENTRY_SIZE);
  const fields = ['reason', 'netns', 'ifindex', 'sport', 'dport', 'l4_proto', 'icmp_type', 'icmp_code', 'saddr', 'daddr'] as const;
  for (const f of fields) r.copy(e, KEY_FIELDS[f][0], FIELDS[f][0], FIELDS[f][0] + KEY_FIELDS[f][1]);
  const flags = r[FIELDS.flags[0]]!;
  e[KEY_FIELDS.ip_version[0]] = flags & 1 ? 4 : flags & 2 ? 6 : 0;
  e.writeBigUInt64LE(BigInt(count), KEY_SIZE);
  e.writeBigUInt64LE(BigInt(suppressed), KEY_SIZE + 8);
  return e;
}

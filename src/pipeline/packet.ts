/**
 * Offsets inside a captured IP packet (the bytes a record carries from its IP header on). The
 * pipeline reads a DNS question through them, and the pcap sink decides what to keep.
 */

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

/**
 * Where the question section of the DNS message at `off` ends (its header, the first question's
 * name, type and class), or -1 when it is not there whole. `tcp`: the message starts with a
 * two-byte length.
 */
export function dnsQuestionEnd(p: Uint8Array, off: number, tcp: boolean): number {
  let at = off + (tcp ? 2 : 0) + 12;
  if (at > p.length) return -1;
  for (let labels = 0; labels < 128; labels++) {
    if (at >= p.length) return -1;
    const l = p[at]!;
    at++;
    if (l === 0) return at + 4 <= p.length ? at + 4 : -1;
    if (l > 63) return -1;
    at += l;
  }
  return -1;
}

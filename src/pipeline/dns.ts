/**
 * The question of a DNS message, parsed defensively from the first bytes of a dropped
 * packet (which may be cut short): "it felt like DNS" becomes "DNS query for X dropped".
 */
const TYPES: Record<number, string> = {
  1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV',
  35: 'NAPTR', 43: 'DS', 48: 'DNSKEY', 64: 'SVCB', 65: 'HTTPS', 255: 'ANY',
};

export interface DnsQuestion {
  id: number;
  /** false for a query, true for a response */
  response: boolean;
  name: string;
  type: string;
}

/** `tcp`: the message starts with a two-byte length (RFC 1035 4.2.2). Null when it is not DNS. */
export function parseDnsQuestion(p: Uint8Array, tcp = false): DnsQuestion | null {
  let off = tcp ? 2 : 0;
  if (p.length < off + 12) return null;
  const id = (p[off]! << 8) | p[off + 1]!;
  const flags = (p[off + 2]! << 8) | p[off + 3]!;
  const qdcount = (p[off + 4]! << 8) | p[off + 5]!;
  const opcode = (flags >> 11) & 0xf;
  if (qdcount < 1 || opcode > 6) return null;
  off += 12;
  const labels: string[] = [];
  let len = 0;
  for (;;) {
    if (off >= p.length) return null;
    const l = p[off]!;
    off++;
    if (l === 0) break;
    // Compression pointers do not occur in a question name; other label types are obsolete.
    if (l > 63) return null;
    if (off + l > p.length) return null;
    len += l + 1;
    if (len > 255) return null;
    let label = '';
    for (let i = 0; i < l; i++) {
      const c = p[off + i]!;
      // printable ASCII as is; anything else escaped the way dig prints it
      label += c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c ? String.fromCharCode(c) : `\\${String(c).padStart(3, '0')}`;
    }
    labels.push(label);
    off += l;
  }
  if (off + 4 > p.length) return null;
  const qtype = (p[off]! << 8) | p[off + 1]!;
  return { id, response: (flags & 0x8000) !== 0, name: labels.length ? labels.join('.') + '.' : '.', type: TYPES[qtype] ?? `TYPE${qtype}` };
}

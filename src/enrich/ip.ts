/**
 * Pod IPs in the one textual form drop events use (src/pipeline/addr.ts: dotted IPv4, RFC 5952 IPv6), so
 * an index keyed by text matches `flow.src`/`flow.dst` with a plain map lookup.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ipv6 } from '../pipeline/addr.js';

/** The canonical text of an IP address, or null when `s` is not one (zones are not addresses). */
export function canonicalIp(s: string): string | null {
  if (isIPv4(s)) return s;
  if (!isIPv6(s) || s.includes('%')) return null;
  const bytes = ipv6Bytes(s);
  return bytes ? ipv6(bytes, 0) : null;
}

/** 16 bytes of an IPv6 address already checked by isIPv6 (with an optional dotted IPv4 tail). */
function ipv6Bytes(s: string): Uint8Array | null {
  const out = new Uint8Array(16);
  let text = s.toLowerCase();
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  const v4: number[] = [];
  if (tail.includes('.')) {
    // "::ffff:1.2.3.4": the dotted tail is two words
    for (const p of tail.split('.')) v4.push(Number(p));
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = text.includes('::') ? (text.split('::') as [string, string]) : [text, null];
  const words = (part: string) => (part === '' ? [] : part.split(':').map((w) => parseInt(w, 16)));
  const h = words(head);
  const t = rest === null ? [] : words(rest);
  const all = rest === null ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  if (all.length !== 8) return null;
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  if (v4.length === 4) out.set(v4, 12);
  return out;
}

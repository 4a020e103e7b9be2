/**
 * The filter tree made into one predicate over a `Subject`: what a drop line (stream) or a leaf
 * (the TUI's aggregate) knows. Values are checked here, once, so a bad IP, port or family is an
 * error at its column before anything runs, never a filter that silently matches nothing.
 */
import { BlockList, isIP } from 'node:net';
import { FilterError, parseFilter } from './parse.js';
import type { Field, Node } from './parse.js';

/** What a filter can ask about one drop (or one group of drops that share all of it). */
export interface Subject {
  /** `namespace/name`, null without a pod */
  pod: string | null;
  namespace: string | null;
  kind: string;
  family: string;
  reason: string;
  proto: string | null;
  src: string | null;
  dst: string | null;
  /** null: not known (no ports in the flow; the TUI's groups keep no source port) */
  sport: number | null;
  dport: number | null;
  netns: number;
  /** what the netns is known as, if anything */
  netnsName: string | undefined;
  /** dropped DNS questions' names, without a trailing dot */
  names: readonly string[];
  ifnames: readonly string[];
}

export type Predicate = (s: Subject) => boolean;

const FAMILIES = ['neigh', 'conntrack', 'netfilter', 'martian', 'other'];

/** `*` matches any run of characters; everything else is literal; case-insensitive. */
function equalsOf(value: string): (s: string | null | undefined) => boolean {
  const v = value.toLowerCase();
  if (!v.includes('*')) return (s) => s != null && s.toLowerCase() === v;
  const re = new RegExp(`^${v.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'i');
  return (s) => s != null && re.test(s);
}

function containsOf(value: string): (s: string | null | undefined) => boolean {
  const v = value.toLowerCase();
  return (s) => s != null && s.toLowerCase().includes(v);
}

const trimDot = (s: string) => (s.endsWith('.') && s.length > 1 ? s.slice(0, -1) : s);

/** An address or a CIDR, in any spelling the kernel's would match (IPv6 zeros, case). */
function addressOf(value: string, col: number, text: string): (ip: string | null) => boolean {
  const list = new BlockList();
  const [addr, bits, extra] = value.split('/');
  const family = isIP(addr ?? '');
  const type = family === 6 ? 'ipv6' : 'ipv4';
  const max = family === 6 ? 128 : 32;
  if (family === 0 || extra !== undefined || (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > max))) {
    throw new FilterError(`"${value}" is not an IP address or CIDR (198.18.0.0/15, fd99::1)`, col, text);
  }
  if (bits === undefined) list.addAddress(addr!, type);
  else list.addSubnet(addr!, Number(bits), type);
  return (ip) => ip !== null && isIP(ip) === family && list.check(ip, type);
}

function portsOf(value: string, col: number, text: string): (p: number | null) => boolean {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(value);
  const lo = m ? Number(m[1]) : NaN;
  const hi = m?.[2] !== undefined ? Number(m[2]) : lo;
  if (!m || hi > 65535 || lo > hi) throw new FilterError(`"${value}" is not a port or a range of ports (53, 30000-32767)`, col, text);
  return (p) => p !== null && p >= lo && p <= hi;
}

function compileTerm(n: Extract<Node, { type: 'term' }>, text: string): Predicate {
  const { field, op, col } = n;
  const exact = op !== ':';
  const value = field === 'reason' ? n.value.replace(/^skb_drop_reason_/i, '') : n.value;
  const str = exact ? equalsOf(value) : containsOf(value);
  let p: Predicate;
  switch (field as Field) {
    case 'pod':
      // pod=web-1 or pod=default/web-1; pod:web anywhere in namespace/name
      p = exact ? (s) => s.pod !== null && (str(s.pod) || str(s.pod.slice(s.pod.indexOf('/') + 1))) : (s) => str(s.pod);
      break;
    case 'ns':
      p = (s) => str(s.namespace);
      break;
    case 'kind':
      // kind:neigh also finds the family, as the TUI always did
      p = exact ? (s) => str(s.kind) : (s) => str(s.kind) || str(s.family);
      break;
    case 'family':
      if (exact && !value.includes('*') && !FAMILIES.includes(value.toLowerCase())) {
        throw new FilterError(`unknown family "${value}" (${FAMILIES.join(', ')})`, col, text);
      }
      p = (s) => str(s.family);
      break;
    case 'reason':
      p = (s) => str(s.reason);
      break;
    case 'proto':
      p = (s) => str(s.proto);
      break;
    case 'ip':
    case 'src':
    case 'dst': {
      // ip=ADDR and any CIDR compare addresses; ip:198.18. is text, as the TUI always did
      const cidr = value.includes('/') || (exact && !value.includes('*'));
      const m: (ip: string | null) => boolean = cidr ? addressOf(value, col, text) : (ip) => str(ip);
      p = field === 'src' ? (s) => m(s.src) : field === 'dst' ? (s) => m(s.dst) : (s) => m(s.src) || m(s.dst);
      break;
    }
    case 'port':
    case 'sport':
    case 'dport': {
      const m = portsOf(value, col, text);
      p = field === 'sport' ? (s) => m(s.sport) : field === 'dport' ? (s) => m(s.dport) : (s) => m(s.sport) || m(s.dport);
      break;
    }
    case 'dns': {
      const want = exact ? equalsOf(trimDot(value)) : str;
      p = (s) => s.names.some((x) => want(trimDot(x)));
      break;
    }
    case 'netns':
      p = (s) => str(String(s.netns)) || str(s.netnsName);
      break;
    case 'ifname':
      p = (s) => s.ifnames.some(str);
      break;
  }
  return op === '!=' ? (s) => !p(s) : p;
}

/** A bare word: any of the fields contains it. */
function compileWord(value: string): Predicate {
  const has = containsOf(value);
  return (s) =>
    has(s.pod) ||
    has(s.kind) ||
    has(s.family) ||
    has(s.reason) ||
    has(s.src) ||
    has(s.dst) ||
    has(String(s.netns)) ||
    has(s.netnsName) ||
    s.names.some(has);
}

export function compile(n: Node, text: string): Predicate {
  switch (n.type) {
    case 'term':
      return compileTerm(n, text);
    case 'word':
      return compileWord(n.value);
    case 'not': {
      const e = compile(n.expr, text);
      return (s) => !e(s);
    }
    case 'and': {
      const l = compile(n.left, text);
      const r = compile(n.right, text);
      return (s) => l(s) && r(s);
    }
    case 'or': {
      const l = compile(n.left, text);
      const r = compile(n.right, text);
      return (s) => l(s) || r(s);
    }
  }
}

/** A parsed and checked filter: `matches` is null when the text is empty (everything passes). */
export interface Filter {
  text: string;
  tree: Node | null;
  matches: Predicate | null;
}

/** Parse and check once; throws FilterError (with the column) on bad input. */
export function compileFilter(text: string): Filter {
  const tree = parseFilter(text);
  return { text, tree, matches: tree ? compile(tree, text) : null };
}

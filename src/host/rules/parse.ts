/**
 * Parsers of what the firewall tools print: `nft -j list ruleset` (rules, handles, counters,
 * native comments), `nft -a list ruleset` (the rule text, by handle) and `iptables-save -c`
 * (legacy tables, and the comments iptables-nft keeps in xt matches that nft's JSON leaves out).
 * Only DROP/REJECT rules are kept; `maxRules` bounds them per netns, the rest counted.
 */
import type { Cond, RuleInfo, RulesetSnapshot } from './types.js';

type Json = unknown;
const isObj = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function nftRuleId(family: string, table: string, chain: string, handle: number): string {
  return `nft ${family} ${table} ${chain} ${handle}`;
}

/** Rules of `nft -j list ruleset`. Throws on text that is not its JSON. */
export function parseNftJson(text: string, maxRules: number): RulesetSnapshot {
  const doc = JSON.parse(text) as Json;
  if (!isObj(doc) || !Array.isArray(doc.nftables)) throw new Error('not nft -j output');
  const rules: RuleInfo[] = [];
  const positions = new Map<string, number>();
  let overCap = 0;
  for (const item of doc.nftables) {
    if (!isObj(item) || !isObj(item.rule)) continue;
    const r = item.rule;
    const family = String(r.family), table = String(r.table), chain = String(r.chain);
    const chainKey = `${family} ${table} ${chain}`;
    const position = (positions.get(chainKey) ?? 0) + 1;
    positions.set(chainKey, position);
    const expr = Array.isArray(r.expr) ? r.expr : [];
    let verdict: RuleInfo['verdict'] | null = null;
    let packets: number | null = null;
    let xt = false;
    const conds: Cond[] = [];
    for (const e of expr) {
      if (!isObj(e)) continue;
      if ('drop' in e) verdict = 'drop';
      else if ('reject' in e) verdict = 'reject';
      else if (isObj(e.counter)) packets = Number(e.counter.packets);
      else if (isObj(e.xt)) {
        xt = true;
        const name = String(e.xt.name).toUpperCase();
        if (e.xt.type === 'target' && (name === 'REJECT' || name === 'DROP')) verdict = name === 'DROP' ? 'drop' : 'reject';
        // a comment matches every packet; other xt matches say nothing JSON can read
        else if (!(e.xt.type === 'match' && name === 'COMMENT')) conds.push({ key: 'unknown' });
      } else if (isObj(e.match)) conds.push(...nftMatch(e.match));
      else if (!('counter' in e)) conds.push({ key: 'unknown' });
    }
    if (verdict === null) continue;
    if (rules.length >= maxRules) {
      overCap++;
      continue;
    }
    const handle = Number(r.handle);
    rules.push({
      id: nftRuleId(family, table, chain, handle),
      backend: 'nft',
      family,
      table,
      chain,
      position,
      handle,
      verdict,
      comment: typeof r.comment === 'string' ? r.comment : null,
      text: null,
      packets: Number.isFinite(packets) ? packets : null,
      conds,
      xt,
    });
  }
  return { rules, overCap };
}

const L4 = new Set(['tcp', 'udp', 'sctp', 'dccp', 'udplite']);

/** The conditions of one nft `match` expression (a payload L4 port brings its protocol). */
function nftMatch(m: Record<string, Json>): Cond[] {
  const op = m.op;
  if (op !== '==' && op !== '!=' && op !== 'in') return [{ key: 'unknown' }];
  const neg = op === '!=';
  const right = isObj(m.right) && Array.isArray(m.right.set) ? m.right.set : [m.right];
  const left = m.left;
  if (isObj(left) && isObj(left.payload)) {
    const { protocol, field } = left.payload;
    if ((L4.has(String(protocol)) || protocol === 'th') && (field === 'dport' || field === 'sport')) {
      const values = right.map(portValue);
      if (values.some((v) => v === null)) return [{ key: 'unknown' }];
      const port: Cond = { key: field, neg, values: values as Array<number | { lo: number; hi: number }> };
      // `udp dport != 53` still only matches UDP
      return protocol === 'th' ? [port] : [{ key: 'proto', neg: false, values: [String(protocol)] }, port];
    }
    if ((protocol === 'ip' || protocol === 'ip6') && (field === 'saddr' || field === 'daddr')) {
      const values = right.map(addrValue);
      if (values.some((v) => v === null)) return [{ key: 'unknown' }];
      return [
        { key: 'ipver', neg: false, values: [protocol === 'ip' ? 4 : 6] },
        { key: field, neg, values: values as Array<{ addr: string; len: number | null }> },
      ];
    }
    if ((protocol === 'ip' && field === 'protocol') || (protocol === 'ip6' && field === 'nexthdr')) {
      if (right.some((v) => typeof v !== 'string' && typeof v !== 'number')) return [{ key: 'unknown' }];
      return [{ key: 'proto', neg, values: right as Array<string | number> }];
    }
  }
  if (isObj(left) && isObj(left.meta)) {
    if (left.meta.key === 'l4proto' && right.every((v) => typeof v === 'string' || typeof v === 'number')) {
      return [{ key: 'proto', neg, values: right as Array<string | number> }];
    }
    if (left.meta.key === 'nfproto' && right.every((v) => v === 'ipv4' || v === 'ipv6')) {
      return [{ key: 'ipver', neg, values: right.map((v) => (v === 'ipv4' ? 4 : 6)) }];
    }
  }
  return [{ key: 'unknown' }];
}

function portValue(v: Json): number | { lo: number; hi: number } | null {
  if (typeof v === 'number') return v;
  if (isObj(v) && Array.isArray(v.range) && typeof v.range[0] === 'number' && typeof v.range[1] === 'number') return { lo: v.range[0], hi: v.range[1] };
  return null;
}

function addrValue(v: Json): { addr: string; len: number | null } | null {
  // a named set (@name) is not in the rule: unknown
  if (typeof v === 'string' && !v.startsWith('@')) return { addr: v, len: null };
  if (isObj(v) && isObj(v.prefix) && typeof v.prefix.addr === 'string') return { addr: v.prefix.addr, len: Number(v.prefix.len) };
  return null;
}

/** Rule texts of `nft -a list ruleset` by rule id, counters taken out (they change, the rule does not). */
export function parseNftText(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let family = '', table = '', chain = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    let m = /^table (\S+) (\S+) \{/.exec(line);
    if (m) {
      [family, table] = [m[1]!, m[2]!];
      continue;
    }
    m = /^chain (\S+) \{/.exec(line);
    if (m) {
      chain = m[1]!;
      continue;
    }
    m = /^(.*?)\s*# handle (\d+)$/.exec(line);
    if (m && chain !== '' && !line.startsWith('set ') && !line.startsWith('map ')) {
      const body = m[1]!
        .replace(/counter packets \d+ bytes \d+/, 'counter')
        .replace(/\s+comment "(?:[^"\\]|\\.)*"$/, '')
        .replace(/\s{2,}/g, ' ');
      out.set(nftRuleId(family, table, chain, Number(m[2])), body);
    }
    if (line === '}' && chain !== '') chain = '';
  }
  return out;
}

/** One rule of `iptables-save -c`. */
export interface SavedRule {
  table: string;
  chain: string;
  position: number;
  packets: number | null;
  text: string;
  comment: string | null;
  verdict: RuleInfo['verdict'] | null;
  conds: Cond[];
}

/** Every rule of `iptables-save -c` (all verdicts: positions count them all). */
export function parseIptablesSave(text: string): SavedRule[] {
  const out: SavedRule[] = [];
  const positions = new Map<string, number>();
  let table = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) {
      table = line.slice(1);
      continue;
    }
    const m = /^(?:\[(\d+):\d+\]\s+)?(-A .*)$/.exec(line);
    if (!m || table === '') continue;
    const tokens = shellWords(m[2]!);
    const chain = tokens[1] ?? '';
    const position = (positions.get(`${table} ${chain}`) ?? 0) + 1;
    positions.set(`${table} ${chain}`, position);
    let comment: string | null = null;
    let verdict: SavedRule['verdict'] = null;
    const conds: Cond[] = [];
    for (let i = 2; i < tokens.length; i++) {
      let t = tokens[i]!;
      let neg = false;
      if (t === '!') {
        neg = true;
        t = tokens[++i] ?? '';
      }
      const arg = tokens[i + 1] ?? '';
      switch (t) {
        case '-m':
          i++;
          break;
        case '--comment':
          comment = arg;
          i++;
          break;
        case '-j':
          if (arg === 'DROP') verdict = 'drop';
          else if (arg === 'REJECT') verdict = 'reject';
          // the target's own options (--reject-with) say nothing of the flow
          i = tokens.length;
          break;
        case '-p':
          conds.push({ key: 'proto', neg, values: [arg] });
          i++;
          break;
        case '-s':
        case '-d': {
          const [addr, len] = arg.split('/');
          const n = len === undefined ? null : /^\d+$/.test(len) ? Number(len) : NaN;
          conds.push(Number.isNaN(n) ? { key: 'unknown' } : { key: t === '-s' ? 'saddr' : 'daddr', neg, values: [{ addr: addr!, len: n }] });
          i++;
          break;
        }
        case '--dport':
        case '--sport':
        case '--dports':
        case '--sports': {
          const values = arg.split(',').map((p) => {
            const [lo, hi] = p.split(':').map(Number);
            return hi === undefined ? lo! : { lo: lo!, hi };
          });
          const bad = values.some((v) => (typeof v === 'number' ? !Number.isInteger(v) : !Number.isInteger(v.lo) || !Number.isInteger(v.hi)));
          conds.push(bad ? { key: 'unknown' } : { key: t.startsWith('--d') ? 'dport' : 'sport', neg, values });
          i++;
          break;
        }
        default:
          conds.push({ key: 'unknown' });
          if (t.startsWith('-') && arg !== '' && !arg.startsWith('-')) i++;
      }
    }
    out.push({
      table,
      chain,
      position,
      packets: m[1] !== undefined ? Number(m[1]) : null,
      text: m[2]!.replace(/\s+-m comment --comment ("(?:[^"\\]|\\.)*"|\S+)/, ''),
      comment,
      verdict,
      conds,
    });
  }
  return out;
}

/** Splits an iptables-save line the way iptables-restore reads it: spaces, double quotes, backslashes. */
function shellWords(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quoted) {
      if (c === '\\' && i + 1 < s.length) cur += s[++i];
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') {
      quoted = inWord = true;
    } else if (c === ' ' || c === '\t') {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

/** Legacy iptables' DROP/REJECT rules as RuleInfo (no handle: identity is the place and text). */
export function legacyRules(saved: SavedRule[], family: 'ip' | 'ip6', maxRules: number): RulesetSnapshot {
  const rules: RuleInfo[] = [];
  let overCap = 0;
  for (const s of saved) {
    if (s.verdict === null) continue;
    if (rules.length >= maxRules) {
      overCap++;
      continue;
    }
    rules.push({
      id: `legacy ${family} ${s.table} ${s.chain} ${s.position} ${s.text}`,
      backend: 'iptables-legacy',
      family,
      table: s.table,
      chain: s.chain,
      position: s.position,
      handle: null,
      verdict: s.verdict,
      comment: s.comment,
      text: s.text,
      packets: s.packets,
      conds: [{ key: 'ipver', neg: false, values: [family === 'ip' ? 4 : 6] }, ...s.conds],
      xt: false,
    });
  }
  return { rules, overCap };
}

/**
 * Text and comment of iptables-nft rules from `iptables-nft-save -c`: the i-th rule of a chain
 * there is the i-th rule of that table's chain in nft (iptables-nft keeps one rule per rule).
 * A chain whose rule counts or verdicts disagree (changed between the two reads) is left alone.
 */
export function mergeNftSave(rules: RuleInfo[], saved: SavedRule[], family: 'ip' | 'ip6'): void {
  const byPlace = new Map<string, SavedRule>();
  for (const s of saved) byPlace.set(`${s.table} ${s.chain} ${s.position}`, s);
  for (const r of rules) {
    if (r.family !== family) continue;
    const s = byPlace.get(`${r.table} ${r.chain} ${r.position}`);
    if (s === undefined || s.verdict !== r.verdict) continue;
    r.text = s.text;
    r.comment = s.comment;
  }
}

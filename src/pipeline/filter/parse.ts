/**
 * The filter language, one for `droptrace stream --filter` and the TUI's `/`: terms joined by
 * `and` (or a space), `or`, `not`, parentheses. A term is `field:value` (contains), `field=value`
 * (equals; `*` is a wildcard, an IP value may be a CIDR, a port value a range), `field!=value`
 * (not equals), or a bare word (any field contains it). Parsed once into a tree; every error
 * names the column of the token it is about.
 */

export type Field = 'pod' | 'ns' | 'kind' | 'family' | 'reason' | 'ip' | 'src' | 'dst' | 'port' | 'sport' | 'dport' | 'proto' | 'dns' | 'netns' | 'ifname';
export type Op = ':' | '=' | '!=';

export type Node =
  | { type: 'term'; field: Field; op: Op; value: string; col: number }
  | { type: 'word'; value: string; col: number }
  | { type: 'and' | 'or'; left: Node; right: Node }
  | { type: 'not'; expr: Node };

const ALIASES: Record<string, Field> = {
  pod: 'pod',
  ns: 'ns',
  namespace: 'ns',
  kind: 'kind',
  family: 'family',
  reason: 'reason',
  ip: 'ip',
  addr: 'ip',
  src: 'src',
  dst: 'dst',
  port: 'port',
  sport: 'sport',
  dport: 'dport',
  proto: 'proto',
  dns: 'dns',
  name: 'dns',
  netns: 'netns',
  ifname: 'ifname',
  dev: 'ifname',
};

/** The fields, for messages (namespace, addr, name and dev are aliases) */
export const FIELD_NAMES: readonly Field[] = [...new Set(Object.values(ALIASES))];

/** A filter the user wrote that cannot be parsed: `col` (1-based) points at the bad token. */
export class FilterError extends Error {
  constructor(
    readonly why: string,
    readonly col: number,
    readonly text: string,
  ) {
    // one line whatever was pasted: each whitespace character becomes a space, columns stay
    const line = text.replace(/\s/g, ' ');
    super(`${why} at column ${col}: ${line.slice(0, col - 1)}^${line.slice(col - 1)}`);
    this.name = 'FilterError';
  }
}

type Tok =
  | { t: '(' | ')' | 'and' | 'or' | 'not' | 'end'; col: number; len: number }
  | { t: 'word'; raw: string; col: number; len: number };

const KEYWORDS: Record<string, 'and' | 'or' | 'not'> = { and: 'and', or: 'or', not: 'not', '&&': 'and', '||': 'or' };

function lex(text: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '(' || c === ')') {
      toks.push({ t: c, col: i + 1, len: 1 });
      i++;
      continue;
    }
    if (c === '!' && text[i + 1] !== '=') {
      toks.push({ t: 'not', col: i + 1, len: 1 });
      i++;
      continue;
    }
    // a word runs to a space or a parenthesis; a quoted part may hold either
    const start = i;
    let raw = '';
    while (i < text.length && !/[\s()]/.test(text[i]!)) {
      const q = text[i]!;
      if (q === '"' || q === "'") {
        const close = text.indexOf(q, i + 1);
        if (close < 0) throw new FilterError(`unclosed ${q}`, i + 1, text);
        raw += text.slice(i + 1, close);
        i = close + 1;
      } else {
        raw += q;
        i++;
      }
    }
    const quoted = text.slice(start, i) !== raw;
    const kw = quoted ? undefined : KEYWORDS[raw.toLowerCase()];
    if (kw) toks.push({ t: kw, col: start + 1, len: i - start });
    else toks.push({ t: 'word', raw, col: start + 1, len: i - start });
  }
  toks.push({ t: 'end', col: text.length + 1, len: 0 });
  return toks;
}

const HEX_ONLY = /^[0-9a-f]+$/i;

/** A word as a term: a known field before `:`, `=` or `!=`; otherwise a bare word. */
function term(tok: Extract<Tok, { t: 'word' }>, text: string): Node {
  const m = /^([A-Za-z_]+)(!=|=|:)/.exec(tok.raw);
  if (m) {
    const name = m[1]!.toLowerCase();
    const field = ALIASES[name];
    const op = m[2] as Op;
    const valueCol = tok.col + m[0].length;
    if (field === undefined) {
      // `fe80::1` and `dead:beef::1` are bare words (IPv6); anything else before `:` or `=` is a typo
      if (op === ':' && HEX_ONLY.test(name)) return { type: 'word', value: tok.raw.toLowerCase(), col: tok.col };
      throw new FilterError(`unknown field "${m[1]}" (fields: ${FIELD_NAMES.join(', ')})`, tok.col, text);
    }
    const value = tok.raw.slice(m[0].length);
    if (value === '') throw new FilterError(`${m[1]}${op} wants a value`, valueCol, text);
    return { type: 'term', field, op, value, col: valueCol };
  }
  if (/^[=!:]/.test(tok.raw)) throw new FilterError(`"${tok.raw[0]}" wants a field before it (${FIELD_NAMES.slice(0, 6).join(', ')}, ...)`, tok.col, text);
  return { type: 'word', value: tok.raw.toLowerCase(), col: tok.col };
}

/**
 * Precedence, loosest first: `or`, `and` (a space is an `and`), `not`. An empty text is null:
 * no filter.
 */
export function parseFilter(text: string): Node | null {
  const toks = lex(text);
  let p = 0;
  const peek = () => toks[p]!;
  const what = (t: Tok) => (t.t === 'end' ? 'the end' : `"${text.slice(t.col - 1, t.col - 1 + t.len)}"`);

  const orExpr = (): Node => {
    let left = andExpr();
    while (peek().t === 'or') {
      p++;
      left = { type: 'or', left, right: andExpr() };
    }
    return left;
  };
  const andExpr = (): Node => {
    let left = notExpr();
    for (;;) {
      const t = peek().t;
      if (t === 'and') p++;
      else if (t !== 'word' && t !== 'not' && t !== '(') return left;
      left = { type: 'and', left, right: notExpr() };
    }
  };
  const notExpr = (): Node => {
    if (peek().t === 'not') {
      p++;
      return { type: 'not', expr: notExpr() };
    }
    return primary();
  };
  const primary = (): Node => {
    const t = peek();
    if (t.t === '(') {
      p++;
      const e = orExpr();
      const close = peek();
      if (close.t !== ')') throw new FilterError(`expected ")" for the "(" at column ${t.col}, found ${what(close)}`, close.col, text);
      p++;
      return e;
    }
    if (t.t === 'word') {
      p++;
      return term(t, text);
    }
    throw new FilterError(`expected a term, found ${what(t)}`, t.col, text);
  };

  if (peek().t === 'end') return null;
  const tree = orExpr();
  const rest = peek();
  if (rest.t !== 'end') throw new FilterError(`unexpected ${what(rest)}`, rest.col, text);
  return tree;
}

const PREC = { or: 1, and: 2, not: 3, term: 4, word: 4 } as const;
const quote = (v: string) => (v === '' || /[\s()"']|^[!=:]/.test(v) || KEYWORDS[v.toLowerCase()] ? JSON.stringify(v) : v);

/** The tree written back as text, parenthesised only where precedence needs it. */
export function formatFilter(n: Node | null, outer = 0): string {
  if (n === null) return '';
  let s: string;
  switch (n.type) {
    case 'term':
      s = `${n.field}${n.op}${quote(n.value)}`;
      break;
    case 'word':
      s = quote(n.value);
      break;
    case 'not':
      s = `not ${formatFilter(n.expr, PREC.not)}`;
      break;
    case 'and':
    case 'or':
      s = `${formatFilter(n.left, PREC[n.type])} ${n.type} ${formatFilter(n.right, PREC[n.type])}`;
  }
  return PREC[n.type] < outer ? `(${s})` : s;
}

/** The filter language's parser: precedence, quoting, IPv6 as bare words, and where errors point. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FilterError, formatFilter, parseFilter } from '../../../src/pipeline/filter/index.js';
import type { Node } from '../../../src/pipeline/filter/index.js';

const fmt = (s: string) => formatFilter(parseFilter(s));

/** The error a text gives: its message's reason and the 1-based column it points at. */
function error(text: string): { why: string; col: number; message: string } {
  try {
    parseFilter(text);
  } catch (e) {
    if (e instanceof FilterError) return { why: e.why, col: e.col, message: e.message };
    throw e;
  }
  throw new Error(`"${text}" parsed`);
}

describe('parseFilter', () => {
  it('reads nothing as no filter', () => {
    expect(parseFilter('')).toBeNull();
    expect(parseFilter('   \t ')).toBeNull();
  });

  it('binds not tighter than and (or a space), and and tighter than or', () => {
    expect(fmt('a b or c')).toBe('a and b or c');
    expect(fmt('a or b c')).toBe('a or b and c');
    expect(fmt('a and (b or c)')).toBe('a and (b or c)');
    expect(fmt('not a and b')).toBe('not a and b');
    expect(fmt('not (a and b)')).toBe('not (a and b)');
    expect(fmt('!a && b || !!c')).toBe('not a and b or not not c');
    expect(fmt('A AND b Or NOT c')).toBe('a and b or not c');
    expect(parseFilter('a or b c')).toMatchObject({ type: 'or', left: { type: 'word', value: 'a' }, right: { type: 'and' } });
  });

  it('reads field:value, field=value and field!=value, with aliases', () => {
    expect(parseFilter('kind=netfilter_rule')).toEqual({ type: 'term', field: 'kind', op: '=', value: 'netfilter_rule', col: 6 });
    expect(parseFilter('namespace!=kube-system')).toEqual({ type: 'term', field: 'ns', op: '!=', value: 'kube-system', col: 12 });
    expect(fmt('pod:web addr=198.18.0.0/15 name:payments dev=eth0')).toBe('pod:web and ip=198.18.0.0/15 and dns:payments and ifname=eth0');
  });

  it('keeps IPv6 addresses (and hex before a colon) as bare words', () => {
    expect(parseFilter('fe80::1')).toEqual({ type: 'word', value: 'fe80::1', col: 1 });
    expect(parseFilter('dead:beef::1')).toEqual({ type: 'word', value: 'dead:beef::1', col: 1 });
    expect(fmt('ip=fd99::2 or ip:fe80::')).toBe('ip=fd99::2 or ip:fe80::');
  });

  it('takes quoted values, spaces and parentheses inside them', () => {
    expect(parseFilter('pod="web (canary) 1"')).toEqual({ type: 'term', field: 'pod', op: '=', value: 'web (canary) 1', col: 5 });
    expect(parseFilter("'and'")).toEqual({ type: 'word', value: 'and', col: 1 });
    expect(fmt('"or" "a b"')).toBe('"or" and "a b"');
  });

  it('points at the bad token: column and a caret in one line', () => {
    expect(error('kind=netfilter_rule and podd=web')).toEqual({
      why: 'unknown field "podd" (fields: pod, ns, kind, family, reason, ip, src, dst, port, sport, dport, proto, dns, netns, ifname)',
      col: 25,
      message:
        'unknown field "podd" (fields: pod, ns, kind, family, reason, ip, src, dst, port, sport, dport, proto, dns, netns, ifname) at column 25: kind=netfilter_rule and ^podd=web',
    });
    expect(error('kind=x and (port=5301 or')).toMatchObject({ why: 'expected a term, found the end', col: 25 });
    expect(error('(a or b')).toMatchObject({ why: 'expected ")" for the "(" at column 1, found the end', col: 8 });
    expect(error('a or b)')).toMatchObject({ why: 'unexpected ")"', col: 7 });
    expect(error('a and or b')).toMatchObject({ why: 'expected a term, found "or"', col: 7 });
    expect(error('kind= and')).toMatchObject({ why: 'kind= wants a value', col: 6 });
    expect(error('pod="web')).toMatchObject({ why: 'unclosed "', col: 5 });
    expect(error('a =b')).toMatchObject({ why: '"=" wants a field before it (pod, ns, kind, family, reason, ip, ...)', col: 3 });
    expect(error('not')).toMatchObject({ why: 'expected a term, found the end', col: 4 });
    expect(error('()')).toMatchObject({ why: 'expected a term, found ")"', col: 2 });
  });
});

// random trees over a few fields and values, written out, read back
const value = fc.constantFrom('web', 'kube-system', 'netfilter_rule', '198.18.0.0/15', 'fd99::2', 'a b', '(x)', 'and', '5301', 'no_socket', "it's");
const leaf: fc.Arbitrary<Node> = fc.oneof(
  fc.record({
    type: fc.constant('term' as const),
    field: fc.constantFrom('pod' as const, 'ns' as const, 'kind' as const, 'ip' as const, 'dns' as const, 'reason' as const),
    op: fc.constantFrom(':' as const, '=' as const, '!=' as const),
    value,
    col: fc.constant(0),
  }),
  fc.record({ type: fc.constant('word' as const), value: value.map((v) => v.toLowerCase()), col: fc.constant(0) }),
);
const tree = fc.letrec<{ node: Node }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.record({ type: fc.constant('not' as const), expr: tie('node') }),
    fc.record({ type: fc.constantFrom('and' as const, 'or' as const), left: tie('node'), right: tie('node') }),
  ),
})).node;

describe('parseFilter, properties', () => {
  it('reads back what formatFilter writes: the same text again', () => {
    fc.assert(
      fc.property(tree, (t) => {
        const text = formatFilter(t);
        expect(formatFilter(parseFilter(text))).toBe(text);
      }),
      { numRuns: 500 },
    );
  });

  it('never fails but with a FilterError whose column is inside the text (or just past it)', () => {
    const alphabet = fc.constantFrom(...'ab :=!()"\'&|/.-5 kind pod or and not port'.split(''), 'kind', 'pod=', 'port=', ' or ', ' and ', 'not ', '\n', '\t');
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 30 }).map((a) => a.join('')), (text) => {
        try {
          parseFilter(text);
        } catch (e) {
          expect(e).toBeInstanceOf(FilterError);
          const f = e as FilterError;
          expect(f.col).toBeGreaterThanOrEqual(1);
          expect(f.col).toBeLessThanOrEqual(text.length + 1);
          expect(f.message).not.toContain('\n');
          const line = text.replace(/\s/g, ' ');
          expect(f.message.endsWith(`${line.slice(0, f.col - 1)}^${line.slice(f.col - 1)}`)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

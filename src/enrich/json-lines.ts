/**
 * JSON.parse that remembers lines: the line of every object, array and member, so that a
 * config error can say "line 7: pods[1].ips[0]: ..." instead of a character offset.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

export class JsonSyntaxError extends Error {
  constructor(
    readonly line: number,
    readonly column: number,
    message: string,
  ) {
    super(message);
  }
}

export interface LocatedJson {
  value: JsonValue;
  /** line (1-based) where an object or array starts */
  lineOf(node: object): number | undefined;
  /** line of a member's key, or of an array element */
  memberLine(node: object, key: string | number): number | undefined;
}

export function parseJsonWithLines(text: string): LocatedJson {
  const starts = new WeakMap<object, number>();
  const members = new WeakMap<object, Map<string | number, number>>();
  let i = 0;
  let line = 1;
  let lineStart = 0;

  const fail = (what: string): never => {
    const near = i < text.length ? `${JSON.stringify(text[i])}` : 'end of file';
    throw new JsonSyntaxError(line, i - lineStart + 1, `${what}, found ${near}`);
  };
  const ws = () => {
    for (; i < text.length; i++) {
      const c = text[i];
      if (c === '\n') {
        line++;
        lineStart = i + 1;
      } else if (c !== ' ' && c !== '\t' && c !== '\r') break;
    }
  };
  const str = (): string => {
    const from = i;
    i++;
    for (; i < text.length; i++) {
      const c = text[i];
      if (c === '"') break;
      if (c === '\\') i++;
      else if (c === '\n' || (c !== undefined && c < ' ')) fail('unterminated string');
    }
    if (i >= text.length) fail('unterminated string');
    i++;
    try {
      return JSON.parse(text.slice(from, i)) as string;
    } catch {
      i = from;
      return fail('bad escape in string');
    }
  };
  const value = (): JsonValue => {
    ws();
    const c = text[i];
    if (c === '{') {
      const obj: { [k: string]: JsonValue } = {};
      const lines = new Map<string | number, number>();
      starts.set(obj, line);
      members.set(obj, lines);
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a member name in double quotes');
        const keyLine = line;
        const key = str();
        ws();
        if (text[i] !== ':') fail(`expected ':' after ${JSON.stringify(key)}`);
        i++;
        // defineProperty: a "__proto__" member stays a member, as with JSON.parse
        Object.defineProperty(obj, key, { value: value(), enumerable: true, writable: true, configurable: true });
        lines.set(key, keyLine);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      const arr: JsonValue[] = [];
      const lines = new Map<string | number, number>();
      starts.set(arr, line);
      members.set(arr, lines);
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        ws();
        lines.set(arr.length, line);
        arr.push(value());
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    const m = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i, i + 64));
    if (m === null) return fail('expected a value');
    i += m[0].length;
    return JSON.parse(m[0]) as JsonValue;
  };

  const v = value();
  ws();
  if (i < text.length) fail('unexpected text after the end');
  return {
    value: v,
    lineOf: (node) => starts.get(node),
    memberLine: (node, key) => members.get(node)?.get(key),
  };
}

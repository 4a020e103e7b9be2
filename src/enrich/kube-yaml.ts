/**
 * The YAML a kubeconfig is written in (by kubectl, kubeadm, cloud CLIs): block mappings and
 * sequences, plain and quoted scalars, `{}`/`[]`, comments — or plain JSON. Anything beyond
 * that (anchors, block scalars, multi-line flow) is refused with its line number rather than
 * guessed at; a full YAML library is not worth a dependency for one small file.
 */

export type YamlValue = null | boolean | number | string | YamlValue[] | { [k: string]: YamlValue };

export class YamlError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
  }
}

interface Line {
  n: number;
  indent: number;
  text: string;
}

/** Removes a comment: `#` at the start or after a space, outside quotes. */
function stripComment(s: string): string {
  let q: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q !== null) {
      if (c === '\\' && q === '"') i++;
      else if (c === q) q = null;
    } else if (c === '"' || c === "'") {
      if (i === 0 || /[\s:[{,-]/.test(s[i - 1]!)) q = c;
    } else if (c === '#' && (i === 0 || s[i - 1] === ' ' || s[i - 1] === '\t')) {
      return s.slice(0, i);
    }
  }
  return s;
}

/** Index of the `:` that ends a mapping key (followed by a space or the end), outside quotes. */
function keyColon(s: string): number {
  let q: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q !== null) {
      if (c === '\\' && q === '"') i++;
      else if (c === q) q = null;
    } else if ((c === '"' || c === "'") && i === 0) q = c;
    else if (c === ':' && (i + 1 === s.length || s[i + 1] === ' ')) return i;
  }
  return -1;
}

function scalar(raw: string, n: number): YamlValue {
  const s = raw.trim();
  if (s === '' || s === '~' || s === 'null' || s === 'Null' || s === 'NULL') return null;
  if (s.startsWith('"')) {
    if (!s.endsWith('"') || s.length < 2) throw new YamlError(n, 'unterminated double-quoted string');
    try {
      return JSON.parse(s) as string;
    } catch {
      throw new YamlError(n, 'unsupported escape in a double-quoted string');
    }
  }
  if (s.startsWith("'")) {
    if (!s.endsWith("'") || s.length < 2) throw new YamlError(n, 'unterminated single-quoted string');
    return s.slice(1, -1).replaceAll("''", "'");
  }
  if (s.startsWith('[') || s.startsWith('{')) {
    if (s === '[]') return [];
    if (s === '{}') return {};
    try {
      return JSON.parse(s) as YamlValue;
    } catch {
      if (s.startsWith('[') && s.endsWith(']')) return s.slice(1, -1).split(',').map((x) => scalar(x, n));
      throw new YamlError(n, 'flow mappings other than JSON are not supported');
    }
  }
  if (s.startsWith('|') || s.startsWith('>')) throw new YamlError(n, 'block scalars (| and >) are not supported');
  if (s.startsWith('&') || s.startsWith('*') || s.startsWith('!')) throw new YamlError(n, 'anchors, aliases and tags are not supported');
  if (/^(true|True|TRUE)$/.test(s)) return true;
  if (/^(false|False|FALSE)$/.test(s)) return false;
  if (/^[-+]?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?$/.test(s)) return Number(s);
  return s;
}

const isDash = (t: string) => t === '-' || t.startsWith('- ');

export function parseYaml(text: string): YamlValue {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{')) {
    try {
      return JSON.parse(text) as YamlValue;
    } catch (e) {
      throw new YamlError(1, `not valid JSON: ${(e as Error).message}`);
    }
  }
  const lines: Line[] = [];
  text.split('\n').forEach((raw, i) => {
    const n = i + 1;
    const body = stripComment(raw.replace(/\r$/, '')).trimEnd();
    if (body.trim() === '' || body === '---' || body === '...') return;
    const indent = body.length - body.trimStart().length;
    if (body.slice(0, indent).includes('\t')) throw new YamlError(n, 'tabs are not allowed for indentation');
    lines.push({ n, indent, text: body.slice(indent) });
  });
  let pos = 0;

  const block = (indent: number): YamlValue => {
    const l = lines[pos]!;
    return isDash(l.text) ? seq(l.indent) : map(l.indent);
  };

  const seq = (indent: number): YamlValue[] => {
    const out: YamlValue[] = [];
    while (pos < lines.length && lines[pos]!.indent === indent && isDash(lines[pos]!.text)) {
      const l = lines[pos]!;
      const rest = l.text.slice(1).trimStart();
      if (rest === '') {
        pos++;
        const next = lines[pos];
        out.push(next !== undefined && next.indent > indent ? block(next.indent) : null);
      } else if (isDash(rest) || keyColon(rest) >= 0) {
        // "- key: value": a mapping whose first line starts after the dash
        const inner = l.text.length - rest.length;
        lines[pos] = { n: l.n, indent: indent + inner, text: rest };
        out.push(block(indent + inner));
      } else {
        pos++;
        out.push(scalar(rest, l.n));
      }
    }
    return out;
  };

  const map = (indent: number): { [k: string]: YamlValue } => {
    const out: { [k: string]: YamlValue } = {};
    while (pos < lines.length && lines[pos]!.indent === indent && !isDash(lines[pos]!.text)) {
      const l = lines[pos]!;
      const c = keyColon(l.text);
      if (c < 0) throw new YamlError(l.n, 'expected "key: value"');
      const rawKey = l.text.slice(0, c).trim();
      const key = rawKey.startsWith('"') || rawKey.startsWith("'") ? String(scalar(rawKey, l.n)) : rawKey;
      const rest = l.text.slice(c + 1).trim();
      pos++;
      if (rest !== '') {
        out[key] = scalar(rest, l.n);
        continue;
      }
      const next = lines[pos];
      // a sequence may sit at its key's own indentation (kubectl writes it that way)
      if (next !== undefined && (next.indent > indent || (next.indent === indent && isDash(next.text)))) out[key] = block(next.indent);
      else out[key] = null;
    }
    const next = lines[pos];
    if (next !== undefined && next.indent > indent) throw new YamlError(next.n, 'unexpected indentation');
    return out;
  };

  if (lines.length === 0) return null;
  const v = block(lines[0]!.indent);
  const left = lines[pos];
  if (left !== undefined) throw new YamlError(left.n, 'unexpected indentation');
  return v;
}

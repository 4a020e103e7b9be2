/**
 * Config files (kubeconfig, `--pods`) read with the `yaml` library, remembering the line of every
 * mapping, sequence and member, so that a mistake is reported as "line 7: pods[1].ips[0]: ...".
 * YAML 1.2 reads JSON too, so one reader serves both spellings of a pods file.
 */
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';

export type Value = null | boolean | number | string | Value[] | { [k: string]: Value };

export class YamlSyntaxError extends Error {
  constructor(
    readonly line: number,
    readonly column: number,
    message: string,
  ) {
    super(message);
  }
}

export interface LocatedDoc {
  value: Value;
  /** line (1-based) where a mapping or sequence starts */
  lineOf(node: object): number | undefined;
  /** line of a member's key, or of a sequence element */
  memberLine(node: object, key: string | number): number | undefined;
}

/** Parses one YAML (or JSON) document; syntax errors are a YamlSyntaxError with a line and column. */
export function parseYamlWithLines(text: string): LocatedDoc {
  const lines = new LineCounter();
  // no merge keys by the library: `<<` is handled below, only when unquoted
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined) => lines.linePos(offset ?? 0);
  const first = doc.errors[0];
  if (first) {
    const { line, col } = at(first.pos[0]);
    throw new YamlSyntaxError(line, col, oneLine(first.message));
  }
  const starts = new WeakMap<object, number>();
  const members = new WeakMap<object, Map<string | number, number>>();
  // an anchored node is converted once and shared by its aliases, so aliases cannot multiply work
  const converted = new Map<YamlNode, Value>();
  const open = new Set<YamlNode>();

  const fail = (node: { range?: [number, number, number] | null } | null | undefined, message: string): never => {
    const { line, col } = at(node?.range?.[0]);
    throw new YamlSyntaxError(line, col, message);
  };

  const convert = (node: unknown): Value => {
    if (node === null || node === undefined) return null;
    if (isAlias(node)) {
      const target = node.resolve(doc as Document);
      if (!target) return fail(node, `alias *${node.source} has no anchor`);
      if (open.has(target)) return fail(node, `alias *${node.source} refers to a node that contains it`);
      return convert(target);
    }
    const n = node as YamlNode;
    const done = converted.get(n);
    if (done !== undefined) return done;
    let out: Value;
    if (isScalar(n)) {
      const v = n.value;
      // tags such as !!binary resolve to objects: keep what the file says
      out = v === null || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number' ? v : String(n.source ?? '');
    } else if (isSeq(n)) {
      const list: Value[] = [];
      out = list;
      starts.set(list, at(n.range?.[0]).line);
      const where = new Map<string | number, number>();
      members.set(list, where);
      open.add(n);
      n.items.forEach((item, i) => {
        where.set(i, at((item as YamlNode | null)?.range?.[0] ?? n.range?.[0]).line);
        list.push(convert(item));
      });
      open.delete(n);
    } else if (isMap(n)) {
      const obj: { [k: string]: Value } = {};
      out = obj;
      starts.set(obj, at(n.range?.[0]).line);
      const where = new Map<string | number, number>();
      members.set(obj, where);
      open.add(n);
      const set = (key: string, value: Value, line: number) => {
        // defineProperty: a "__proto__" key is a member, as JSON.parse makes it, not a prototype
        Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
        where.set(key, line);
      };
      for (const pair of n.items) {
        const keyNode = pair.key as YamlNode | null;
        if (keyNode !== null && !isScalar(keyNode)) fail(keyNode, 'keys must be plain strings');
        const line = at(keyNode?.range?.[0] ?? n.range?.[0]).line;
        if (isScalar(keyNode) && keyNode.type === 'PLAIN' && keyNode.value === '<<') {
          // a merge key: members of the merged mapping(s) that this mapping does not set itself
          const merged = convert(pair.value);
          for (const m of Array.isArray(merged) ? merged : [merged]) {
            if (typeof m !== 'object' || m === null || Array.isArray(m)) fail(keyNode, '<< merges only mappings');
            for (const [k, v] of Object.entries(m as { [k: string]: Value })) if (!n.has(k) && !where.has(k)) set(k, v, line);
          }
          continue;
        }
        const key = isScalar(keyNode) ? keyNode.value : null;
        set(key === null || key === undefined ? '' : String(key), convert(pair.value), line);
      }
      open.delete(n);
    } else {
      return fail(null, 'unsupported YAML node');
    }
    converted.set(n, out);
    return out;
  };

  const value = convert(doc.contents);
  return {
    value,
    lineOf: (node) => starts.get(node),
    memberLine: (node, key) => members.get(node)?.get(key),
  };
}

/** The library's message, first line only, lower case like droptrace's own */
const oneLine = (s: string) => {
  const first = s.split('\n')[0]!.trim();
  return first.charAt(0).toLowerCase() + first.slice(1);
};

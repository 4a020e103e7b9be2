/**
 * The TypeScript line types (src/pipeline/events.ts, src/host/counters-line.ts) against the
 * published schema (schema/ndjson.schema.json), field by field, read with the TypeScript
 * compiler API: every object in the schema has the same fields as its type, at any depth, and a
 * field the schema requires is never optional in the type (the other way round is allowed: the
 * schema describes the lines of every version, and leaves optional what older ones lacked).
 * Adding a field to one side only fails here (the last test shows the check catching it).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const SCHEMA = JSON.parse(readFileSync(join(ROOT, 'schema', 'ndjson.schema.json'), 'utf8')) as Schema;

interface Schema {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  oneOf?: Schema[];
  anyOf?: Schema[];
  $defs?: Record<string, Schema>;
}

const LINE_TYPES = { start: 'StartLine', drop: 'DropEvent', stats: 'StatsLine', counters: 'CountersLine', dns: 'DnsLine', fleet_node: 'FleetNodeLine' } as const;

function program(): { checker: ts.TypeChecker; types: Map<string, ts.Type> } {
  // a node's stream, and the fleet's lines (stream --prometheus)
  const files = [join(ROOT, 'src', 'pipeline', 'events.ts'), join(ROOT, 'src', 'fleet', 'line.ts')];
  const p = ts.createProgram(files, { strict: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, noEmit: true, skipLibCheck: true });
  const checker = p.getTypeChecker();
  const types = new Map<string, ts.Type>();
  for (const file of files) {
    const mod = checker.getSymbolAtLocation(p.getSourceFile(file)!)!;
    for (const sym of checker.getExportsOfModule(mod)) {
      const s = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
      if (Object.values(LINE_TYPES).includes(sym.name as never)) types.set(sym.name, checker.getDeclaredTypeOfSymbol(s));
    }
  }
  return { checker, types };
}

function resolve(s: Schema, root: Schema): Schema {
  if (!s.$ref) return s;
  const name = s.$ref.replace('#/$defs/', '');
  return resolve(root.$defs![name]!, root);
}

/** What differs between schema node `s` and type `t` at `path`, one line each. */
function differences(s0: Schema, t0: ts.Type, path: string, checker: ts.TypeChecker, root: Schema, out: string[] = []): string[] {
  const s = resolve(s0, root);
  const t = checker.getNonNullableType(t0);
  for (const branch of [...(s.oneOf ?? []), ...(s.anyOf ?? [])]) differences(branch, t, path, checker, root, out);
  if (s.items) {
    const elem = checker.isArrayType(t) ? checker.getTypeArguments(t as ts.TypeReference)[0] : undefined;
    if (!elem) out.push(`${path}: an array in the schema, not in the type`);
    else differences(s.items, elem, `${path}[]`, checker, root, out);
  }
  const props = new Map(checker.getPropertiesOfType(t).map((p) => [p.name, p] as const));
  const required = new Set(s.required ?? []);
  if (!s.properties) {
    for (const name of required) if (!props.has(name)) out.push(`${path}.${name}: required in the schema, not in the type`);
    return out;
  }
  for (const name of Object.keys(s.properties)) if (!props.has(name)) out.push(`${path}.${name}: in the schema, not in the type`);
  for (const [name, p] of props) {
    const at = `${path}.${name}`;
    const sub = s.properties[name];
    if (!sub) {
      out.push(`${at}: in the type, not in the schema`);
      continue;
    }
    const optional = (p.flags & ts.SymbolFlags.Optional) !== 0;
    if (required.has(name) && optional) out.push(`${at}: required in the schema, optional in the type`);
    differences(sub, checker.getTypeOfSymbol(p), at, checker, root, out);
  }
  return out;
}

describe('line types and schema/ndjson.schema.json', () => {
  const { checker, types } = program();

  it('have the same fields, at every depth, with the same required ones', () => {
    expect([...types.keys()].sort()).toEqual(Object.values(LINE_TYPES).sort());
    const diff = Object.entries(LINE_TYPES).flatMap(([line, type]) => differences({ $ref: `#/$defs/${line}` }, types.get(type)!, line, checker, SCHEMA));
    expect(diff).toEqual([]);
  });

  it('fail when a field is added to one side only', () => {
    const schema = structuredClone(SCHEMA);
    schema.$defs!.drop!.properties!.added_to_schema = { type: 'string' };
    schema.$defs!.flow!.required = [...schema.$defs!.flow!.required!, 'sport'];
    delete schema.$defs!.stats!.properties!.folded;
    expect(Object.entries(LINE_TYPES).flatMap(([line, type]) => differences({ $ref: `#/$defs/${line}` }, types.get(type)!, line, checker, schema))).toEqual([
      'drop.added_to_schema: in the schema, not in the type',
      'drop.flow.sport: required in the schema, optional in the type',
      'stats.folded: in the type, not in the schema',
    ]);
  });
});

/**
 * The published JSON Schema of the NDJSON stream (schema/ndjson.schema.json), compiled with ajv:
 * lines read back from a file (`top --replay`) are checked against the same contract the stream
 * is tested against, instead of by hand. Compiled on first use: only readers of recordings pay.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { StreamLine } from './events.js';

export type LineType = StreamLine['type'];
export const LINE_TYPES: readonly LineType[] = ['start', 'drop', 'stats', 'counters'];

/** The schema ships at the package root, above src/ (tests) or dist/src/ (the build). */
export function schemaPath(): string {
  const here = fileURLToPath(import.meta.url);
  for (let dir = dirname(here); ; dir = dirname(dir)) {
    const p = join(dir, 'schema', 'ndjson.schema.json');
    if (existsSync(p)) return p;
    if (dirname(dir) === dir) throw new Error(`schema/ndjson.schema.json not found above ${here}`);
  }
}

let validators: Map<string, ValidateFunction> | null = null;

function compile(): Map<string, ValidateFunction> {
  const schema = JSON.parse(readFileSync(schemaPath(), 'utf8')) as { $id: string };
  // strict off: the schema carries descriptions and formats ajv does not need to know
  const ajv = new Ajv2020({ strict: false, allErrors: false });
  ajv.addSchema(schema);
  const out = new Map<string, ValidateFunction>();
  for (const t of LINE_TYPES) {
    const v = ajv.getSchema(`${schema.$id}#/$defs/${t}`);
    if (!v) throw new Error(`schema ${schemaPath()} has no $defs/${t}`);
    out.set(t, v);
  }
  return out;
}

/**
 * Checks one parsed line of a known type: null when it is valid, else what is wrong, in one
 * short line ("flow.sport must be integer", "missing \"kind\"").
 */
export function lineProblem(line: { type: LineType }): string | null {
  validators ??= compile();
  const v = validators.get(line.type)!;
  if (v(line)) return null;
  return describe(v.errors?.[0]);
}

function describe(e: ErrorObject | undefined): string {
  if (!e) return 'does not match the schema';
  const path = e.instancePath.slice(1).replace(/\//g, '.');
  const at = path === '' ? '' : `"${path}" `;
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return `missing ${path === '' ? '' : `${path}.`}"${String(p.missingProperty)}"`;
    case 'enum':
      return `${at}must be one of ${(p.allowedValues as unknown[]).map((x) => JSON.stringify(x)).join(', ')}`;
    case 'const':
      return `${at}must be ${JSON.stringify(p.allowedValue)}`;
    case 'pattern':
      return path.endsWith('time') ? `${at}must be an ISO-8601 UTC time such as "2026-11-24T10:00:00.000Z"` : `${at}${e.message ?? 'does not match'}`;
    default:
      return `${at}${e.message ?? 'does not match the schema'}`;
  }
}

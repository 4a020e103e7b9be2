/** Validates NDJSON lines against the published JSON Schema (schema/ndjson.schema.json). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { ROOT } from './stream.js';

const schema = JSON.parse(readFileSync(join(ROOT, 'schema', 'ndjson.schema.json'), 'utf8')) as object;
const validate = new Ajv2020.default({ strict: false, allErrors: true }).compile(schema);

/** Schema errors of each invalid line, as readable strings; empty when all lines are valid. */
export function schemaErrors(lines: object[]): string[] {
  const out: string[] = [];
  for (const l of lines) {
    if (!validate(l)) out.push(`${JSON.stringify(l).slice(0, 120)}: ${JSON.stringify(validate.errors?.slice(0, 3))}`);
  }
  return out;
}

#!/usr/bin/env node
// Writes droptrace-rules.prometheusrule.yaml from droptrace-rules.yml: the same groups under the
// Prometheus Operator's PrometheusRule, so the two can never drift (test/deploy/rules.test.ts
// runs this with --check). The rules are indented as text, comments and all: a PrometheusRule's
// spec is exactly a rule file's top level.
//   node deploy/prometheus/generate.mjs           rewrite the manifest
//   node deploy/prometheus/generate.mjs --check   exit 1 if the committed manifest is stale
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, 'droptrace-rules.yml');
const target = join(here, 'droptrace-rules.prometheusrule.yaml');

const header = `# GENERATED from droptrace-rules.yml by generate.mjs: edit that file, then run
#   node deploy/prometheus/generate.mjs
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: droptrace
  namespace: droptrace
  labels:
    app.kubernetes.io/name: droptrace
spec:
`;

const rules = readFileSync(source, 'utf8');
const body = rules
  .split('\n')
  .map((l) => (l === '' ? l : `  ${l}`))
  .join('\n');
const text = header + body;

if (process.argv.includes('--check')) {
  let current = null;
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    // missing: stale like any other difference
  }
  if (current !== text) {
    console.error(`droptrace: ${target} is stale: run node deploy/prometheus/generate.mjs`);
    process.exit(1);
  }
} else {
  writeFileSync(target, text);
}

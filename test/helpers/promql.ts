/**
 * The metric names a PromQL expression reads, by a tokenizer that follows PromQL's lexical
 * rules (Prometheus 2.42, Debian's, has no `promtool promql` and no parse API to ask): strings,
 * comments, `[range]`/`[range:step]` brackets and durations are skipped; an identifier followed by
 * `(` is a function or aggregation; the label lists after by/without/on/ignoring/group_left/
 * group_right are label names; `{...}` holds label matchers, of which `__name__="x"` names a
 * metric. Every other identifier (keywords and Inf/NaN aside) is a metric name. Whether the
 * expression parses at all is Prometheus' job: the test evaluates each one through its API.
 *
 * Also: Grafana's variables (`$x`, `${x}`, `${x:fmt}`, `[[x]]`) substituted with given values.
 */

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2']);
const LABEL_LIST = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const AGGREGATIONS = new Set(['sum', 'avg', 'count', 'min', 'max', 'group', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'limitk', 'limit_ratio']);
const IDENT = /[A-Za-z_:][A-Za-z0-9_:]*/y;
const NUMBER_OR_DURATION = /[0-9.][0-9A-Za-z_.]*/y;

/** A PromQL construct the name check cannot follow (a regex on __name__): say so, don't guess. */
export class PromqlNameError extends Error {}

export function promqlMetricNames(expr: string): string[] {
  const names = new Set<string>();
  let i = 0;
  const n = expr.length;
  const skipSpace = () => {
    while (i < n) {
      if (/\s/.test(expr[i]!)) i++;
      else if (expr[i] === '#') while (i < n && expr[i] !== '\n') i++;
      else break;
    }
  };
  const readString = (): string => {
    const q = expr[i]!;
    let out = '';
    i++;
    while (i < n && expr[i] !== q) {
      // backquoted strings have no escapes
      if (expr[i] === '\\' && q !== '`') {
        out += expr[i + 1] ?? '';
        i += 2;
      } else out += expr[i++];
    }
    if (i >= n) throw new PromqlNameError(`unterminated string in ${expr}`);
    i++;
    return out;
  };
  const skipUntil = (close: string) => {
    while (i < n && expr[i] !== close) {
      if (expr[i] === '"' || expr[i] === "'" || expr[i] === '`') readString();
      else i++;
    }
    i++;
  };
  const matchers = () => {
    i++; // {
    for (;;) {
      skipSpace();
      if (i >= n) throw new PromqlNameError(`unterminated {} in ${expr}`);
      if (expr[i] === '}') return void i++;
      if (expr[i] === ',') {
        i++;
        continue;
      }
      IDENT.lastIndex = i;
      const m = IDENT.exec(expr);
      if (!m) throw new PromqlNameError(`unexpected ${JSON.stringify(expr[i])} in label matchers of ${expr}`);
      i += m[0].length;
      skipSpace();
      const op = /^(=~|!~|!=|=)/.exec(expr.slice(i))?.[1];
      if (!op) throw new PromqlNameError(`label ${m[0]} without a matcher in ${expr}`);
      i += op.length;
      skipSpace();
      const value = readString();
      if (m[0] === '__name__') {
        if (op !== '=') throw new PromqlNameError(`__name__${op}"${value}" names metrics by pattern; the check needs names`);
        names.add(value);
      }
    }
  };
  while (i < n) {
    skipSpace();
    if (i >= n) break;
    const c = expr[i]!;
    if (c === '"' || c === "'" || c === '`') {
      readString();
    } else if (c === '[') {
      skipUntil(']');
    } else if (c === '{') {
      matchers();
    } else if (/[0-9.]/.test(c)) {
      NUMBER_OR_DURATION.lastIndex = i;
      i += NUMBER_OR_DURATION.exec(expr)![0].length;
    } else if (/[A-Za-z_:]/.test(c)) {
      IDENT.lastIndex = i;
      const id = IDENT.exec(expr)![0];
      i += id.length;
      const after = i;
      skipSpace();
      const next = expr[i];
      const lower = id.toLowerCase();
      if (LABEL_LIST.has(lower)) {
        if (next === '(') skipUntil(')');
      } else if (KEYWORDS.has(lower) || lower === 'inf' || lower === 'nan') {
        // operators and numbers
      } else if (next === '(') {
        // a function or an aggregation; its arguments are read on
      } else if (AGGREGATIONS.has(lower) && /^(by|without)\b/i.test(expr.slice(i))) {
        // `sum by (x) (...)`: the grouping comes next
      } else {
        names.add(id);
        i = after;
      }
    } else {
      i++;
    }
  }
  return [...names].sort();
}

/** What a Grafana variable is replaced with: `$name`, `${name}`, `${name:format}`, `[[name]]`. */
export type Variables = Record<string, string>;

/**
 * Replaces every Grafana variable in `expr` with its value in `vars`; throws naming the first
 * variable that has none (an expression with an undefined variable is a broken panel).
 */
export function substituteVariables(expr: string, vars: Variables): string {
  return expr.replace(/\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)\]\]|\$(\w+)/g, (_m, a?: string, b?: string, c?: string) => {
    const name = (a ?? b ?? c)!;
    const v = vars[name];
    if (v === undefined) throw new Error(`undefined Grafana variable $${name} in ${expr}`);
    return v;
  });
}

/** A dashboard's PromQL: every panel target's `expr` (rows' nested panels too). */
export function dashboardTargets(dashboard: unknown): Array<{ panel: string; refId: string; expr: string; instant: boolean }> {
  const out: Array<{ panel: string; refId: string; expr: string; instant: boolean }> = [];
  const visit = (panels: unknown) => {
    if (!Array.isArray(panels)) return;
    for (const p of panels as Array<Record<string, unknown>>) {
      for (const t of (p.targets as Array<Record<string, unknown>> | undefined) ?? []) {
        if (typeof t.expr === 'string') out.push({ panel: String(p.title), refId: String(t.refId), expr: t.expr, instant: t.instant === true && t.range !== true });
      }
      visit(p.panels);
    }
  };
  visit((dashboard as { panels?: unknown }).panels);
  return out;
}

/** A template variable's query: `label_values(metric, label)`, `label_values(label)`, `query_result(expr)`, or plain PromQL. */
export type VariableQuery = { kind: 'label_values'; selector: string | null; label: string } | { kind: 'promql'; expr: string };

export function parseVariableQuery(q: string): VariableQuery {
  const s = q.trim();
  let m = /^label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)$/s.exec(s);
  if (m) return { kind: 'label_values', selector: m[1]!, label: m[2]! };
  m = /^label_values\(\s*(\w+)\s*\)$/.exec(s);
  if (m) return { kind: 'label_values', selector: null, label: m[1]! };
  m = /^query_result\((.*)\)$/s.exec(s);
  if (m) return { kind: 'promql', expr: m[1]! };
  return { kind: 'promql', expr: s };
}

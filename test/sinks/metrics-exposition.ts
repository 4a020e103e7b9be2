/**
 * Readers of the Prometheus text format for the metrics tests (not a test file itself).
 */
export interface Exposition {
  /** `name{a="1",b="2"}` → value, labels in the order written */
  series: Record<string, number>;
  help: Record<string, string>;
  type: Record<string, string>;
}

/**
 * A strict reader of the text format (0.0.4): every line is a comment, blank, or
 * `name{labels} value`; every series belongs to a family that has HELP and TYPE.
 */
export function parseExposition(text: string): Exposition {
  const out: Exposition = { series: {}, help: {}, type: {} };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      (m[1] === 'HELP' ? out.help : out.type)[m[2]!] = m[3]!;
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a valid exposition line: ${line}`);
    const name = m[1]!;
    if (out.type[name] === undefined) throw new Error(`series ${name} before its # TYPE line`);
    const key = name + (m[2] ?? '');
    if (key in out.series) throw new Error(`duplicate series ${key}`);
    out.series[key] = Number(m[3]);
  }
  return out;
}

/** the node label every test registry carries (--node-name) */
export const NODE = 'node-a';

/**
 * The exposition with the `node` label taken off every series, after checking that each one
 * carries exactly node="node-a" (prom-client writes default labels last), so the expectations
 * below stay about the labels each metric has of its own.
 */
export function withoutNode(e: Exposition, node = NODE): Exposition {
  const tail = `node="${node}"}`;
  const series: Record<string, number> = {};
  for (const [k, v] of Object.entries(e.series)) {
    if (!k.endsWith(tail) || k.split('node="').length !== 2) throw new Error(`series without exactly one node="${node}": ${k}`);
    const rest = k.slice(0, -tail.length);
    series[rest.endsWith('{') ? rest.slice(0, -1) : `${rest.slice(0, -1)}}`] = v;
  }
  return { ...e, series };
}

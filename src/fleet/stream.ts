/**
 * `droptrace stream --prometheus URL --since 1h`: one fleet snapshot as NDJSON lines, one
 * `fleet_node` line per node, most drops per second first; then exit 0. For scripts, so no
 * retries: an unreachable or failing server is one line on stderr and exit 1.
 */
import { DroptraceError } from '../errors.js';
import { fleetLines } from './line.js';
import type { FleetNodeLine } from './line.js';
import { queryFleet } from './model.js';
import { rateWindow } from './options.js';
import { httpQuery, PromError, showUrl } from './prom.js';
import type { QueryFn } from './prom.js';

export interface FleetStreamOptions {
  url: URL;
  sinceS: number;
  timeoutMs?: number;
  /** tests: instead of HTTP */
  query?: QueryFn;
  now?: () => number;
}

export async function fleetStream(o: FleetStreamOptions, write: (line: FleetNodeLine) => void): Promise<number> {
  const url = showUrl(o.url);
  const q = o.query ?? httpQuery(o.url, o.timeoutMs);
  let lines: FleetNodeLine[];
  try {
    const fleet = await queryFleet(q, { sinceS: o.sinceS, rateS: rateWindow(o.sinceS) }, (o.now ?? Date.now)() / 1000);
    lines = fleetLines(fleet, url);
  } catch (e) {
    if (e instanceof PromError) throw new DroptraceError('E_PROMETHEUS', 'runtime', `prometheus ${url}: ${e.message}`);
    throw e;
  }
  if (lines.length === 0) {
    throw new DroptraceError('E_NO_NODES', 'runtime', `prometheus ${url} has no droptrace series`, { hint: 'is it scraping droptrace stream --metrics on every node?' });
  }
  for (const l of lines) write(l);
  return lines.length;
}

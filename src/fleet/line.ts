/**
 * `{"type":"fleet_node"}`: one node of the fleet as `droptrace stream --prometheus` writes it,
 * the same model the fleet view draws (src/fleet/model.ts). docs/ndjson.md describes the fields;
 * schema/ndjson.schema.json holds the contract (test/schema/line-types.test.ts keeps them equal).
 */
import type { Fleet, FleetNode } from './model.js';

export interface FleetNodeLine extends FleetNode {
  type: 'fleet_node';
  /** ISO-8601 UTC time every query was evaluated at */
  time: string;
  /** the Prometheus server asked */
  prometheus: string;
  /** 1 for the node with the most drops per second */
  rank: number;
  /** nodes in this snapshot */
  of: number;
  since_s: number;
  rate_window_s: number;
}

export function fleetLines(f: Fleet, prometheus: string): FleetNodeLine[] {
  const time = new Date(Math.round(f.time * 1000)).toISOString();
  return f.nodes.map((n, i) => ({
    type: 'fleet_node',
    time,
    prometheus,
    rank: i + 1,
    of: f.nodes.length,
    since_s: f.since_s,
    rate_window_s: f.rate_window_s,
    ...n,
  }));
}

/**
 * The kernel lab's public shapes: other parts of droptrace (tests, the CLI, end-to-end checks
 * of the tracer) run a scenario and compare what they saw with `expect`. Keep them stable.
 */
export interface LabFlow {
  proto: 'tcp' | 'udp' | 'icmp' | 'icmpv6';
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
}

export interface LabExpectation {
  family: string;
  kind: string;
  /** the kernel's drop reason without its SKB_DROP_REASON_ prefix */
  reason: string;
  /** inode of the namespace the drop happens in */
  netns: number;
  /** the kernel function the drop is reported from, where the reason alone does not single the drops out */
  location?: string;
  flow?: LabFlow;
  /** exact when the scenario knows */
  count?: number;
  atLeast?: number;
}

export interface LabResult {
  scenario: string;
  namespaces: { name: string; netns: number }[];
  expect: LabExpectation[];
  notes: string[];
}

export interface LabOptions {
  /**
   * how long the provoked state lasts: a lowered global limit stays lowered this long (capped
   * below 2 s) so table samplers can see it, and the namespaces live this long after provoking
   * began, for late drops (NEIGH_FAILED comes ~3 s later); default 0: restore at once
   */
  durationMs?: number;
  /** where a scenario has both (neigh-overflow, IPv6 by default); the others are IPv4 only */
  family?: 4 | 6;
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** called after namespaces exist and before any drop is provoked; the tracer can be started here (e.g. filtered to the netns inodes passed) */
  beforeProvoke?: (namespaces: { name: string; netns: number }[]) => Promise<void>;
}

export interface Scenario {
  name: string;
  summary: string;
  run(opts: LabOptions): Promise<LabResult>;
}

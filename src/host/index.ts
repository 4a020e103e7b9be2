/** Host table samplers: neighbour tables, conntrack per netns, NIC counters. */
export type { HostSnapshot, HostSamplerOptions, NeighTableSample, ConntrackSample, ConntrackNetnsSample, NicSample, Rates } from './sampler.js';
export { HostSampler } from './sampler.js';
export type { CountersLine, CountersLineOptions } from './counters-line.js';
export { toCountersLine, COUNTERS_LINE_VERSION } from './counters-line.js';
export type { CountersSplitOptions } from './counters-split.js';
export { CountersSplitter, CRI_LINE_BYTES, MAX_LINE_BYTES, FULL_EVERY } from './counters-split.js';
export { CountersMerger } from './counters-merge.js';
export type { HostIo, Clock, ExecResult } from './io.js';
export { nodeHostIo, systemClock } from './io.js';
export type { NicSelection } from './ethtool.js';
export { ALLOWANCE_COUNTERS, parseEthtoolStats } from './ethtool.js';
export type { ProcStatTable } from './proc-stat.js';
export { parseProcStatTable } from './proc-stat.js';

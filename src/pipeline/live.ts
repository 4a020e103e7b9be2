/**
 * The live pipeline with the real kernel behind it, for any sink: `droptrace stream` (NDJSON)
 * and `droptrace top` (the TUI store) both start here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname, release } from 'node:os';
import { assumedMissing, cannotWork, effectiveCaps, kernelNeeds } from '../host/caps.js';
import { DroptraceError } from '../errors.js';
import type { Enricher } from '../enrich/types.js';
import type { StreamLine } from './events.js';
import { CountersSplitter, HostSampler } from '../host/index.js';
import type { NicSelection } from '../host/index.js';
import { startPodAttribution } from '../enrich/pods.js';
import type { PodAttributionOptions } from '../enrich/pods.js';
import { Symbolizer } from './kallsyms.js';
import { loadNative, packageRoot } from '../native/binding.js';
import type { Hook } from '../native/binding.js';
import { ReasonNames } from './reasons.js';
import { PcapSink } from '../sinks/pcap.js';
import type { PcapOptions } from '../sinks/pcap.js';
import { runStream } from './stream.js';
import type { StreamTotals } from './stream.js';
import type { WorkBudget } from './shed.js';
import { nodeHostIo } from '../host/io.js';
import { RuleReader } from '../host/rules/reader.js';
import { RuleStage } from '../host/rules/stage.js';

export const VERSION = (JSON.parse(readFileSync(`${packageRoot()}/package.json`, 'utf8')) as { version: string }).version;

/** detail events per CPU per second when a flood spans many keys (docs/operations.md "Under pressure") */
export const DEFAULT_DETAIL_BUDGET = 1000;

export interface LiveOptions {
  durationMs?: number;
  netns?: number;
  statsIntervalMs: number;
  ringBytes: number;
  /** most bytes of detail events waiting for JS (default 64 MiB) */
  backlogBytes?: number;
  /** detail events per key per second (0: no limit; default 100) */
  keyBurst?: number;
  /** detail events per CPU per second over all keys (0: none; default DEFAULT_DETAIL_BUDGET) */
  detailBudget?: number;
  hook?: Hook;
  enrichers?: Enricher[];
  /** pod attribution sources (--pods, --kubeconfig, discovery); absent: none */
  pods?: PodAttributionOptions;
  /** write dropped packets' headers to a new pcapng file */
  pcap?: PcapOptions;
  /** 0: no counters lines */
  countersIntervalMs: number;
  nics: NicSelection;
  /** the start line's node (--node-name); default the host name */
  nodeName?: string;
  /** the consumer's bound on work (runStream's `budget`): the TUI's, per event-loop turn */
  budget?: WorkBudget;
  /** false: no last fold, host sample or final stats line after a stop (runStream's) */
  finalLines?: boolean;
  /** false: netfilter_rule drops are not given their rule (no nft/iptables runs) */
  rules?: boolean;
  /** --stack: a kernel stack for the first this many detail events of each key (0 or absent: none) */
  stackPerKey?: number;
  /** the fate of DNS queries (--dns): `dns` lines, a query unanswered after timeoutMs */
  dns?: { timeoutMs?: number };
}

/** Capabilities, kernel BTF and the BPF ring buffer: without them, one line (src/host/caps.ts cannotWork). */
export function requireTracingCaps(): void {
  const needs = kernelNeeds({ caps: effectiveCaps(), exists: existsSync, ringbuf: () => loadNative().kernelFeatures().ringbuf, missing: assumedMissing() });
  const cannot = cannotWork(needs);
  if (cannot) throw cannot;
}

export function kernelReasons(btfPath = '/sys/kernel/btf/vmlinux'): ReasonNames {
  if (!existsSync(btfPath)) {
    throw new DroptraceError('E_NO_BTF', 'kernel', `this kernel has no BTF (${btfPath} is missing)`, {
      hint: 'droptrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y, Linux 5.8 or newer',
    });
  }
  // before 5.17: no reasons, drops are classified by their place (src/pipeline/classify-location.ts)
  return ReasonNames.fromKernel((n) => loadNative().btfEnum(n)) ?? ReasonNames.none();
}

export async function liveStream(o: LiveOptions, emit: (line: StreamLine) => void, signal: AbortSignal): Promise<StreamTotals> {
  requireTracingCaps();
  const native = loadNative();
  const sampler = o.countersIntervalMs > 0 ? new HostSampler({ nics: o.nics }) : null;
  // every counters line under 16 KiB, changes only between full samples (counters-split.ts)
  const splitter = sampler ? new CountersSplitter() : null;
  // Bad input (a pods file, a kubeconfig) fails here, before anything is attached.
  const pods = o.pods ? await startPodAttribution(o.pods) : null;
  let pcap: PcapSink | undefined;
  const reader = o.rules === false ? null : new RuleReader(nodeHostIo());
  const rules = reader ? new RuleStage({ snapshot: (n) => reader.read(n), forget: (n) => reader.forget(n) }) : null;
  try {
    pcap = o.pcap ? new PcapSink(o.pcap) : undefined;
    return await runStream({
      ...(pods ? { attribution: pods.describe(), extraEnrichmentFailures: () => pods.failures() } : {}),
      ...(pcap ? { tap: pcap } : {}),
      ...(sampler && splitter ? { sampleCounters: async (so) => splitter.lines(await sampler.sample(), so), countersIntervalMs: o.countersIntervalMs } : {}),
      native,
      reasons: kernelReasons(),
      symbols: Symbolizer.fromProc(),
      tracer: {
        ...(o.netns !== undefined ? { filterNetns: o.netns } : {}),
        ringBytes: o.ringBytes,
        ...(o.backlogBytes !== undefined ? { backlogBytes: o.backlogBytes } : {}),
        keyBurst: o.keyBurst ?? 100,
        detailBudget: o.detailBudget ?? DEFAULT_DETAIL_BUDGET,
        ...(o.hook ? { only: o.hook } : {}),
        ...(pcap ? { captureHeaders: true } : {}),
        ...(o.stackPerKey ? { stackPerKey: o.stackPerKey } : {}),
        ...(o.dns ? { dns: true } : {}),
      },
      ...(o.dns ? { dns: { ...o.dns } } : {}),
      meta: { version: VERSION, node: o.nodeName ?? hostname(), kernel: release() },
      emit,
      enrichers: [...(pods ? [pods.enricher] : []), ...(o.enrichers ?? [])],
      ...(o.durationMs !== undefined ? { durationMs: o.durationMs } : {}),
      statsIntervalMs: o.statsIntervalMs,
      signal,
      ...(o.budget ? { budget: o.budget } : {}),
      ...(o.finalLines === false ? { finalLines: false } : {}),
      ...(rules ? { rules } : {}),
    });
  } finally {
    pcap?.close();
    await pods?.close();
  }
}

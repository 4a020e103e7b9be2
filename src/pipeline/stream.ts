/**
 * `droptrace stream`: attach, then emit lines — a `start` line once every probe is attached
 * (the ready signal), `drop` lines, periodic `stats` lines and a last `stats` line at the end.
 * This file is the lifecycle: build the stages, attach, run the timers, stop, drain, report.
 * A failure in the batch path or in the tracer ends the stream the same way as a signal, then
 * throws it: the final stats line is out, nothing is attached, no timer runs.
 */
import { WallClock } from './clock.js';
import { Decoder } from './decode.js';
import { DroptraceError } from '../errors.js';
import type { Enricher } from '../enrich/types.js';
import { BatchStage, EnrichStage } from './batch.js';
import type { PacketTap } from './batch.js';
import { EventBuilder, SCHEMA_VERSION } from './events.js';
import { cachedSysctl } from './explain.js';
import type { SysctlReader } from './explain.js';
import type { CountersLine, StartLine, StatsLine, StreamLine } from './events.js';
import { Folder } from './fold.js';
import type { Symbolizer } from './kallsyms.js';
import { LateProbes, probeStates } from './late-probes.js';
import { layoutMismatches } from './layout.js';
import { reconcile } from './reconcile.js';
import { statsLine } from './stats.js';
import { StackResolver } from './stacks.js';
import type { KernelCounters, NativeBinding, ProbeReport, TracerError, TracerOptions } from '../native/binding.js';
import type { ReasonNames } from './reasons.js';
import { handleWithin, ShedLedger, withShed } from './shed.js';
import type { WorkBudget } from './shed.js';
import type { RuleStage } from '../host/rules/stage.js';
import { DnsStage } from './dns-stage.js';
import type { DropEvent } from './events.js';

export interface StreamMeta {
  version: string;
  node: string;
  kernel: string;
}

export interface StreamOptions {
  native: NativeBinding;
  tracer: TracerOptions;
  reasons: ReasonNames;
  symbols: Symbolizer;
  meta: StreamMeta;
  /** every line of the stream, in order: the sinks (NDJSON, metrics, TUI store), tests */
  emit: (line: StreamLine) => void;
  /** sysctl values for explanations (default: /proc/sys, cached 1 s) */
  sysctl?: SysctlReader;
  /** takes every delivered drop's packet bytes (--pcap; needs tracer.captureHeaders) */
  tap?: PacketTap & { stats?(): NonNullable<StatsLine['pcap']> };
  /** how often drops the kernel only counted are folded into drop lines (default 1 s) */
  foldIntervalMs?: number;
  /**
   * host tables (src/host): the counters lines of one sample (each under 16 KiB), every
   * countersIntervalMs, and at start and end; `full`: list every netns, not only changes
   */
  sampleCounters?: (o: { full: boolean }) => Promise<CountersLine[]>;
  countersIntervalMs?: number;
  /** enrichment sources' own failures (API requests, /proc scans), added to stats */
  extraEnrichmentFailures?: () => number;
  /** which attribution sources are on, for the start line */
  attribution?: string;
  /** run on every drop line before it is emitted */
  enrichers?: Enricher[];
  /** stops by itself after this long */
  durationMs?: number;
  statsIntervalMs: number;
  /** aborting ends the stream cleanly (signals, EPIPE) */
  signal: AbortSignal;
  /**
   * The consumer's bound on work (the TUI's, per event-loop turn), asked between slices of a
   * batch. What it has no time for is shed: counted per key as userspace loss and folded back
   * like the addon's own losses (shed.ts), never described. The NDJSON stream sheds nothing.
   */
  budget?: WorkBudget;
  /**
   * false: nobody reads what comes after a stop (the TUI after `q`), so the stream detaches
   * at once, without the last fold, host sample and final stats line.
   */
  finalLines?: boolean;
  /** names the rule of netfilter_rule drops (src/host/rules): holds their lines until a snapshot of their netns's rules */
  rules?: RuleStage;
  now?: () => Date;
  /** live module names, for probes waiting for their module (default: /proc/modules) */
  modules?: () => Set<string>;
  /** how often the modules are read while a probe waits (default late-probes.ts MODULE_POLL_MS) */
  modulePollMs?: number;
  /**
   * the fate of DNS queries (needs tracer.dns): `dns` lines every intervalMs (default the
   * stats interval), a query unanswered after timeoutMs (default 5 s)
   */
  dns?: { timeoutMs?: number; intervalMs?: number; verdictWindowS?: number };
}

export interface StreamTotals {
  events: number;
  decodeErrors: number;
  counters: KernelCounters;
}

export function attachError(probes: ProbeReport[]): DroptraceError {
  const why = probes.map((p) => `${p.hook}: ${p.why ?? p.state}`).join('; ');
  return new DroptraceError('E_ATTACH', 'attach', `no drop probe could attach (${why})`, {
    hint: 'run droptrace check for details',
  });
}

/** What ended a stream that did not end by itself. */
function batchFailure(e: unknown): DroptraceError {
  if (e instanceof DroptraceError) return e;
  const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
  return new DroptraceError('E_BATCH', 'runtime', `handling a batch of drops failed: ${msg}`);
}

export function pollFailure(e: TracerError): DroptraceError {
  return new DroptraceError(e.code || 'E_POLL', 'runtime', `the tracer stopped: ${e.message}${e.errno !== undefined ? ` (errno ${e.errno})` : ''}`);
}

/**
 * One host sample at a time: a slow /proc or ethtool never piles samples up. The final counters
 * line waits for a sample at most FINAL_SAMPLE_MS (a sample spawns a process per namespace,
 * each allowed seconds); past that, the last sample taken is the final line, as it was.
 */
export const FINAL_SAMPLE_MS = 300;
class CountersStage {
  failures = 0;
  private inFlight: Promise<CountersLine[] | null> | null = null;
  private last: CountersLine[] | null = null;
  private stopped = false;
  constructor(
    private readonly sample: ((o: { full: boolean }) => Promise<CountersLine[]>) | undefined,
    private readonly emit: (line: StreamLine) => void,
  ) {}

  private take(sample: (o: { full: boolean }) => Promise<CountersLine[]>, full = false): Promise<CountersLine[] | null> {
    const p = sample({ full }).then(
      (lines) => {
        this.last = lines;
        if (!this.stopped) for (const l of lines) this.emit(l);
        return lines;
      },
      () => {
        this.failures++;
        return null;
      },
    );
    this.inFlight = p;
    void p.then(() => {
      if (this.inFlight === p) this.inFlight = null;
    });
    return p;
  }

  tick = (): void => {
    // a sample still under way is the one this tick would take
    if (this.sample && !this.inFlight) void this.take(this.sample);
  };

  /** no more lines: a sample under way ends unseen */
  abandon(): void {
    this.stopped = true;
  }

  /** the sample under way (or a new one) if it lands within `ms`, else the last one taken */
  async finish(ms = FINAL_SAMPLE_MS): Promise<void> {
    if (!this.sample) return;
    // a sample of its own at the end lists every netns: the last picture needs no earlier line
    const next = this.inFlight ?? this.take(this.sample, true);
    this.stopped = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)));
    const lines = (await Promise.race([next, late])) ?? this.last;
    clearTimeout(timer);
    if (lines) for (const l of lines) this.emit(l);
  }
}

export async function runStream(o: StreamOptions): Promise<StreamTotals> {
  const mismatch = layoutMismatches(o.native.layout());
  if (mismatch.length) {
    throw new DroptraceError('E_LAYOUT', 'build', `event layout of the addon and the decoder differ: ${mismatch.join('; ')}`, {
      hint: 'rebuild: npm run build',
    });
  }
  const now = o.now ?? (() => new Date());
  const clock = new WallClock(o.native.clocks());
  const enrich = new EnrichStage(o.enrichers ?? []);
  // --dns: every line passes the DNS stage on its way out (drops settle queries, NIC rates the verdict)
  const dns = o.dns
    ? new DnsStage({
        monoBaseNs: clock.monoBaseNs,
        monoNow: () => Number(process.hrtime.bigint() - clock.monoBaseNs),
        now,
        ...(o.dns.timeoutMs !== undefined ? { timeoutMs: o.dns.timeoutMs } : {}),
        ...(o.dns.verdictWindowS !== undefined ? { verdictWindowS: o.dns.verdictWindowS } : {}),
        // a client's pod as a drop of its flow would be attributed (the same enrichers)
        podOf: (netns, ip) => {
          const probe = { type: 'drop', time: now(), netns, flow: { proto: 'udp', src: ip, dst: ip }, pod: null } as unknown as DropEvent;
          enrich.run(probe);
          return probe.pod;
        },
        emit: (l) => o.emit(l),
      })
    : null;
  const out = dns
    ? (l: StreamLine) => {
        dns.observe(l);
        o.emit(l);
      }
    : o.emit;
  // drop lines pass the rule stage (rule drops wait there for their netns's rule counters)
  const emit = o.rules ? o.rules.wrap(out) : out;
  const builder = new EventBuilder(o.reasons, o.symbols, clock, o.sysctl ?? cachedSysctl());
  const folder = new Folder();
  const batches = new BatchStage({
    decoder: new Decoder(clock.monoBaseNs),
    builder,
    folder,
    enrich,
    emit,
    ...(o.tap ? { tap: o.tap } : {}),
  });
  const counters = new CountersStage(o.sampleCounters, (l) => {
    // a full neighbour table explains the failed resolutions that follow it
    if (l.type === 'counters') builder.neighPressure.noteCounters(l);
    out(l);
  });
  let failures = 0;
  let failure: DroptraceError | null = null;
  const native = o.native.createTracer(o.tracer);
  // shed records are the tracer's userspace loss to the reconcile and the stats line
  const ledger = o.budget ? new ShedLedger() : null;
  const tracer = ledger ? withShed(native, ledger) : native;
  const stacks = o.tracer.stackPerKey ? new StackResolver((id) => tracer.readStack(id), o.symbols) : null;
  builder.stacks = stacks;
  let late: LateProbes | null = null;

  try {
    const attached = tracer.attach();
    if (!attached.some((p) => p.state === 'attached')) throw attachError(attached);

    // a periodic fold may leave a key whose own detail event is still in flight to the next
    // one (Folder.waitFor); the last fold, after the drain, folds everything
    const fold = (last = false) =>
      reconcile(
        tracer,
        folder,
        builder,
        now(),
        (ev) => {
          enrich.run(ev);
          emit(ev);
        },
        !last,
      );
    const tap = o.tap;
    const rules = o.rules;
    const stats = (final: boolean) =>
      statsLine(
        tracer,
        o.reasons,
        {
          events: () => batches.events,
          folded: () => folder.total,
          unfolded: () => folder.unfolded,
          decodeErrors: () => batches.decodeErrors + (ledger?.malformed ?? 0),
          enrichmentFailures: () => enrich.failures + builder.dnsFailures + (o.extraEnrichmentFailures?.() ?? 0),
          countersFailures: () => counters.failures,
          failures: () => failures,
          ...(tap?.stats ? { pcap: () => tap.stats!() } : {}),
          probes: () => probeStates(late!.reports),
          ...(rules ? { rules: () => ({ ...rules.stats }) } : {}),
          ...(stacks ? { stacksUnreadable: () => stacks.unreadable } : {}),
          ...(dns ? { dns: (c: KernelCounters) => dns.stats(c) } : {}),
        },
        now().toISOString(),
        final,
      );

    // a probe waiting for its module attaches when it loads; that moment gets a stats line
    let probesChanged = () => {};
    late = new LateProbes(attached, {
      retry: (names) => tracer.retry(names),
      onChange: () => probesChanged(),
      ...(o.modules ? { modules: o.modules } : {}),
      ...(o.modulePollMs !== undefined ? { intervalMs: o.modulePollMs } : {}),
    });
    const probes = [...late.reports];
    const start: StartLine = {
      type: 'start',
      schema: SCHEMA_VERSION,
      time: now().toISOString(),
      version: o.meta.version,
      node: o.meta.node,
      kernel: o.meta.kernel,
      filter: { netns: o.tracer.filterNetns ?? null },
      probes,
      attribution: o.attribution ?? 'none',
    };
    o.emit(start);
    counters.tick();

    await new Promise<void>((resolve) => {
      const timers: Array<ReturnType<typeof setInterval>> = [];
      let stopping = false;
      const stop = () => {
        if (stopping) return;
        stopping = true;
        late!.stop();
        for (const t of timers) clearInterval(t);
        o.signal.removeEventListener('abort', stop);
        tracer.stop();
      };
      // the first failure ends the stream; later ones (the batches still draining) are counted
      const fail = (e: DroptraceError) => {
        failures++;
        failure ??= e;
        stop();
      };
      const guarded = (f: () => void) => () => {
        try {
          f();
        } catch (e) {
          fail(batchFailure(e));
        }
      };
      const guardedBuf = (f: (b: Buffer) => void) => (b: Buffer) => guarded(() => f(b))();
      const onBatch = (buf: Buffer) => {
        try {
          if (o.budget && ledger) handleWithin(buf, (b) => batches.handle(b), o.budget, ledger);
          else batches.handle(buf);
        } catch (e) {
          fail(batchFailure(e));
        }
      };
      const onEnd = (err?: DroptraceError) => {
        // the poller ended on its own (poll failed): detach, then end with the final stats
        if (err) fail(err);
        resolve();
      };
      if (dns) tracer.start(onBatch, onEnd, guardedBuf((b) => dns.handle(b)));
      else tracer.start(onBatch, onEnd);
      timers.push(
        setInterval(
          guarded(() => {
            fold();
            o.emit(stats(false));
          }),
          o.statsIntervalMs,
        ),
        setInterval(
          guarded(() => fold()),
          o.foldIntervalMs ?? 1000,
        ),
      );
      if (o.sampleCounters && o.countersIntervalMs) timers.push(setInterval(counters.tick, o.countersIntervalMs));
      if (dns) timers.push(setInterval(guarded(() => dns.flush()), o.dns?.intervalMs ?? o.statsIntervalMs));
      probesChanged = guarded(() => o.emit(stats(false)));
      late!.start();
      if (o.durationMs !== undefined) timers.push(setTimeout(stop, o.durationMs));
      if (o.signal.aborted) stop();
      else o.signal.addEventListener('abort', stop);
    });

    // detached and drained: the kernel's counts are final
    if (o.finalLines === false) {
      counters.abandon();
      o.rules?.abandon();
    } else {
      try {
        fold(true);
      } catch (e) {
        failures++;
        failure ??= batchFailure(e);
      }
      await o.rules?.finish();
      // a held line's emit that threw (on a timer's turn, where nobody catches it) fails the stream like a batch's throw
      if (o.rules?.failure) {
        failures++;
        failure ??= batchFailure(o.rules.failure);
      }
      await counters.finish();
      // queries still waiting stay pending (the stats line counts them): only the timeout says unanswered
      dns?.flush();
      o.emit(stats(true));
    }
    if (failure) throw failure;
    return { events: batches.events, decodeErrors: batches.decodeErrors, counters: tracer.readCounters() };
  } finally {
    o.rules?.abandon();
    late?.stop();
    tracer.close();
  }
}

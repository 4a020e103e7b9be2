/**
 * `droptrace stream`: attach, then write NDJSON — a `start` line once every probe is attached
 * (the ready signal), `drop` lines, periodic `stats` lines and a last `stats` line at the end.
 */
import { WallClock } from './clock.js';
import { Decoder } from './decode.js';
import { decodeKeys, eachKey } from './decode.js';
import type { KeyCount, RawDrop } from './decode.js';
import { DroptraceError } from '../errors.js';
import type { Enricher } from '../enrich/types.js';
import { EventBuilder, SCHEMA_VERSION } from './events.js';
import { cachedSysctl } from './explain.js';
import type { SysctlReader } from './explain.js';
import type { CountersLine, DropEvent, StartLine, StatsLine, StreamLine } from './events.js';
import { Folder } from './fold.js';
import { ipLength } from '../sinks/pcap.js';
import type { PcapWriter } from '../sinks/pcap.js';
import type { Symbolizer } from './kallsyms.js';
import { FLAGS, layoutMismatches } from './layout.js';
import type { KernelCounters, NativeBinding, ProbeReport, TracerOptions } from '../native/binding.js';
import type { ReasonNames } from './reasons.js';

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
  /** every line of the stream, in order: NDJSON sink, TUI store, tests */
  emit: (line: StreamLine) => void;
  /** sysctl values for explanations (default: /proc/sys, cached 1 s) */
  sysctl?: SysctlReader;
  /** write every delivered drop's headers here as pcapng (needs tracer.captureHeaders) */
  pcap?: PcapWriter;
  /** how often drops the kernel only counted are folded into drop lines (default 1 s) */
  foldIntervalMs?: number;
  /** host tables (src/host): one counters line per countersIntervalMs, and at start and end */
  sampleCounters?: () => Promise<CountersLine>;
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
   * Asked before each batch of detail records: true when the consumer is over its budget and
   * takes the batch as shed (it counts the records; none is described or emitted). The TUI's
   * bound on work per event-loop turn; the NDJSON stream sheds nothing.
   */
  shed?: (batch: Uint8Array) => boolean;
  now?: () => Date;
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

export async function runStream(o: StreamOptions): Promise<StreamTotals> {
  const mismatch = layoutMismatches(o.native.layout());
  if (mismatch.length) {
    throw new DroptraceError('E_LAYOUT', 'build', `event layout of the addon and the decoder differ: ${mismatch.join('; ')}`, {
      hint: 'rebuild: npm run build',
    });
  }
  const now = o.now ?? (() => new Date());
  const clock = new WallClock(o.native.clocks());
  const decoder = new Decoder(clock.monoBaseNs);
  const builder = new EventBuilder(o.reasons, o.symbols, clock, o.sysctl ?? cachedSysctl());
  const tracer = o.native.createTracer(o.tracer);
  let closed = false;
  const close = () => {
    if (!closed) {
      closed = true;
      tracer.close();
    }
  };

  try {
    const probes = tracer.attach();
    if (!probes.some((p) => p.state === 'attached')) throw attachError(probes);

    let events = 0;
    let decodeErrors = 0;
    let enrichmentFailures = 0;
    const enrichers = o.enrichers ?? [];
    const enrich = (ev: DropEvent) => {
      for (const e of enrichers) {
        try {
          e.enrich(ev);
        } catch {
          enrichmentFailures++;
        }
      }
    };
    const folder = new Folder();
    const reconcile = () => {
      // Detail events userspace had to drop are folded back like the kernel's own suppressed
      // drops: per key, from the addon's count of what it dropped.
      const keysBuf = tracer.readKeys();
      const lostBuf = tracer.readLostKeys();
      // keys with nothing suppressed add nothing (a lost-only key stands alone, same sum)
      const lost = new Map(decodeKeys(lostBuf, { suppressedOnly: true }).map((k) => [k.key, k] as const));
      function* keys(): Generator<KeyCount> {
        for (const k of eachKey(keysBuf, { suppressedOnly: true })) {
          const l = lost.get(k.key);
          if (l) {
            k.suppressed += l.suppressed;
            lost.delete(k.key);
          }
          yield k;
        }
        yield* lost.values();
      }
      folder.reconcile(keys(), (raw) => builder.describe(raw), now().toISOString(), (ev) => {
        enrich(ev);
        o.emit(ev);
      });
    };
    // reused for every wake-up: no arrays per batch
    const scratch: RawDrop[] = [];
    const offsets: number[] = [];
    const batchEvents: DropEvent[] = [];
    const batchFirsts: number[] = [];

    const statsLine = (final: boolean): StatsLine => {
      const c = tracer.readCounters();
      const byReason: Record<string, number> = {};
      for (const [num, n] of Object.entries(c.reasons)) byReason[o.reasons.name(Number(num))] = Number(n);
      return {
        type: 'stats',
        time: now().toISOString(),
        final,
        events,
        folded: folder.total,
        lost: {
          ring_buffer: Number(c.ringLost),
          userspace: Number(c.userLost),
          total: Number(c.ringLost + c.userLost),
        },
        decode_errors: decodeErrors + Number(c.shortRecords),
        enrichment_failures: enrichmentFailures + builder.dnsFailures + (o.extraEnrichmentFailures?.() ?? 0),
        counters_failures: countersFailures,
        kernel: {
          drops: Number(c.seen),
          suppressed: Number(c.suppressed),
          by_reason: byReason,
          neigh_create_failed: { ipv4: Number(c.neighFail4), ipv6: Number(c.neighFail6) },
        },
      };
    };

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

    let stopping = false;
    let countersFailures = 0;
    let sampling: Promise<void> = Promise.resolve();
    const sample = () => {
      if (!o.sampleCounters) return;
      // one sample at a time; a slow /proc or ethtool never piles samples up
      sampling = sampling.then(() =>
        o.sampleCounters!().then(
          (line) => {
            if (!stopping) o.emit(line);
          },
          () => {
            countersFailures++;
          },
        ),
      );
    };
    sample();
    const countersTimer = o.sampleCounters && o.countersIntervalMs ? setInterval(sample, o.countersIntervalMs) : undefined;

    await new Promise<void>((resolve) => {
      const stop = () => {
        if (stopping) return;
        stopping = true;
        clearInterval(statsTimer);
        clearInterval(foldTimer);
        if (countersTimer) clearInterval(countersTimer);
        if (durationTimer) clearTimeout(durationTimer);
        o.signal.removeEventListener('abort', stop);
        tracer.stop();
      };
      tracer.start(
        (buf) => {
          if (o.shed?.(buf)) return;
          scratch.length = 0;
          offsets.length = 0;
          const r = decoder.decode(buf, scratch, offsets);
          decodeErrors += r.errors;
          events += scratch.length;
          if (o.pcap) {
            const blocks: Buffer[] = [];
            for (const d of scratch) {
              if (!d.payload || !(d.flags & FLAGS.PAYLOAD_L3)) continue;
              // described for the comment only: its DNS failure, if any, is counted by fold()
              const ev = builder.describe(d);
              const comment = `droptrace: ${ev.kind} (${ev.family}) reason=${ev.reason} location=${ev.location} netns=${ev.netns} dev=${ev.ifname}`;
              blocks.push(o.pcap.packet(clock.epochNs(d.monoDeltaNs), d.payload, ipLength(d.payload), comment));
            }
            o.pcap.write(blocks);
          }
          builder.fold(scratch, batchEvents, batchFirsts);
          for (let i = 0; i < batchEvents.length; i++) {
            const ev = batchEvents[i]!;
            enrich(ev);
            folder.delivered(null, ev, buf, offsets[batchFirsts[i]!]);
            o.emit(ev);
          }
          // the batch's records are not kept past it (payloads are views into the addon's buffer)
          scratch.length = 0;
          batchEvents.length = 0;
        },
        () => resolve(),
      );
      const statsTimer = setInterval(() => {
        reconcile();
        o.emit(statsLine(false));
      }, o.statsIntervalMs);
      const foldTimer = setInterval(reconcile, o.foldIntervalMs ?? 1000);
      const durationTimer = o.durationMs !== undefined ? setTimeout(stop, o.durationMs) : undefined;
      if (o.signal.aborted) stop();
      else o.signal.addEventListener('abort', stop);
    });

    // detached and drained: the kernel's counts are final
    reconcile();
    await sampling;
    if (o.sampleCounters) {
      try {
        o.emit(await o.sampleCounters());
      } catch {
        countersFailures++;
      }
    }
    o.emit(statsLine(true));
    const counters = tracer.readCounters();
    return { events, decodeErrors, counters };
  } finally {
    close();
  }
}

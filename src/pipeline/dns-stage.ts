/**
 * The stream's DNS stage (--dns): DNS ring batches → messages → their fate (dns-fate.ts);
 * drop and counters lines pass by it on their way out (drops of port-53 flows settle queries,
 * NIC allowance rates feed the verdict); every interval, one `dns` line per client netns ×
 * resolver (dns-line.ts). Its inputs are parameters: unit-tested with fixtures.
 */
import type { KernelCounters } from '../native/binding.js';
import { DnsDecoder } from './dns-decode.js';
import type { DnsMessage } from './dns-decode.js';
import { DnsFate } from './dns-fate.js';
import { DnsVerdict, dnsDropOf, dnsLine } from './dns-line.js';
import type { DnsLine } from './dns-line.js';
import type { Pod, StatsLine, StreamLine } from './events.js';

export interface DnsStageOptions {
  monoBaseNs: bigint;
  /** CLOCK_MONOTONIC ns since monoBaseNs, now */
  monoNow: () => number;
  now: () => Date;
  timeoutMs?: number;
  maxPending?: number;
  verdictWindowS?: number;
  /** the pod of a client (its netns, its address), or null */
  podOf?: (netns: number, ip: string) => Pod | null;
  emit: (line: DnsLine) => void;
}

export class DnsStage {
  decodeErrors = 0;
  private readonly decoder: DnsDecoder;
  private readonly fate: DnsFate;
  private readonly verdict: DnsVerdict;
  private readonly scratch: DnsMessage[] = [];
  private last: number;

  constructor(private readonly o: DnsStageOptions) {
    this.decoder = new DnsDecoder(o.monoBaseNs);
    this.fate = new DnsFate({
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      ...(o.maxPending !== undefined ? { maxPending: o.maxPending } : {}),
    });
    this.verdict = new DnsVerdict(o.verdictWindowS, () => o.now().getTime());
    this.last = o.monoNow();
  }

  handle(buf: Uint8Array): void {
    this.scratch.length = 0;
    const r = this.decoder.decode(buf, this.scratch);
    this.decodeErrors += r.errors;
    for (const m of r.messages) this.fate.message(m);
  }

  /** every line the stream writes passes here first */
  observe(l: StreamLine): void {
    if (l.type === 'counters') this.verdict.noteCounters(l);
    if (l.type !== 'drop') return;
    const d = dnsDropOf(l, this.o.monoNow());
    if (d) this.fate.drop(d);
  }

  /** settles what timed out and writes the interval's lines */
  flush(): void {
    const mono = this.o.monoNow();
    this.fate.tick(mono);
    const intervalS = (mono - this.last) / 1e9;
    this.last = mono;
    const time = this.o.now().toISOString();
    for (const g of this.fate.take()) {
      this.o.emit(this.verdict.judge(dnsLine(g, time, intervalS, this.o.podOf?.(g.netns, g.client) ?? null)));
    }
  }

  stats(c: KernelCounters): NonNullable<StatsLine['dns']> {
    const s = this.fate.stats;
    return {
      seen: Number(c.dns?.seen ?? 0n),
      lost: { ring_buffer: Number(c.dns?.ringLost ?? 0n), userspace: Number(c.dns?.userLost ?? 0n) },
      decode_errors: this.decodeErrors + Number(c.dns?.shortRecords ?? 0n),
      pending: s.pending,
      evicted: s.evicted,
      unmatched_answers: s.unmatchedAnswers,
      unmatched_drops: s.unmatchedDrops,
    };
  }
}

/**
 * One ring-buffer wake-up: decode → (packet capture) → describe and fold repeats → enrich →
 * remember for folded lines → emit. Runs millions of times a second, so every array it needs
 * is allocated once and reused.
 */
import type { Decoder, RawDrop } from './decode.js';
import type { Enricher } from '../enrich/types.js';
import type { DropEvent, StreamLine } from './events.js';
import type { EventBuilder } from './events.js';
import type { Folder } from './fold.js';

/** Takes a batch's raw drops before they are folded: the pcap sink (src/sinks/pcap.ts). */
export interface PacketTap {
  /** `describe` names a drop (its time included) without counting its DNS failure again */
  capture(drops: readonly RawDrop[], describe: (d: RawDrop) => DropEvent): void;
}

/** The enrichment chain: one enricher's throw is counted and the others still run. */
export class EnrichStage {
  failures = 0;
  constructor(private readonly enrichers: readonly Enricher[]) {}

  run(ev: DropEvent): void {
    for (const e of this.enrichers) {
      try {
        e.enrich(ev);
      } catch {
        this.failures++;
      }
    }
  }
}

export interface BatchDeps {
  decoder: Decoder;
  builder: EventBuilder;
  folder: Folder;
  enrich: EnrichStage;
  emit: (line: StreamLine) => void;
  tap?: PacketTap;
}

export class BatchStage {
  events = 0;
  decodeErrors = 0;
  private readonly scratch: RawDrop[] = [];
  private readonly offsets: number[] = [];
  private readonly batchEvents: DropEvent[] = [];
  private readonly batchFirsts: number[] = [];
  private readonly describe: (d: RawDrop) => DropEvent;

  constructor(private readonly d: BatchDeps) {
    this.describe = (raw) => d.builder.describe(raw);
  }

  handle(buf: Buffer): void {
    const { scratch, offsets, batchEvents, batchFirsts, d } = this;
    scratch.length = 0;
    offsets.length = 0;
    batchEvents.length = 0;
    try {
      const r = d.decoder.decode(buf, scratch, offsets);
      this.decodeErrors += r.errors;
      this.events += scratch.length;
      d.tap?.capture(scratch, this.describe);
      d.builder.fold(scratch, batchEvents, batchFirsts);
      for (let i = 0; i < batchEvents.length; i++) {
        const ev = batchEvents[i]!;
        d.enrich.run(ev);
        d.folder.delivered(null, ev, buf, offsets[batchFirsts[i]!]);
        d.emit(ev);
      }
    } finally {
      // the batch's records are not kept past it (payloads are views into the addon's buffer)
      scratch.length = 0;
      batchEvents.length = 0;
    }
  }
}

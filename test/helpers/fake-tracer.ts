/**
 * A stand-in for the native addon (src/native/binding.ts NativeBinding) that replays recorded
 * ring-buffer batches, so runStream, reconcile, stats, lost keys, pcap and `check` run without
 * root or a kernel. It behaves as the addon does: batches arrive on later turns of the event
 * loop, one per wake-up; after stop() no more are polled and onEnd is called once; a poll
 * error (`pollError`) is handed to onEnd at once, as the addon does when its poller ends.
 */
import { readFileSync } from 'node:fs';
import { Decoder, eachKey } from '../../src/pipeline/decode.js';
import type { ClockPair } from '../../src/pipeline/clock.js';
import { EVENT_SIZE, EVENT_VERSION, FIELDS, FLAGS, KEY_FIELDS, KEY_SIZE, PAYLOAD_MAX, REASON_SLOTS } from '../../src/pipeline/layout.js';
import type { NativeLayout } from '../../src/pipeline/layout.js';
import type { KernelCounters, KernelFeatures, MapInfo, NativeBinding, ProbeReport, TracerError, TracerHandle, TracerOptions } from '../../src/native/binding.js';
import type { DroptraceError } from '../../src/errors.js';
import { pollFailure } from '../../src/pipeline/stream.js';

export const GOLDEN = JSON.parse(readFileSync(new URL('../fixtures/golden-6.18.json', import.meta.url), 'utf8')) as {
  reasons: Array<[string, number]>;
  records: string[];
};
export const GOLDEN_RECORDS = GOLDEN.records.map((h) => Buffer.from(h, 'hex'));
/** the clocks the golden lines were made with */
export const GOLDEN_CLOCKS: ClockPair = { monotonicNs: 2_399_000_000_000n, realtimeNs: 1_795_510_937_000_000_000n };

export interface FakeScript {
  /** handed to onBatch in order, one per turn of the event loop */
  batches: Buffer[];
  /** what readKeys() returns (default: empty); a function is asked on every call */
  keys?: Buffer | (() => Buffer);
  /**
   * what readLostKeys() returns (default: empty): a Buffer once (the addon reads and resets),
   * a function on every call
   */
  lostKeys?: Buffer | (() => Buffer);
  /** counters that differ from those counted from the batches and keys; a function is asked on every call */
  counters?: Partial<KernelCounters> | (() => Partial<KernelCounters>);
  /** what readStack(id) returns (default: null for every id) */
  stacks?: Map<number, Buffer>;
  /** after this many batches, report this error and deliver nothing more */
  pollError?: { afterBatches: number; error: TracerError };
  /** what attach() reports (default: the drop hook attached); a function is asked per tracer */
  probes?: ProbeReport[] | ((opts: TracerOptions) => ProbeReport[]);
  /** what retry(probes) reports (default: as attach()); the tracer's own retry calls are in `retries` */
  retry?: (probes: string[]) => ProbeReport[];
  /** called before batch i is handed over */
  beforeBatch?: (i: number) => void;
}

const ATTACHED: ProbeReport[] = [{ probe: 'drop', hook: 'tp_btf/kfree_skb', state: 'attached' }];

export class FakeTracer implements TracerHandle {
  attached = false;
  started = false;
  stopped = false;
  closed = false;
  endCalls = 0;
  delivered = 0;
  /** the probe names of every retry() call, in order */
  readonly retries: string[][] = [];
  /** resolves once every batch was handed over (or the poll error was reported) */
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private onEnd: ((err?: DroptraceError) => void) | null = null;
  private pumping = false;

  constructor(
    readonly opts: TracerOptions,
    private readonly script: FakeScript,
  ) {
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  attach(): ProbeReport[] {
    if (this.attached) throw new Error('attach() called twice');
    this.attached = true;
    const p = this.script.probes;
    return typeof p === 'function' ? p(this.opts) : (p ?? ATTACHED);
  }

  /** as the addon: [] once stopped, nothing attaches after a stop */
  retry(probes: string[]): ProbeReport[] {
    this.retries.push([...probes]);
    if (this.stopped || this.closed) return [];
    const p = this.script.probes;
    return this.script.retry ? this.script.retry(probes) : typeof p === 'function' ? p(this.opts) : (p ?? ATTACHED);
  }

  start(onBatch: (buf: Buffer) => void, onEnd: (err?: DroptraceError) => void): void {
    this.started = true;
    this.onEnd = onEnd;
    this.pumping = true;
    const { batches, pollError } = this.script;
    const next = () => {
      if (pollError && this.delivered === pollError.afterBatches) {
        this.pumping = false;
        this.resolveDone();
        // as the addon: the poller has ended, onEnd gets the error at once
        this.endCalls++;
        const err = pollFailure(pollError.error);
        setImmediate(() => onEnd(err));
        return;
      }
      // stopped: the poller takes nothing more from the ring (what it handed over is all)
      if (this.delivered >= batches.length || this.stopped) {
        this.pumping = false;
        this.resolveDone();
        this.maybeEnd();
        return;
      }
      this.script.beforeBatch?.(this.delivered);
      const b = batches[this.delivered++]!;
      // a copy, as the addon hands JS a buffer of its own per wake-up
      onBatch(Buffer.from(b));
      setImmediate(next);
    };
    setImmediate(next);
  }

  /** Like the addon: the poller ends after stop(), once the batch it is handing over is done. */
  stop(): void {
    this.stopped = true;
    this.maybeEnd();
  }

  private maybeEnd(): void {
    if (!this.stopped || this.pumping || !this.onEnd || this.endCalls > 0) return;
    this.endCalls++;
    const end = this.onEnd;
    setImmediate(() => end());
  }

  readCounters(): KernelCounters {
    const reasons: Record<string, bigint> = {};
    let seen = 0n;
    const decoder = new Decoder(GOLDEN_CLOCKS.monotonicNs);
    for (const b of this.script.batches.slice(0, this.delivered)) {
      for (const d of decoder.decode(b).drops) {
        reasons[d.reason] = (reasons[d.reason] ?? 0n) + 1n;
        seen++;
      }
    }
    let suppressed = 0n;
    for (const k of eachKey(this.readKeys(), { suppressedOnly: true })) {
      suppressed += BigInt(k.suppressed);
      reasons[k.reason] = (reasons[k.reason] ?? 0n) + BigInt(k.suppressed);
    }
    return {
      reasons,
      seen: seen + suppressed,
      suppressed,
      neighFail4: 0n,
      neighFail6: 0n,
      stackTaken: 0n,
      stackNotTaken: 0n,
      stackFailed: 0n,
      ringLost: 0n,
      userLost: 0n,
      userLostUnkeyed: 0n,
      shortRecords: 0n,
      pollErrors: this.script.pollError && this.delivered >= this.script.pollError.afterBatches ? 1n : 0n,
      ...(typeof this.script.counters === 'function' ? this.script.counters() : this.script.counters),
    };
  }

  readKeys(): Buffer {
    const k = this.script.keys;
    return typeof k === 'function' ? k() : (k ?? Buffer.alloc(0));
  }

  private lostTaken = false;

  readLostKeys(): Buffer {
    const k = this.script.lostKeys;
    if (typeof k === 'function') return k();
    // as the addon: what was lost is handed out once
    if (this.lostTaken || !k) return Buffer.alloc(0);
    this.lostTaken = true;
    return k;
  }

  /** --stack: the scripted stacks by id (FakeScript.stacks) */
  readStack(id: number): Buffer | null {
    return this.script.stacks?.get(id) ?? null;
  }

  /** no BPF object behind the stand-in: no maps */
  mapInfo(): MapInfo[] {
    return [];
  }

  /** the stand-in's poll failure is scripted (pollError), not broken on demand */
  breakPoll(): boolean {
    return false;
  }

  close(): void {
    this.closed = true;
    this.attached = false;
  }
}

/** The layout the addon would report for this build: the decoder's own. */
export function nativeLayout(): NativeLayout {
  return { size: EVENT_SIZE, keySize: KEY_SIZE, version: EVENT_VERSION };
}

export class FakeBinding implements NativeBinding {
  readonly tracers: FakeTracer[] = [];
  constructor(
    private readonly script: FakeScript,
    private readonly clockPair: ClockPair = GOLDEN_CLOCKS,
  ) {}

  createTracer(opts: TracerOptions): FakeTracer {
    const t = new FakeTracer(opts, this.script);
    this.tracers.push(t);
    return t;
  }

  layout(): NativeLayout {
    return nativeLayout();
  }

  btfEnum(name: string): Array<[string, number]> | null {
    return name === 'skb_drop_reason' ? GOLDEN.reasons : null;
  }

  clocks(): ClockPair {
    return this.clockPair;
  }

  kernelFeatures(): KernelFeatures {
    return { ringbuf: true };
  }

  get tracer(): FakeTracer {
    const t = this.tracers.at(-1);
    if (!t) throw new Error('no tracer was created');
    return t;
  }
}

/**
 * The native addon behind an interface: core logic takes a `NativeBinding` so it runs in unit
 * tests without the kernel (serialport/bindings-cpp style). JS validates every option here
 * before anything reaches C++.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DroptraceError, fromNative } from '../errors.js';
import type { ClockPair } from '../pipeline/clock.js';
import type { NativeLayout } from '../pipeline/layout.js';

export type Hook = 'tp_btf/kfree_skb' | 'tracepoint/skb/kfree_skb';
export const HOOKS: readonly Hook[] = ['tp_btf/kfree_skb', 'tracepoint/skb/kfree_skb'];

export interface ProbeReport {
  probe: string;
  hook: string;
  /** waiting: its kernel function is in a module not loaded yet; the stream attaches it when it is (src/pipeline/late-probes.ts) */
  state: 'attached' | 'unavailable' | 'standby' | 'waiting';
  why?: string;
  /** why it is unavailable, as a code (E_BPF_LOAD, E_ATTACH, E_KSYM_MISSING, E_MODULE_NOT_LOADED ...; README "Error codes") */
  code?: string;
  errno?: number;
  /** E_MODULE_NOT_LOADED: the module its kernel function is in (e.g. nf_conntrack) */
  module?: string;
}

/** What droptrace cannot work without, probed by the addon (src/host/caps.ts names what is missing). */
export interface KernelFeatures {
  /** BPF_MAP_TYPE_RINGBUF (Linux 5.8+); null: the probe itself failed (ringbufErrno) */
  ringbuf: boolean | null;
  ringbufErrno?: number;
}

/** A BPF map of the loaded object as the kernel reports it; memlock is the kernel's own byte count. */
export interface MapInfo {
  name: string;
  /** libbpf's name of the type: lru_hash, percpu_array, ringbuf ... */
  type: string;
  maxEntries: number;
  keySize: number;
  valueSize: number;
  flags: number;
  memlock: number;
}

export interface KernelCounters {
  /** exact drops per reason number (kernel per-CPU map, summed) */
  reasons: Record<string, bigint>;
  seen: bigint;
  /** drops whose detail the per-key rate limit or the per-CPU detail budget held back (counted per key) */
  suppressed: bigint;
  /** neigh:neigh_create calls that created nothing (table full), per family */
  neighFail4: bigint;
  neighFail6: bigint;
  /** --stack, per detail event sent: its stack taken, not taken (its key had its stacks), taking it failed */
  stackTaken: bigint;
  stackNotTaken: bigint;
  stackFailed: bigint;
  ringLost: bigint;
  /** detail records the addon dropped because JS fell behind (counted per key too, see readLostKeys) */
  userLost: bigint;
  /** ... of which no per-key place was left (the lost-key table was full): never folded */
  userLostUnkeyed: bigint;
  shortRecords: bigint;
  pollErrors: bigint;
  /** the DNS programs' counts (absent from stand-ins that predate them) */
  dns?: DnsCounters;
}

export interface DnsCounters {
  /** DNS messages the DNS programs saw (queries out, answers in) */
  seen: bigint;
  /** ... whose record found no room in the DNS ring */
  ringLost: bigint;
  /** records the addon dropped because JS fell behind, or still queued at the stop */
  userLost: bigint;
  shortRecords: bigint;
}

export interface TracerOptions {
  /** only trace drops in this network namespace (inode); 0 or absent: all */
  filterNetns?: number;
  /** ring buffer size in bytes (power of two, page multiple) */
  ringBytes?: number;
  /** detail events per key (reason, netns, device, flow) per second, all CPUs together; 0: no limit */
  keyBurst?: number;
  /**
   * detail events per CPU per second over all keys, on top of keyBurst (a key's first event
   * may use up to twice it); past it drops are only counted, per key. 0 or absent: no budget.
   * Needs keyBurst > 0: with no per-key limit every drop is a detail event.
   */
  detailBudget?: number;
  /**
   * --stack: the kernel stack of the first this many detail events of each key (readStack);
   * 0 or absent: none, and the drop program runs as without it
   */
  stackPerKey?: number;
  /** try only this hook */
  only?: Hook;
  /** keep the first bytes of every dropped packet from its IP header (for --pcap) */
  captureHeaders?: boolean;
  /** also attach the optional hooks (neigh_create, fexit/kretprobe on conntrack and neigh); default true */
  extras?: boolean;
  /** trace DNS queries and answers (tp_btf net_dev_queue, netif_receive_skb) onto their own ring; default false */
  dns?: boolean;
  /** replace the kernel function of an optional hook, e.g. {"fexit/__nf_conntrack_alloc": "renamed"} (tests) */
  targets?: Record<string, string>;
  /**
   * most bytes of records waiting between the poller thread and JS (default 64 MiB); records
   * past it are dropped and counted per key (readLostKeys, userLost)
   */
  backlogBytes?: number;
}

export const DEFAULT_BACKLOG_BYTES = 64 << 20;
/** --stack-per-key's bound: stacks are for the first drops of a key, not a per-drop trace */
export const MAX_STACK_PER_KEY = 1000;
/** An error a tracer stand-in reports while running (a failed ring-buffer poll), see pollFailure(). */
export interface TracerError {
  code: string;
  message: string;
  errno?: number;
}

export interface TracerHandle {
  /** once per tracer: a second call throws E_ALREADY_ATTACHED */
  attach(): ProbeReport[];
  /**
   * tries the named optional probes again (those with no hook attached, e.g. once the module
   * they wait for is loaded); every probe's report, or [] once stopped (nothing attaches then)
   */
  retry(probes: string[]): ProbeReport[];
  /**
   * onBatch gets one Buffer of raw records per wake-up; onEnd runs once after the last batch,
   * with an E_POLL error when reading the ring buffer failed (the poller has ended then)
   */
  start(onBatch: (buf: Buffer) => void, onEnd: (err?: DroptraceError) => void, onDns?: (buf: Buffer) => void): void;
  stop(): void;
  readCounters(): KernelCounters;
  /** per-key counter map entries (see decodeKeys) */
  readKeys(): Buffer;
  /**
   * detail events the addon dropped because JS fell behind, per key, same format; those since
   * the last call (read and reset: each loss is handed out once)
   */
  readLostKeys(): Buffer;
  /**
   * --stack: the stack a record's stack_id names, STACK_DEPTH little-endian u64 kernel
   * addresses (0 past the last frame); null when the map has no such entry
   */
  readStack(id: number): Buffer | null;
  /** the loaded object's maps and their memory (empty before attach) */
  mapInfo(): MapInfo[];
  /** tests only: the next poll of the ring buffer fails for real (EINVAL from epoll_wait) */
  breakPoll(): boolean;
  /** detach, end the poller without waiting for JS, free everything; safe from any state */
  close(): void;
}

export interface NativeBinding {
  createTracer(opts: TracerOptions): TracerHandle;
  layout(): NativeLayout;
  btfEnum(name: string, file?: string): Array<[string, number]> | null;
  clocks(): ClockPair;
  kernelFeatures(): KernelFeatures;
}

interface RawTracer extends Omit<TracerHandle, 'start'> {
  start(onBatch: (buf: Buffer) => void, onEnd: (err?: unknown) => void, onDns?: (buf: Buffer) => void): void;
}

interface RawAddon {
  Tracer: new (opts: TracerOptions) => RawTracer;
  layout(): NativeLayout;
  btfEnum(name: string, file?: string): Array<[string, number]> | null;
  clocks(): ClockPair;
  kernelFeatures(): KernelFeatures;
}

export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

export function validateTracerOptions(opts: TracerOptions): TracerOptions {
  const out: TracerOptions = {};
  if (opts.filterNetns !== undefined) {
    if (!Number.isInteger(opts.filterNetns) || opts.filterNetns < 0 || opts.filterNetns > 0xffffffff) {
      throw new DroptraceError('E_NETNS', 'usage', `bad netns inode "${opts.filterNetns}": expected a number such as 4026531840 (ls -L -i /proc/PID/ns/net)`);
    }
    out.filterNetns = opts.filterNetns;
  }
  if (opts.ringBytes !== undefined) {
    const b = opts.ringBytes;
    if (!Number.isInteger(b) || b < 4096 || b > 1 << 30 || (b & (b - 1)) !== 0) {
      throw new DroptraceError('E_RING', 'usage', `bad ring buffer size ${b} bytes: expected a power of two between 4 KiB and 1 GiB`);
    }
    out.ringBytes = b;
  }
  if (opts.keyBurst !== undefined) {
    if (!Number.isInteger(opts.keyBurst) || opts.keyBurst < 0 || opts.keyBurst > 1_000_000) {
      throw new DroptraceError('E_BURST', 'usage', `bad detail limit ${opts.keyBurst}: expected 0 (no limit) to 1000000 events per key per second`);
    }
    out.keyBurst = opts.keyBurst;
  }
  if (opts.detailBudget !== undefined) {
    if (!Number.isInteger(opts.detailBudget) || opts.detailBudget < 0 || opts.detailBudget > 1_000_000) {
      throw new DroptraceError('E_BUDGET', 'usage', `bad detail budget ${opts.detailBudget}: expected 0 (no budget) to 1000000 events per CPU per second`);
    }
    out.detailBudget = opts.detailBudget;
  }
  if (opts.stackPerKey !== undefined) {
    if (!Number.isInteger(opts.stackPerKey) || opts.stackPerKey < 0 || opts.stackPerKey > MAX_STACK_PER_KEY) {
      throw new DroptraceError('E_STACK', 'usage', `bad --stack-per-key ${opts.stackPerKey}: expected 1 to ${MAX_STACK_PER_KEY} stacks per key`);
    }
    out.stackPerKey = opts.stackPerKey;
  }
  if (opts.extras !== undefined) out.extras = opts.extras === true;
  if (opts.dns !== undefined) out.dns = opts.dns === true;
  if (opts.captureHeaders !== undefined) out.captureHeaders = opts.captureHeaders === true;
  if (opts.targets !== undefined) {
    for (const [k, v] of Object.entries(opts.targets)) {
      if (!/^([a-z_]+\/)?[A-Za-z0-9_.]+$/.test(k) || !/^[A-Za-z0-9_.]+$/.test(v)) {
        throw new DroptraceError('E_TARGET', 'usage', `bad probe target ${k}=${v}: expected HOOK=FUNCTION, e.g. fexit/__nf_conntrack_alloc=__nf_conntrack_alloc`);
      }
    }
    out.targets = { ...opts.targets };
  }
  if (opts.backlogBytes !== undefined) {
    const b = opts.backlogBytes;
    if (!Number.isInteger(b) || b < 1 << 16 || b > 2 ** 40) {
      throw new DroptraceError('E_BACKLOG', 'usage', `bad backlog ${b} bytes: expected 64 KiB to 1 TiB (--backlog takes MiB)`);
    }
    out.backlogBytes = b;
  }
  if (opts.only !== undefined) {
    if (!HOOKS.includes(opts.only)) {
      throw new DroptraceError('E_HOOK', 'usage', `unknown hook "${opts.only}": expected one of ${HOOKS.join(', ')}`);
    }
    out.only = opts.only;
  }
  return out;
}

/**
 * DROPTRACE_RENAME=FUNC:NEWNAME[,FUNC:NEWNAME]: attach the optional hooks of kernel function
 * FUNC to NEWNAME instead — how the kernel matrix checks that a probe whose function is
 * missing degrades to `unavailable` while drops are still traced.
 */
export function renamesFromEnv(v = process.env.DROPTRACE_RENAME): Record<string, string> | undefined {
  if (!v) return undefined;
  const out: Record<string, string> = {};
  for (const pair of v.split(',')) {
    const m = /^([A-Za-z0-9_.]+):([A-Za-z0-9_.]+)$/.exec(pair.trim());
    if (!m) throw new DroptraceError('E_RENAME', 'usage', `bad DROPTRACE_RENAME entry "${pair}": expected FUNCTION:NEWNAME, e.g. __neigh_create:__neigh_create_renamed`);
    out[m[1]!] = m[2]!;
  }
  return out;
}

/** The addon's coded errors become DroptraceErrors at this boundary, thrown or handed to onEnd. */
function call<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw fromNative(e);
  }
}

export function wrapTracer(t: RawTracer): TracerHandle {
  return {
    attach: () => call(() => t.attach()),
    retry: (probes) => {
      // names reach C++ only checked: probe names are lower-case words
      for (const p of probes) if (typeof p !== 'string' || !/^[a-z_]+$/.test(p)) throw new DroptraceError('E_ARGUMENT', 'usage', `bad probe name ${JSON.stringify(p)}`);
      return call(() => t.retry(probes));
    },
    start: (onBatch, onEnd, onDns) =>
      call(() =>
        onDns
          ? t.start(onBatch, (err) => onEnd(err === undefined ? undefined : (fromNative(err) as DroptraceError)), onDns)
          : t.start(onBatch, (err) => onEnd(err === undefined ? undefined : (fromNative(err) as DroptraceError))),
      ),
    stop: () => call(() => t.stop()),
    readCounters: () => call(() => t.readCounters()),
    readKeys: () => call(() => t.readKeys()),
    readLostKeys: () => call(() => t.readLostKeys()),
    readStack: (id) => {
      if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new DroptraceError('E_ARGUMENT', 'usage', `bad stack id ${id}`);
      return call(() => t.readStack(id));
    },
    mapInfo: () => call(() => t.mapInfo()),
    breakPoll: () => call(() => t.breakPoll()),
    close: () => call(() => t.close()),
  };
}

let cached: NativeBinding | undefined;

export function loadNative(): NativeBinding {
  if (cached) return cached;
  const path = join(packageRoot(), 'build', 'Release', 'droptrace.node');
  if (!existsSync(path)) {
    throw new DroptraceError('E_NATIVE_MISSING', 'build', `native addon not built (${path} missing)`, {
      hint: 'run ./droptrace once, or npm run build',
    });
  }
  const require = createRequire(import.meta.url);
  const addon = require(path) as RawAddon;
  cached = {
    createTracer: (opts) => {
      const renames = renamesFromEnv();
      return wrapTracer(new addon.Tracer(validateTracerOptions(renames && !opts.targets ? { ...opts, targets: renames } : opts)));
    },
    layout: () => addon.layout(),
    btfEnum: (name, file) => call(() => (file === undefined ? addon.btfEnum(name) : addon.btfEnum(name, file))),
    clocks: () => addon.clocks(),
    kernelFeatures: () => call(() => addon.kernelFeatures()),
  };
  return cached;
}

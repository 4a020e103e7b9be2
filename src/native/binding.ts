/**
 * The native addon behind an interface: core logic takes a `NativeBinding` so it runs in unit
 * tests without the kernel (serialport/bindings-cpp style). JS validates every option here
 * before anything reaches C++.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DroptraceError } from '../errors.js';
import type { ClockPair } from '../pipeline/clock.js';
import type { NativeLayout } from '../pipeline/layout.js';

export type Hook = 'tp_btf/kfree_skb' | 'tracepoint/skb/kfree_skb';
export const HOOKS: readonly Hook[] = ['tp_btf/kfree_skb', 'tracepoint/skb/kfree_skb'];

export interface ProbeReport {
  probe: string;
  hook: string;
  state: 'attached' | 'unavailable' | 'standby';
  why?: string;
}

export interface KernelCounters {
  /** exact drops per reason number (kernel per-CPU map, summed) */
  reasons: Record<string, bigint>;
  seen: bigint;
  /** drops whose detail the per-key rate limit held back (counted per key) */
  suppressed: bigint;
  /** neigh:neigh_create calls that created nothing (table full), per family */
  neighFail4: bigint;
  neighFail6: bigint;
  ringLost: bigint;
  userLost: bigint;
  shortRecords: bigint;
  pollErrors: bigint;
}

export interface TracerOptions {
  /** only trace drops in this network namespace (inode); 0 or absent: all */
  filterNetns?: number;
  /** ring buffer size in bytes (power of two, page multiple) */
  ringBytes?: number;
  /** detail events per key (reason, netns, device, flow) per second per CPU; 0: no limit */
  keyBurst?: number;
  /** try only this hook */
  only?: Hook;
  /** keep the first bytes of every dropped packet from its IP header (for --pcap) */
  captureHeaders?: boolean;
  /** also attach the optional hooks (neigh_create, fexit/kretprobe on conntrack and neigh); default true */
  extras?: boolean;
  /** replace the kernel function of an optional hook, e.g. {"fexit/__nf_conntrack_alloc": "renamed"} (tests) */
  targets?: Record<string, string>;
}

/** An error the tracer reports while running (a failed ring-buffer poll). */
export interface TracerError {
  code: string;
  message: string;
  errno?: number;
}

export interface TracerHandle {
  attach(): ProbeReport[];
  /**
   * Polls on the addon's thread. `onError`: polling failed (the poller then ends; `onEnd` still
   * follows once, after stop()).
   */
  start(onBatch: (buf: Buffer) => void, onEnd: () => void, onError?: (e: TracerError) => void): void;
  stop(): void;
  readCounters(): KernelCounters;
  /** per-key counter map entries (see decodeKeys) */
  readKeys(): Buffer;
  /** detail events the addon dropped because JS fell behind, per key, same format; cumulative */
  readLostKeys(): Buffer;
  close(): void;
}

export interface NativeBinding {
  createTracer(opts: TracerOptions): TracerHandle;
  layout(): NativeLayout;
  btfEnum(name: string, file?: string): Array<[string, number]> | null;
  clocks(): ClockPair;
}

interface RawAddon {
  Tracer: new (opts: TracerOptions) => TracerHandle;
  layout(): NativeLayout;
  btfEnum(name: string, file?: string): Array<[string, number]> | null;
  clocks(): ClockPair;
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
  if (opts.extras !== undefined) out.extras = opts.extras === true;
  if (opts.captureHeaders !== undefined) out.captureHeaders = opts.captureHeaders === true;
  if (opts.targets !== undefined) {
    for (const [k, v] of Object.entries(opts.targets)) {
      if (!/^([a-z_]+\/)?[A-Za-z0-9_.]+$/.test(k) || !/^[A-Za-z0-9_.]+$/.test(v)) {
        throw new DroptraceError('E_TARGET', 'usage', `bad probe target ${k}=${v}: expected HOOK=FUNCTION, e.g. fexit/__nf_conntrack_alloc=__nf_conntrack_alloc`);
      }
    }
    out.targets = { ...opts.targets };
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
      return new addon.Tracer(validateTracerOptions(renames && !opts.targets ? { ...opts, targets: renames } : opts));
    },
    layout: () => addon.layout(),
    btfEnum: (name, file) => (file === undefined ? addon.btfEnum(name) : addon.btfEnum(name, file)),
    clocks: () => addon.clocks(),
  };
  return cached;
}

/**
 * The kernel's own view of drops: skb:kfree_skb's format (which names its reasons) and a
 * private trace instance printing the same drops droptrace reports, to cross-check them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readOr, ROOT, tryWrite } from './util.js';

export const TRACEFS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'].find((d) => existsSync(join(d, 'events')));

const kfreeSkbFormat = (): string | null => (TRACEFS ? readOr(join(TRACEFS, 'events/skb/kfree_skb/format')) : null);

/** skb:kfree_skb has a reason field (5.17+; 5.10 to 5.16 give skbaddr, location and protocol only) */
export const kernelHasReasons = (): boolean => /field:[^;]*\breason;/.test(kfreeSkbFormat() ?? '');

/**
 * A kernel function's name without the compiler's clone suffixes (`ip_rcv_finish_core.constprop.0`
 * is ip_rcv_finish_core): droptrace reports the function, the kernel's trace prints the symbol.
 */
export const baseName = (fn: string): string => fn.replace(/(\.(?:constprop|isra|part|cold|llvm|lto_priv)(?:\.\d+)?)+$/, '');

/** {number: name} from skb:kfree_skb's print fmt (`__print_symbolic(REC->reason, {2, "NOT_SPECIFIED"}, ...)`). */
function formatReasons(): { reasons: Record<string, string>; printFmt: string | null } | null {
  const fmt = kfreeSkbFormat();
  if (!fmt) return null;
  const out: Record<string, string> = {};
  const sym = fmt.slice(fmt.indexOf('__print_symbolic(REC->reason'));
  for (const m of sym.matchAll(/\{\s*(\d+),\s*"([A-Z0-9_]+)"\s*\}/g)) out[m[1]!] = m[2]!;
  return { reasons: out, printFmt: (fmt.match(/print fmt: "([^"]*)"/) ?? [])[1] ?? null };
}

/**
 * Before 5.17 skb:kfree_skb prints its location as a bare address (`location=%p`, unhashed in
 * the trace buffer): the function holding it, from /proc/kallsyms (root reads real addresses).
 */
class Kallsyms {
  private addrs: bigint[] = [];
  private names: string[] = [];
  constructor() {
    const syms: Array<[bigint, string]> = [];
    for (const line of readOr('/proc/kallsyms', '').split('\n')) {
      const [a, t, name] = line.split(/\s+/);
      if (a && name && (t === 't' || t === 'T') && !/^0+$/.test(a)) syms.push([BigInt(`0x${a}`), name]);
    }
    syms.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    this.addrs = syms.map((x) => x[0]);
    this.names = syms.map((x) => x[1]);
  }
  /** the function at or before `addr`, null when unknown (no kallsyms) */
  at(addr: bigint): string | null {
    let lo = 0;
    let hi = this.addrs.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.addrs[mid]! <= addr) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? null : this.names[found]!;
  }
}

export interface TraceEvent {
  /** null on a kernel without drop reasons */
  reason: string | null;
  /** the function without clone suffixes; null when the kernel prints a bare (hashed) pointer */
  fn: string | null;
}

export class KernelTrace {
  readonly dir: string | null;
  /** the kernel's trace names a reason for each drop */
  readonly hasReasons = kernelHasReasons();
  private syms: Kallsyms | null = null;

  /** a location as printed (`fn+0x1c/0x60` or, before 5.17, an address) to its function */
  private fnOf(loc: string): string | null {
    if (/^(0x)?ffff[0-9a-f]{12}$/.test(loc)) return (this.syms ??= new Kallsyms()).at(BigInt(loc.startsWith('0x') ? loc : `0x${loc}`));
    return /^[A-Za-z_]/.test(loc) ? loc.split('+')[0]! : null;
  }

  constructor() {
    this.dir = TRACEFS ? join(TRACEFS, 'instances', `droptrace-matrix-${process.pid}`) : null;
    if (!this.dir) return;
    mkdirSync(this.dir);
    writeFileSync(join(this.dir, 'buffer_size_kb'), '4096');
    writeFileSync(join(this.dir, 'events/skb/kfree_skb/enable'), '1');
  }
  clear(): void {
    if (this.dir) writeFileSync(join(this.dir, 'trace'), '');
  }
  /**
   * {events: [{reason, fn}], overrun} since clear(), as the kernel printed them; overrun counts
   * events the ring lost (drops elsewhere on a busy machine can fill it)
   */
  read(): { events: TraceEvent[]; overrun: number } {
    if (!this.dir) return { events: [], overrun: 0 };
    const text = readFileSync(join(this.dir, 'trace'), 'utf8');
    const events: TraceEvent[] = [];
    for (const line of text.split('\n')) {
      const m = line.match(/kfree_skb: .*location=(\S+)(?:.*reason: (\S+))?/);
      if (!m) continue;
      const fn = this.fnOf(m[1]!);
      events.push({ fn: fn && baseName(fn), reason: m[2] ?? null });
    }
    const w = text.match(/entries-in-buffer\/entries-written: (\d+)\/(\d+)/);
    return { events, overrun: w ? Number(w[2]) - Number(w[1]) : 0 };
  }
  close(): void {
    if (!this.dir) return;
    tryWrite(join(this.dir, 'events/skb/kfree_skb/enable'), '0');
    try {
      rmdirSync(this.dir);
    } catch {
      // still busy: the kernel frees it with the last reader
    }
  }
}

export interface ReasonNameCheck {
  /** false on a kernel without enum skb_drop_reason (5.10 to 5.16): nothing to compare, ok */
  applicable: boolean;
  tracefs: string | null;
  formatCount: number;
  btfCount: number;
  mismatches: string[];
  ok: boolean;
  printFmt?: string | null;
  sample?: Record<string, number>;
}

/** The reason names droptrace reads from this kernel's BTF against the tracepoint's own format, number for number. */
export function reasonNameCheck(): ReasonNameCheck {
  const fmt = formatReasons();
  const r: ReasonNameCheck = { applicable: true, tracefs: TRACEFS ?? null, formatCount: 0, btfCount: 0, mismatches: [], ok: false };
  if (!fmt) {
    r.mismatches.push('no skb:kfree_skb format in tracefs');
    return r;
  }
  // droptrace's own naming code, fed by the running kernel's BTF, in a process of its own as a user runs it
  const out = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { loadNative } from ${JSON.stringify(join(ROOT, 'dist/src/native/binding.js'))};
       import { ReasonNames } from ${JSON.stringify(join(ROOT, 'dist/src/pipeline/reasons.js'))};
       const n = ReasonNames.fromKernel((e) => loadNative().btfEnum(e));
       process.stdout.write(JSON.stringify(n ? [...n.entries()] : null));`,
    ],
    { encoding: 'utf8' },
  );
  let names: Map<number, string> | null;
  try {
    const entries = JSON.parse(out.stdout) as Array<[number, string]> | null;
    names = entries && new Map(entries);
  } catch {
    r.mismatches.push(`reading droptrace's reason names failed: ${out.stderr.trim().split('\n')[0]}`);
    return r;
  }
  r.printFmt = fmt.printFmt;
  // neither the kernel's BTF nor its tracepoint has reasons: n/a, both sides agree on that
  if (names === null && !kernelHasReasons()) {
    r.applicable = false;
    r.ok = true;
    return r;
  }
  if (names === null) {
    r.mismatches.push("the kernel's kfree_skb has a reason but droptrace found no enum skb_drop_reason in its BTF");
    return r;
  }
  r.formatCount = Object.keys(fmt.reasons).length;
  r.btfCount = names.size;
  for (const [num, name] of Object.entries(fmt.reasons)) {
    const ours = names.get(Number(num));
    if (ours !== name) r.mismatches.push(`${num}: kernel format says ${name}, droptrace says ${ours ?? 'nothing'}`);
  }
  r.sample = Object.fromEntries(['NO_SOCKET', 'NETFILTER_DROP', 'IP_RPFILTER', 'NEIGH_CREATEFAIL'].map((n) => [n, Number(Object.entries(fmt.reasons).find(([, v]) => v === n)?.[0] ?? -1)]));
  // before 5.17 neither the format nor BTF has reasons: they agree
  const neither = r.formatCount === 0 && r.btfCount === 0 && !(fmt.printFmt ?? '').includes('reason');
  r.ok = r.mismatches.length === 0 && (r.formatCount > 0 || neither);
  return r;
}

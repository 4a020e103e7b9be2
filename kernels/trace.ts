/**
 * The kernel's own view of drops: skb:kfree_skb's format (which names its reasons) and a
 * private trace instance printing the same drops droptrace reports, to cross-check them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readOr, ROOT, tryWrite } from './util.js';

export const TRACEFS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'].find((d) => existsSync(join(d, 'events')));

/** {number: name} from skb:kfree_skb's print fmt (`__print_symbolic(REC->reason, {2, "NOT_SPECIFIED"}, ...)`). */
function formatReasons(): { reasons: Record<string, string>; printFmt: string | null } | null {
  const fmt = TRACEFS && readOr(join(TRACEFS, 'events/skb/kfree_skb/format'));
  if (!fmt) return null;
  const out: Record<string, string> = {};
  const sym = fmt.slice(fmt.indexOf('__print_symbolic(REC->reason'));
  for (const m of sym.matchAll(/\{\s*(\d+),\s*"([A-Z0-9_]+)"\s*\}/g)) out[m[1]!] = m[2]!;
  return { reasons: out, printFmt: (fmt.match(/print fmt: "([^"]*)"/) ?? [])[1] ?? null };
}

export interface TraceEvent {
  reason: string;
  fn: string | null;
}

export class KernelTrace {
  readonly dir: string | null;

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
      const m = line.match(/kfree_skb: .*location=(\S+).*reason: (\S+)/);
      if (m) events.push({ fn: /^[A-Za-z_]/.test(m[1]!) ? m[1]!.split('+')[0]! : null, reason: m[2]! });
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
  const r: ReasonNameCheck = { tracefs: TRACEFS ?? null, formatCount: 0, btfCount: 0, mismatches: [], ok: false };
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
  let names: Map<number, string>;
  try {
    names = new Map(JSON.parse(out.stdout) as Array<[number, string]>);
  } catch {
    r.mismatches.push(`reading droptrace's reason names failed: ${out.stderr.trim().split('\n')[0]}`);
    return r;
  }
  r.printFmt = fmt.printFmt;
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

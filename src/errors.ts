/**
 * One error class for everything a user can get wrong or the machine can lack. The CLI prints
 * `droptrace: <message>` on one line and exits with `exitCode`; never a stack trace.
 */
export type ErrorStage =
  | 'usage'
  | 'permissions'
  | 'kernel'
  | 'build'
  | 'load'
  | 'attach'
  | 'input'
  | 'runtime'
  // stages the native addon reports (src/native/binding.ts)
  | 'open'
  | 'ringbuf'
  | 'poll'
  | 'state'
  | 'btf';

export class DroptraceError extends Error {
  readonly code: string;
  readonly stage: ErrorStage;
  readonly hint: string | undefined;
  readonly exitCode: number;

  constructor(code: string, stage: ErrorStage, message: string, opts: { hint?: string; exitCode?: number } = {}) {
    super(message);
    this.name = 'DroptraceError';
    this.code = code;
    this.stage = stage;
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? (stage === 'usage' || stage === 'input' ? 2 : 1);
  }

  /** The single line a user sees. */
  line(): string {
    return this.hint ? `${this.message} (${this.hint})` : this.message;
  }
}

/** What the addon throws (or hands onEnd): a code, the stage that failed, libbpf's detail. */
export interface NativeFailure {
  code: string;
  stage: string;
  message: string;
  errno?: number;
}

export function isNativeFailure(e: unknown): e is NativeFailure {
  return typeof e === 'object' && e !== null && typeof (e as NativeFailure).code === 'string' && typeof (e as NativeFailure).stage === 'string' && /^E_[A-Z_]+$/.test((e as NativeFailure).code);
}

const EPERM = 1;
const EACCES = 13;
const denied = (f: NativeFailure) => f.errno === EPERM || f.errno === EACCES;
const PERMS_HINT = 'run as root, or grant cap_bpf and cap_perfmon';
const CHECK_HINT = 'run droptrace check for details';

/**
 * The addon's codes, as users read them: what failed in their words, then what to do next.
 * The native detail (errno, libbpf's reason) follows the colon; README "Error codes" lists them.
 */
const NATIVE: Record<string, (f: NativeFailure) => { stage: ErrorStage; message: string; hint?: string }> = {
  E_BPF_OPEN: (f) => ({ stage: 'open', message: `could not open the bpf object: ${f.message}`, hint: 'rebuild the addon: npm run build' }),
  E_BPF_CONFIGURE: (f) => ({ stage: 'load', message: `could not configure the bpf object: ${f.message}`, hint: CHECK_HINT }),
  E_BPF_LOAD: (f) => ({
    stage: 'load',
    message: `the kernel refused to load the bpf program: ${f.message}`,
    hint: denied(f) ? PERMS_HINT : CHECK_HINT,
  }),
  E_ATTACH: (f) => ({ stage: 'attach', message: `could not attach the probe: ${f.message}`, hint: denied(f) ? PERMS_HINT : CHECK_HINT }),
  E_RINGBUF: (f) => ({
    stage: 'ringbuf',
    message: `could not set up the ring buffer reader: ${f.message}`,
    hint: denied(f) ? PERMS_HINT : 'check the memory limits (ulimit -l, the cgroup) and try a smaller --ring-size',
  }),
  E_TSFN: (f) => ({ stage: 'ringbuf', message: `could not start the ring buffer reader: ${f.message}`, hint: 'restart droptrace' }),
  E_POLL: (f) => ({
    stage: 'poll',
    message: `reading the ring buffer failed, the stream ended: ${f.message}`,
    hint: 'restart droptrace; if it happens again, report it with the output of droptrace check',
  }),
  E_ALREADY_ATTACHED: (f) => ({ stage: 'state', message: `tracer already attached: ${f.message}`, hint: 'create a new tracer to attach again' }),
  E_ALREADY_STARTED: (f) => ({ stage: 'state', message: `tracer already started: ${f.message}`, hint: 'create a new tracer to start again' }),
  E_NOT_ATTACHED: (f) => ({ stage: 'state', message: `tracer not attached: ${f.message}`, hint: 'call attach() first and check that a drop probe attached' }),
  E_CLOSED: (f) => ({ stage: 'state', message: `tracer closed: ${f.message}`, hint: 'create a new tracer' }),
  E_ARGUMENT: (f) => ({ stage: 'state', message: `bad call into the addon: ${f.message}`, hint: 'this is a bug in droptrace: please report it' }),
  E_BTF: (f) => ({
    stage: 'btf',
    message: `could not read the kernel's btf: ${f.message}`,
    hint: 'droptrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (/sys/kernel/btf/vmlinux)',
  }),
};

/** The addon's coded failure as the DroptraceError users see; anything else is returned as is. */
export function fromNative(e: unknown): unknown {
  if (e instanceof DroptraceError || !isNativeFailure(e)) return e;
  const map = NATIVE[e.code];
  const m = map ? map(e) : { stage: 'runtime' as const, message: `native addon failed (${e.code}): ${e.message}`, hint: CHECK_HINT };
  return new DroptraceError(e.code, m.stage, m.message, m.hint === undefined ? {} : { hint: m.hint });
}

/** Codes the addon raises, for the README and the tests that keep the two in step. */
export const NATIVE_CODES: readonly string[] = Object.keys(NATIVE);

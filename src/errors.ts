/**
 * One error class for everything a user can get wrong or the machine can lack. The CLI prints
 * `droptrace: <message>` on one line and exits with `exitCode`; never a stack trace.
 */
export type ErrorStage = 'usage' | 'permissions' | 'kernel' | 'build' | 'load' | 'attach' | 'input' | 'runtime';

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

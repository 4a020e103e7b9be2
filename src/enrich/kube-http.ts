/**
 * Reading API server responses with bounds: a body has a size cap and a deadline, a watch
 * stream is split into lines without re-copying what is buffered, and a line longer than its cap
 * ends the stream instead of growing the heap. A broken or hostile API server costs at most the
 * caps, never unbounded memory or a stuck request.
 */
import type { IncomingMessage } from 'node:http';

export class HttpError extends Error {}

export const seconds = (ms: number) => `${Number((ms / 1000).toFixed(1))} s`;
const mib = (n: number) => (n >= 1024 * 1024 ? `${Math.round(n / 1024 / 1024)} MiB` : `${Math.round(n / 1024)} KiB`);

/** The whole body, or an error once it passes `maxBytes` or is not complete within `deadlineMs`. */
export function readBody(res: IncomingMessage, maxBytes: number, deadlineMs: number, what = 'response'): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (e: Error | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (e) {
        res.destroy();
        reject(e);
      } else resolve(Buffer.concat(chunks, size).toString('utf8'));
    };
    // a body trickled a byte at a time keeps the socket "active": only a deadline ends it
    const timer = setTimeout(() => finish(new Error(`${what} not complete within ${seconds(deadlineMs)}`)), deadlineMs);
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) finish(new Error(`${what} larger than ${mib(maxBytes)}`));
      else chunks.push(c);
    });
    res.on('end', () => finish(null));
    res.on('error', (e) => finish(e));
    res.on('aborted', () => finish(new Error(`${what} aborted`)));
    res.on('close', () => finish(res.complete ? null : new Error(`${what} closed early`)));
  });
}

/** "403 Forbidden: pods is forbidden: User ... cannot list ..." from a Status body, when there is one. */
export async function httpError(res: IncomingMessage, deadlineMs: number): Promise<HttpError> {
  const body = await readBody(res, 64 * 1024, deadlineMs).catch(() => '');
  let message = '';
  try {
    const s = JSON.parse(body) as { message?: unknown };
    if (typeof s.message === 'string') message = s.message;
  } catch {
    message = body.slice(0, 200).trim();
  }
  return new HttpError(`HTTP ${res.statusCode}${message ? `: ${message}` : ''}`);
}

/**
 * Splits a byte stream into lines. The bytes of an unfinished line are kept as chunks and joined
 * once, when its newline arrives, so a line in many chunks costs linear time.
 */
export class LineSplitter {
  readonly #parts: Buffer[] = [];
  #pending = 0;

  constructor(
    private readonly maxLineBytes: number,
    private readonly onLine: (line: string) => void,
  ) {}

  /** Feeds a chunk; throws when the line under construction passes the cap. */
  push(chunk: Buffer): void {
    let from = 0;
    for (let nl = chunk.indexOf(10, from); nl >= 0; nl = chunk.indexOf(10, from)) {
      const tail = chunk.subarray(from, nl);
      from = nl + 1;
      if (this.#pending + tail.length > this.maxLineBytes) this.#tooLong();
      let line: Buffer = tail;
      if (this.#pending > 0) {
        this.#parts.push(tail);
        line = Buffer.concat(this.#parts, this.#pending + tail.length);
        this.#parts.length = 0;
        this.#pending = 0;
      }
      const text = line.toString('utf8').trim();
      if (text !== '') this.onLine(text);
    }
    if (from < chunk.length) {
      const rest = chunk.subarray(from);
      this.#pending += rest.length;
      if (this.#pending > this.maxLineBytes) this.#tooLong();
      this.#parts.push(rest);
    }
  }

  #tooLong(): never {
    this.#parts.length = 0;
    this.#pending = 0;
    throw new Error(`watch line longer than ${mib(this.maxLineBytes)}`);
  }
}

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errnoCode, mapLimit, nodeHostIo } from '../../src/host/io.js';

describe('nodeHostIo', () => {
  const io = nodeHostIo({ execTimeoutMs: 2_000 });

  it('resolves with the exit status, whatever it is', async () => {
    expect(await io.exec('sh', ['-c', 'echo out; echo err >&2; exit 94'])).toEqual({ code: 94, stdout: 'out\n', stderr: 'err\n' });
    expect(await io.exec('sh', ['-c', 'printf ok'])).toEqual({ code: 0, stdout: 'ok', stderr: '' });
  });

  it('rejects with ENOENT only when the command is not installed', async () => {
    const err = await io.exec('droptrace-no-such-command', []).catch((e: unknown) => e);
    expect(errnoCode(err)).toBe('ENOENT');
  });

  it('gives a null exit status to a command it had to kill', async () => {
    const quick = nodeHostIo({ execTimeoutMs: 100 });
    expect((await quick.exec('sleep', ['5'])).code).toBeNull();
  });

  it('says a plain file is not a namespace, and reads its own netns', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dthost-io-'));
    writeFileSync(join(dir, 'x'), '');
    expect(await io.nsInode(join(dir, 'x'))).toBeNull();
    expect(await io.nsInode('/proc/self/ns/net')).toBeGreaterThan(0);
    expect(await io.readlink('/proc/self/ns/net')).toMatch(/^net:\[\d+\]$/);
  });

  it('rejects a missing path with its errno code, as a promise', async () => {
    const err = await io.readFile('/proc/self/droptrace-no-such-file').catch((e: unknown) => e);
    expect(errnoCode(err)).toBe('ENOENT');
    expect(errnoCode(await io.readdir('/droptrace-no-such-dir').catch((e: unknown) => e))).toBe('ENOENT');
  });
});

describe('mapLimit', () => {
  it('keeps input order and never has more than the limit in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const out = await mapLimit([5, 1, 4, 2, 3], 2, async (n) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, n));
      inFlight--;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30]);
    expect(most).toBe(2);
    expect(await mapLimit([], 4, async () => 1)).toEqual([]);
  });

  it('lets the event loop run during a long map of calls that resolve at once', async () => {
    const items = Array.from({ length: 1000 }, (_, i) => i);
    const seenAt: number[] = [];
    let done = 0;
    const tick = () => {
      seenAt.push(done);
      if (done < items.length) setImmediate(tick);
    };
    setImmediate(tick);
    const out = await mapLimit(items, 16, async (n) => {
      done++;
      return n * 2;
    });
    expect(out).toEqual(items.map((n) => n * 2));
    // the loop ran between chunks, not only before and after
    expect(seenAt.some((d) => d > 0 && d < items.length)).toBe(true);
  });
});

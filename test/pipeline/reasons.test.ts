import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadNative, packageRoot } from '../../src/native/binding.js';
import { ReasonNames, shortName } from '../../src/pipeline/reasons.js';

const FORMAT = '/sys/kernel/tracing/events/skb/kfree_skb/format';
const canRead = process.getuid?.() === 0 && existsSync(FORMAT) && existsSync(`${packageRoot()}/build/Release/droptrace.node`);
if (!canRead) console.warn(`skipping BTF vs tracepoint check: needs root, a built addon and ${FORMAT} (mount -t tracefs tracefs /sys/kernel/tracing)`);

describe('drop-reason names', () => {
  it.skipIf(!canRead)("every name from BTF equals the tracepoint format's own", () => {
    const fmt = readFileSync(FORMAT, 'utf8');
    const pairs = [...fmt.matchAll(/\{ (\d+), "([A-Z0-9_]+)" \}/g)].map((m) => [Number(m[1]), m[2]!] as const);
    expect(pairs.length).toBeGreaterThan(50);
    const names = ReasonNames.fromKernel((n) => loadNative().btfEnum(n))!;
    for (const [num, name] of pairs) expect(names.name(num)).toBe(name);
  });

  it('strips the enum prefixes and never lets an alias shadow a name', () => {
    const n = new ReasonNames([
      ['SKB_NOT_DROPPED_YET', 0],
      ['SKB_CONSUMED', 1],
      ['SKB_DROP_REASON_NOT_SPECIFIED', 2],
      ['SKB_DROP_REASON_NO_SOCKET', 3],
      ['SKB_DROP_REASON_MAX', 4],
      ['SKB_DROP_REASON_SUBSYS_MASK', 4],
    ]);
    expect([0, 1, 2, 3, 4, 99].map((v) => n.name(v))).toEqual(['NOT_DROPPED_YET', 'CONSUMED', 'NOT_SPECIFIED', 'NO_SOCKET', 'MAX', 'UNKNOWN_99']);
    expect(n.value('NO_SOCKET')).toBe(3);
    expect(shortName('FOO')).toBe('FOO');
  });
});

/**
 * The addon's retry of optional probes (native/probes.cc ProbeSet::Retry) against this kernel:
 * it tries again only the probes named that have no hook attached, hands back every probe's
 * report in the order of attach(), keeps what is attached, and attaches nothing once stopped.
 * The late module itself is tested in a guest (test/kernels/late-module.e2e.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { loadNative } from '../../src/native/binding.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('skipping the native retry test: it needs root');

describe.skipIf(!isRoot)('native retry', () => {
  it('retries the named probes only, keeps every report in place, and nothing after stop', () => {
    const native = loadNative();
    const t = native.createTracer({});
    try {
      const first = t.attach();
      const byHook = (rs: typeof first) => rs.map((r) => [r.probe, r.hook]);
      const attached = first.filter((r) => r.state === 'attached').map((r) => r.hook);
      expect(attached).toContain('tp_btf/kfree_skb');
      // a probe that is attached already is not tried again: the same reports come back
      const again = t.retry(['kfree_skb', 'neigh_create']);
      expect(again).toEqual(first);
      // one that is not (here: fexit refused, no kprobes, or its module missing) is tried again, in place
      const down = first.find((r) => r.probe !== 'kfree_skb' && !first.some((o) => o.probe === r.probe && o.state === 'attached'));
      if (down) {
        const retried = t.retry([down.probe]);
        expect(byHook(retried)).toEqual(byHook(first));
        expect(retried.filter((r) => r.probe !== down.probe)).toEqual(first.filter((r) => r.probe !== down.probe));
      } else {
        console.warn('every optional probe attached here: nothing to retry');
      }
      expect(() => t.retry(['Bad Name'])).toThrow('bad probe name "Bad Name"');
      t.stop();
      expect(t.retry(['ct_alloc'])).toEqual([]);
    } finally {
      t.close();
    }
    expect(() => t.retry(['ct_alloc'])).toThrow(/retry after close/);
  });
});

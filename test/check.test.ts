/** `droptrace check` over the FakeTracer: which hook it would use, and that every tracer it tried is closed. */
import { describe, expect, it } from 'vitest';
import { formatCheck, runCheck } from '../src/check.js';
import type { CheckDeps } from '../src/check.js';
import type { ProbeReport, TracerOptions } from '../src/native/binding.js';
import { FakeBinding } from './helpers/fake-tracer.js';

const ALL_CAPS = (1n << 64n) - 1n;

function check(probes: (o: TracerOptions) => ProbeReport[], caps = ALL_CAPS, extra: Partial<CheckDeps> = {}) {
  const fake = new FakeBinding({ batches: [], probes });
  const report = runCheck({ native: () => fake, caps, kernel: '6.18.0-test', exists: () => true, assumeMissing: new Set(), ...extra });
  return { fake, report };
}

describe('droptrace check', () => {
  it('tries each drop hook once, the optional hooks with the first, closes every tracer and names the hook it will use', () => {
    const { fake, report } = check((o) =>
      o.only === 'tp_btf/kfree_skb'
        ? [
            { probe: 'kfree_skb', hook: 'tp_btf/kfree_skb', state: 'unavailable', why: 'no BTF for kfree_skb' },
            { probe: 'neigh_create', hook: 'tracepoint/neigh/neigh_create', state: 'attached' },
          ]
        : [{ probe: 'kfree_skb', hook: 'tracepoint/skb/kfree_skb', state: 'attached' }],
    );
    expect(fake.tracers.map((t) => [t.opts.only, t.opts.extras, t.closed, t.attached])).toEqual([
      ['tp_btf/kfree_skb', true, true, false],
      ['tracepoint/skb/kfree_skb', false, true, false],
    ]);
    expect(report.ready).toBe(true);
    expect(report.verdict).toBe('ready: droptrace will use tracepoint/skb/kfree_skb');
    expect(report.features.find((f) => f.name === 'drop reasons')).toEqual({ name: 'drop reasons', ok: true, detail: expect.stringMatching(/^enum skb_drop_reason has \d+ values$/) });
    expect(formatCheck(report).split('\n').slice(-4)).toEqual([
      'probes:',
      '  kfree_skb    tp_btf/kfree_skb                 unavailable: no BTF for kfree_skb',
      '  neigh_create tracepoint/neigh/neigh_create    attached',
      '  kfree_skb    tracepoint/skb/kfree_skb         attached',
      'ready: droptrace will use tracepoint/skb/kfree_skb',
    ].slice(-4));
  });

  it('a kernel without drop reasons (5.10-5.16) is ready, and check says what that costs', () => {
    const fake = new FakeBinding({ batches: [], probes: (o) => [{ probe: 'kfree_skb', hook: o.only!, state: 'attached' }] });
    fake.btfEnum = () => null;
    const report = runCheck({ native: () => fake, caps: ALL_CAPS, kernel: '5.10.0-32-amd64', exists: () => true });
    expect(report.ready).toBe(true);
    expect(report.verdict).toBe('ready: droptrace will use tp_btf/kfree_skb, without drop reasons (kinds from the drop location and hooks)');
    const line = formatCheck(report).split('\n').find((l) => l.includes('drop reasons'));
    expect(line).toBe(
      '  no    drop reasons   missing (kernel before 5.17): drops are classified by the place the kernel freed them and the hooks below, ' +
        "each with a certainty (exact, likely, possible); `reason` is null, and drops the place does not explain are 'not_specified'",
    );
  });

  it('nothing attaches: not ready; without the capabilities nothing is tried', () => {
    const none = check((o) => [{ probe: 'kfree_skb', hook: o.only!, state: 'unavailable', why: 'verifier said no' }]);
    expect([none.report.ready, none.report.verdict]).toEqual([false, 'not ready: no drop probe can attach on this machine']);
    const noCaps = check(() => [], 0n);
    expect(noCaps.fake.tracers).toEqual([]);
    expect(noCaps.report.probes.map((p) => p.why)).toEqual(['not tried: missing permissions', 'not tried: missing permissions']);
  });

  it('a kernel that cannot work (no BTF, no ring buffer): the verdict is the line stream and top print, nothing is tried', () => {
    const noBtf = check(() => [], ALL_CAPS, { exists: (p) => p !== '/sys/kernel/btf/vmlinux' });
    expect(noBtf.fake.tracers).toEqual([]);
    expect([noBtf.report.ready, noBtf.report.verdict]).toEqual([
      false,
      'not ready: cannot work on this kernel: missing kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF=y): droptrace needs Linux 5.10 or newer, built with BTF',
    ]);
    expect(noBtf.report.probes.map((p) => p.why)).toEqual(['not tried: this kernel cannot work (see below)', 'not tried: this kernel cannot work (see below)']);
    const fake = new FakeBinding({ batches: [] });
    fake.kernelFeatures = () => ({ ringbuf: false });
    const old = runCheck({ native: () => fake, caps: ALL_CAPS, kernel: '5.4.0-test', exists: () => true, assumeMissing: new Set() });
    expect(old.features.find((f) => f.name === 'ring buffer')).toEqual({ name: 'ring buffer', ok: false, detail: 'no BPF_MAP_TYPE_RINGBUF: needs kernel 5.8+' });
    expect(old.verdict).toBe('not ready: cannot work on this kernel: missing the BPF ring buffer (Linux 5.8+): droptrace needs Linux 5.10 or newer, built with BTF');
    expect(fake.tracers).toEqual([]);
    // injected: the same through DROPTRACE_ASSUME_MISSING's set
    const assumed = check(() => [], ALL_CAPS, { assumeMissing: new Set(['ringbuf']) });
    expect(assumed.report.verdict).toBe(old.verdict);
  });
});

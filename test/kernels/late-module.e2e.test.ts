/**
 * Probes that come later, for real: in a guest kernel (one boot, kernels/run-in-vm.sh),
 * `droptrace stream` starts with nf_conntrack not loaded, the ct_alloc probe waits for it;
 * `modprobe nf_conntrack` follows, and without a restart the probe attaches and a stats line
 * says so. Nothing is left attached once the stream has exited. The guest's side is
 * late-module.sh. Needs root and qemu (this host's kernel allows no fexit/kprobes); skips with
 * the reason otherwise. DT_LATE_KERNEL=/path/to/vmlinuz picks another guest kernel.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { schemaErrors } from '../helpers/schema.js';
import { ROOT, runInVm, scratchDir, vmAvailability } from './vm.js';

interface Probe {
  probe: string;
  hook?: string;
  state: string;
  why?: string;
}
interface Line {
  type: string;
  final?: boolean;
  probes?: Probe[];
}

const built = existsSync(join(ROOT, 'dist', 'src', 'cli.js')) && existsSync(join(ROOT, 'build', 'Release', 'droptrace.node'));
const avail = process.getuid?.() !== 0 ? { ok: false, why: 'needs root', kernel: undefined } : !built ? { ok: false, why: 'droptrace is not built (npm run build)', kernel: undefined } : vmAvailability();
const kernel = process.env.DT_LATE_KERNEL ?? avail.kernel;
if (!avail.ok) console.warn(`skipping the late-module test under qemu: ${avail.why}`);

describe.skipIf(!avail.ok)(`a probe whose module loads later, ${kernel ?? ''} under qemu`, () => {
  const scratch = scratchDir();
  afterAll(() => scratch.remove());

  it('waits for nf_conntrack, attaches when it is loaded, says so in a stats line, leaves nothing attached', async (ctx) => {
    const r = await runInVm(['sh', 'test/kernels/late-module.sh'], { ...(kernel ? { kernel } : {}), timeoutS: 300, out: scratch.path });
    const file = (f: string) => (existsSync(join(scratch.path, f)) ? readFileSync(join(scratch.path, f), 'utf8') : '');
    console.log(`late module: ${kernel} under qemu in ${(r.ms / 1000).toFixed(1)}s (boot included)`);
    expect(r.code, `guest run failed: ${r.stderr.slice(-2000)}`).toBe(0);
    const steps = file('steps').trim().split('\n');
    if (steps[0] === 'nf_conntrack loaded before the stream') {
      // a kernel with conntrack built in (or loaded at boot) has nothing to wait for: said, and a skip, not a pass
      console.warn(`skipping: ${steps[0]} on ${kernel}`);
      ctx.skip();
    }
    expect(steps, `stream stderr: ${file('stream.err')}`).toEqual(['start', 'modprobe nf_conntrack', 'stats line', 'stream exit 0', 'bpftool ok']);
    expect(file('stream.err')).toBe('');
    const lines = file('stream.ndjson')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Line);
    expect(schemaErrors(lines)).toEqual([]);

    const start = lines[0]!;
    expect(start.type).toBe('start');
    // both hooks of ct_alloc (fexit, then kretprobe) wait for the module
    const ct = start.probes!.filter((p) => p.probe === 'ct_alloc');
    expect(ct.map((p) => p.hook)).toEqual(['fexit/__nf_conntrack_alloc', 'kretprobe/__nf_conntrack_alloc']);
    for (const p of ct) expect([p.hook, p.state, p.why]).toEqual([p.hook, 'waiting', 'waiting for module nf_conntrack']);

    // --stats-interval 600: the only stats lines are the one the change made, and the final one
    const stats = lines.filter((l) => l.type === 'stats');
    expect(stats.map((s) => s.final)).toEqual([false, true]);
    for (const s of stats) {
      const state = s.probes!.find((p) => p.probe === 'ct_alloc');
      expect(state?.state).toBe('attached');
      expect(state?.hook).toMatch(/^(fexit|kretprobe)\/__nf_conntrack_alloc$/);
      // the drop probe never moved
      expect(s.probes!.find((p) => p.probe === 'kfree_skb')?.state).toBe('attached');
    }
    expect(file('progs')).not.toMatch(/\bdt_/);
  }, 420_000);
});

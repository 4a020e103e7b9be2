import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI } from './helpers/stream.js';

const run = (args: string[], opts: { viaCapsh?: string } = {}) => {
  const r = opts.viaCapsh
    ? spawnSync('capsh', [`--drop=${opts.viaCapsh}`, '--', '-c', `exec "${process.execPath}" "${CLI}" ${args.join(' ')}`], { encoding: 'utf8' })
    : spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

const oneLine = (s: string) => {
  expect(s.trimEnd().split('\n')).toHaveLength(1);
  expect(s).toMatch(/^droptrace: /);
  expect(s).not.toMatch(/\n\s+at /);
};

describe('droptrace CLI', () => {
  it('teaches with --help: commands, flags and examples', () => {
    const r = run(['--help']);
    expect(r.code).toBe(0);
    for (const s of ['stream', 'check', 'Examples:', 'droptrace stream --duration 10']) expect(r.out).toContain(s);
    const sub = run(['stream', '--help']);
    for (const s of ['--duration <seconds>', '--netns <inode>', '--stats-interval', '{"type":"start"}', '--pcap <file>', '--pcap-max <MiB>', '--pcap-payload', '--stack', '--stack-per-key <n>']) expect(sub.out).toContain(s);
    expect(run(['top', '--help']).out).toContain('--stack-per-key <n>');
  });

  it('prints its version', () => {
    expect(run(['--version'])).toMatchObject({ code: 0, out: '0.1.0\n' });
  });

  it.each([
    [['stream', '--duration', 'abc'], '--duration wants a positive number of seconds, got "abc"'],
    [['stream', '--duration', '-1'], "option '-d, --duration <seconds>' argument"],
    [['stream', '--netns', 'ns1'], '--netns wants a namespace inode'],
    [['stream', '--ring-size', '3'], '--ring-size wants a power of two'],
    [['stream', '--hook', 'kprobe/x'], "argument 'kprobe/x' is invalid"],
    [['stream', '--bogus'], "unknown option '--bogus'"],
    [['frobnicate'], "unknown command 'frobnicate'"],
    [['stream', '--pcap', 'x.pcapng', '--pcap-max', '0'], '--pcap-max wants a whole number of MiB from 1 to 1048576, got "0"'],
    [['stream', '--pcap-max', '5'], '--pcap-max needs --pcap <file>'],
    [['stream', '--pcap-payload'], '--pcap-payload needs --pcap <file>'],
    [['stream', '--stack-per-key', '2'], '--stack-per-key needs --stack'],
    [['stream', '--stack', '--stack-per-key', '0'], '--stack-per-key wants a whole number from 1 to 1000, got "0"'],
    [['top', '--stack', '--stack-per-key', 'x'], '--stack-per-key wants a whole number from 1 to 1000, got "x"'],
  ])('%j is one clear line and exit 2', (args, msg) => {
    const r = run(args);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    oneLine(r.err);
    expect(r.err).toContain(msg);
  });

  const capsh = existsSync('/usr/sbin/capsh') || existsSync('/sbin/capsh');
  const root = process.getuid?.() === 0;
  if (!capsh || !root) console.warn('skipping missing-capability test: needs root and capsh (libcap2-bin)');
  it.skipIf(!capsh || !root)('without CAP_BPF/CAP_PERFMON says which are missing, exit 1, no stack trace', () => {
    const r = run(['stream'], { viaCapsh: 'cap_bpf,cap_perfmon,cap_sys_admin' });
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    oneLine(r.err);
    expect(r.err).toBe(
      'droptrace: missing capabilities CAP_BPF, CAP_PERFMON: droptrace loads BPF programs (run as root, or grant CAP_BPF and CAP_PERFMON)\n',
    );
    const chk = run(['check'], { viaCapsh: 'cap_bpf,cap_perfmon,cap_sys_admin' });
    expect(chk.code).toBe(1);
    expect(chk.out).toContain('FAIL  permissions    missing CAP_BPF, CAP_PERFMON');
  });

  it.skipIf(!root)('--pcap over an existing file: one line, exit 2, the file untouched, nothing attached', () => {
    const dir = mkdtempSync(join(tmpdir(), 'droptrace-cli-'));
    try {
      const file = join(dir, 'old.pcapng');
      writeFileSync(file, 'keep');
      const r = run(['stream', '--pcap', file]);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toBe(`droptrace: cannot create --pcap file ${file}: it exists (droptrace writes a new file, never over one) (name a file that does not exist yet)\n`);
      expect(readFileSync(file, 'utf8')).toBe('keep');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!root)('check tries each probe for real and says which one will be used', () => {
    const r = run(['check', '--json']);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.out) as { ready: boolean; verdict: string; probes: Array<{ probe: string; hook: string; state: string }> };
    expect(rep.ready).toBe(true);
    const kfree = rep.probes.filter((p) => p.probe === 'kfree_skb');
    expect(kfree.map((p) => [p.hook, p.state])).toEqual([
      ['tp_btf/kfree_skb', 'attached'],
      ['tracepoint/skb/kfree_skb', 'attached'],
    ]);
    expect(rep.verdict).toBe('ready: droptrace will use tp_btf/kfree_skb');
    // the maps' memory as the kernel counts it: the key map shared by all CPUs
    const maps = (rep as unknown as { maps: { total: number; maps: Array<{ name: string; type: string; maxEntries: number; memlock: number }> } }).maps;
    expect(maps.maps.find((m) => m.name === 'key_counts')).toMatchObject({ type: 'lru_hash', maxEntries: 65536 });
    expect(maps.total).toBe(maps.maps.reduce((s, m) => s + m.memlock, 0));
    const text = run(['check']);
    expect(text.out).toMatch(/^maps: \d+\.\d MiB on this machine = \d+\.\d MiB \+ \d+\.\d KiB × \d+ possible CPUs \(kernel's memlock count\)$/m);
    expect(text.out).toContain('key_counts: 65536 × (48 + 56 + 32) B + 16 B × buckets, shared by all CPUs: the same on any machine (budget 16.0 MiB)');
  });
});

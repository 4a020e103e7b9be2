/**
 * The image test (scripts/test-image.sh) runs the image with flags that scripts/podman-flags.mjs
 * derives from deploy/daemonset.yaml. These check that derivation without podman: the manifest's
 * security settings become exactly the flags a node would get, a setting without a translation
 * fails in one line instead of being left out, and the Dockerfile agrees with the manifest and
 * with the base that scripts/image-base.sh makes.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { ROOT } from '../helpers/stream.js';

const SCRIPT = join(ROOT, 'scripts', 'podman-flags.mjs');
const MANIFEST = readFileSync(join(ROOT, 'deploy', 'daemonset.yaml'), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'dt-podman-flags-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(what: string, yamlText: string, extra: string[] = []): { code: number | null; out: string[]; err: string } {
  const file = join(dir, `ds-${Math.random().toString(16).slice(2)}.yaml`);
  writeFileSync(file, yamlText);
  const r = spawnSync(process.execPath, [SCRIPT, what, ...extra, file], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout.split('\n').filter((l) => l !== ''), err: r.stderr };
}

/** The manifest with its container (or pod spec) changed by `edit`. */
function edited(edit: (pod: Record<string, any>, container: Record<string, any>) => void): string {
  const docs = parseAllDocuments(MANIFEST).map((d) => d.toJS());
  const ds = docs.find((d) => d?.kind === 'DaemonSet');
  edit(ds.spec.template.spec, ds.spec.template.spec.containers[0]);
  return docs.map((d) => stringify(d)).join('---\n');
}

describe('deploy/daemonset.yaml as podman flags', () => {
  it('translates every security setting and mount of the manifest', () => {
    const r = run('flags', MANIFEST, ['--host-path', '/var/log/pods=/tmp/standin']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    // env is checked below: other sessions add variables; these are the settings that must not drift
    expect(r.out.filter((f) => !f.startsWith('--env='))).toEqual([
      '--network=host',
      '--pid=host',
      '--user=0',
      '--security-opt=no-new-privileges',
      '--read-only',
      '--read-only-tmpfs=false',
      '--cap-drop=ALL',
      '--cap-add=BPF',
      '--cap-add=PERFMON',
      '--cap-add=SYSLOG',
      '--cap-add=SYS_PTRACE',
      '--memory=536870912',
      '--volume=/sys/kernel/btf:/sys/kernel/btf:ro,rprivate',
      '--volume=/sys/kernel/tracing:/sys/kernel/tracing:ro,rprivate',
      '--volume=/tmp/standin:/var/log/pods:ro,rprivate',
      '--volume=/run/netns:/run/netns:ro,rslave',
    ]);
    expect(r.out).toContain(`--env=NODE_NAME=${hostname()}`);
  });

  it('expands $(VAR) in args from the env, and resolves the liveness probe port by name', () => {
    const r = run('args', MANIFEST);
    expect(r.code).toBe(0);
    expect(r.out[0]).toBe('stream');
    expect(r.out.join(' ')).not.toMatch(/\$\(/);
    const withVar = edited((_, c) => {
      c.env = [{ name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } }, { name: 'X', value: 'a' }];
      c.args = ['stream', '--metrics', '$(HOST_IP):9464', '$(X)$$(X)', '$(UNSET)'];
    });
    expect(run('args', withVar).out).toEqual(['stream', '--metrics', '127.0.0.1:9464', 'a$(X)', '$(UNSET)']);
    const probe = run('probe', MANIFEST);
    expect(probe.code).toBe(0);
    expect(probe.out).toHaveLength(1);
    expect(probe.out[0]).toMatch(/^\/\S* 9464$/);
  });

  it('maps seccomp Unconfined and Bidirectional propagation', () => {
    const r = run(
      'flags',
      edited((_, c) => {
        c.securityContext.seccompProfile = { type: 'Unconfined' };
        c.volumeMounts[0].mountPropagation = 'Bidirectional';
      }),
    );
    expect(r.code).toBe(0);
    expect(r.out).toContain('--security-opt=seccomp=unconfined');
    expect(r.out).toContain('--volume=/sys/kernel/btf:/sys/kernel/btf:ro,rshared');
  });

  it.each([
    ['privileged', (_: any, c: any) => (c.securityContext.privileged = true), 'privileged: true: the image test is for a cut-down capability set'],
    ['an unknown securityContext field', (_: any, c: any) => (c.securityContext.procMount = 'Unmasked'), 'securityContext.procMount: no podman translation'],
    ['a Localhost seccomp profile', (_: any, c: any) => (c.securityContext.seccompProfile = { type: 'Localhost' }), 'seccompProfile Localhost: no podman translation'],
    ['a volume that is no hostPath', (p: any) => (p.volumes[0] = { name: p.volumes[0].name, emptyDir: {} }), 'volume btf: only hostPath volumes are translated'],
    ['an env from a secret', (_: any, c: any) => c.env.push({ name: 'T', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }), 'env T: no podman translation for {"secretKeyRef":{"name":"s","key":"k"}}'],
    ['no host network', (p: any) => (p.hostNetwork = false), 'hostNetwork is not true: the test runs on the host network only'],
  ])('refuses %s in one line', (_name, edit, message) => {
    const r = run('flags', edited(edit));
    expect(r.code).toBe(1);
    expect(r.out).toEqual([]);
    expect(r.err).toMatch(new RegExp(`^podman-flags: \\S+: ${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n$`));
  });
});

describe('deploy/Dockerfile', () => {
  const dockerfile = readFileSync(join(ROOT, 'deploy', 'Dockerfile'), 'utf8');

  it('builds from the base that scripts/image-base.sh makes here', () => {
    const from = /^ARG BASE=(\S+)$/m.exec(dockerfile)?.[1];
    const made = /^BASE=(\S+)$/m.exec(readFileSync(join(ROOT, 'scripts', 'image-base.sh'), 'utf8'))?.[1];
    expect(from).toBe('docker.io/library/debian:trixie-slim');
    expect(made).toBe(from);
    expect(dockerfile.match(/^FROM .*$/gm)).toEqual(['FROM ${BASE} AS build', 'FROM ${BASE}']);
  });

  it('runs as the manifest\'s user, with droptrace as the entrypoint of its args', () => {
    const users = [...dockerfile.matchAll(/^USER (\S+)$/gm)].map((m) => m[1]);
    const uid = /runAsUser: (\d+)/.exec(MANIFEST)?.[1];
    expect(users).toEqual([uid]);
    expect(/^ENTRYPOINT (.*)$/m.exec(dockerfile)?.[1]).toBe('["node", "/opt/droptrace/dist/src/cli.js"]');
  });
});

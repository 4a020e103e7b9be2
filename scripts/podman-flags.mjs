#!/usr/bin/env node
// SPDX-License-Identifier: GPL-2.0
// deploy/daemonset.yaml's container settings as `podman run` flags, one per line, so that
// scripts/test-image.sh runs the image exactly as the DaemonSet would: host PID and network,
// user, capabilities, seccomp, read-only root, no_new_privs, memory limit and hostPath mounts.
// A setting it has no translation for is an error, never left out: the test would otherwise
// pass with less than what a node gets.
// Also the container's args with the kubelet's $(VAR) expansion, and its liveness probe.
// Usage: scripts/podman-flags.mjs flags|args|probe [--host-path HOST=STANDIN]... [DAEMONSET_YAML]
//   flags  one podman run flag a line
//   args   the container's args, one a line, $(VAR) expanded
//   probe  "PATH PORT" of the liveness probe's httpGet
//   --host-path /var/log/pods=/tmp/x mounts /tmp/x where the DaemonSet mounts the node's /var/log/pods
// spec.nodeName is the host name; status.hostIP (and podIP: hostNetwork) is 127.0.0.1, so the
// test's metrics port is on loopback only.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

const SECURITY_KEYS = new Set([
  'runAsUser',
  'runAsNonRoot',
  'privileged',
  'allowPrivilegeEscalation',
  'readOnlyRootFilesystem',
  'capabilities',
  'seccompProfile',
]);
// HostToContainer is rslave (the node's later mounts show up, e.g. a new /run/netns/<name>)
const PROPAGATION = { None: 'rprivate', HostToContainer: 'rslave', Bidirectional: 'rshared' };

export class FlagError extends Error {}

/** Kubernetes memory quantity (Mi, Gi, M, G, plain bytes) → bytes. */
function bytes(q) {
  const m = /^(\d+)(Ki|Mi|Gi|K|M|G)?$/.exec(String(q));
  if (m === null) throw new FlagError(`memory limit ${q}: not a quantity this script reads`);
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, K: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}

function container(yamlText) {
  const docs = parseAllDocuments(yamlText).map((d) => d.toJS());
  const ds = docs.find((d) => d?.kind === 'DaemonSet');
  if (ds === undefined) throw new FlagError('no DaemonSet in the file');
  const spec = ds.spec.template.spec;
  if (spec.containers.length !== 1) throw new FlagError(`${spec.containers.length} containers: expected one`);
  return { spec, c: spec.containers[0] };
}

/** The container's env as the kubelet would set it here. */
function environment(c, { nodeName = hostname(), hostIP = '127.0.0.1' } = {}) {
  const env = new Map();
  for (const e of c.env ?? []) {
    const field = e.valueFrom?.fieldRef?.fieldPath;
    if (e.value !== undefined) env.set(e.name, String(e.value));
    else if (field === 'spec.nodeName') env.set(e.name, nodeName);
    else if (field === 'status.hostIP' || field === 'status.podIP') env.set(e.name, hostIP);
    else throw new FlagError(`env ${e.name}: no podman translation for ${JSON.stringify(e.valueFrom)}`);
  }
  return env;
}

/**
 * The flags for the DaemonSet's one container. `hostPaths` maps a node path to a stand-in;
 * `nodeName` is what spec.nodeName would be, `hostIP` status.hostIP.
 */
export function podmanFlags(yamlText, { hostPaths = {}, nodeName, hostIP } = {}) {
  const { spec, c } = container(yamlText);
  const sc = c.securityContext ?? {};
  const flags = [];

  if (spec.hostNetwork !== true) throw new FlagError('hostNetwork is not true: the test runs on the host network only');
  flags.push('--network=host');
  if (spec.hostPID === true) flags.push('--pid=host');

  for (const k of Object.keys(sc)) if (!SECURITY_KEYS.has(k)) throw new FlagError(`securityContext.${k}: no podman translation`);
  if (sc.privileged === true) throw new FlagError('privileged: true: the image test is for a cut-down capability set');
  if (sc.runAsUser !== undefined) flags.push(`--user=${sc.runAsUser}`);
  if (sc.allowPrivilegeEscalation === false) flags.push('--security-opt=no-new-privileges');
  // Kubernetes gives a read-only root nothing writable; podman would add tmpfs on /tmp, /run
  if (sc.readOnlyRootFilesystem === true) flags.push('--read-only', '--read-only-tmpfs=false');
  const caps = sc.capabilities ?? {};
  for (const cap of caps.drop ?? []) flags.push(`--cap-drop=${cap}`);
  for (const cap of caps.add ?? []) flags.push(`--cap-add=${cap}`);
  const seccomp = sc.seccompProfile?.type;
  if (seccomp === 'Unconfined') flags.push('--security-opt=seccomp=unconfined');
  else if (seccomp !== undefined && seccomp !== 'RuntimeDefault') throw new FlagError(`seccompProfile ${seccomp}: no podman translation`);
  // RuntimeDefault: podman's own default profile, which is what it applies without a flag

  const mem = c.resources?.limits?.memory;
  if (mem !== undefined) flags.push(`--memory=${bytes(mem)}`);

  for (const [k, v] of environment(c, { nodeName, hostIP })) flags.push(`--env=${k}=${v}`);

  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
  for (const m of c.volumeMounts ?? []) {
    const v = volumes.get(m.name);
    if (v?.hostPath === undefined) throw new FlagError(`volume ${m.name}: only hostPath volumes are translated`);
    const prop = PROPAGATION[m.mountPropagation ?? 'None'];
    if (prop === undefined) throw new FlagError(`volume ${m.name}: mountPropagation ${m.mountPropagation}`);
    const src = hostPaths[v.hostPath.path] ?? v.hostPath.path;
    flags.push(`--volume=${src}:${m.mountPath}:${m.readOnly === true ? 'ro' : 'rw'},${prop}`);
  }
  return flags;
}

/** The container's args, $(VAR) expanded from its env as the kubelet does ($$ is a literal $). */
export function containerArgs(yamlText, opts = {}) {
  const { c } = container(yamlText);
  const env = environment(c, opts);
  return (c.args ?? []).map((a) =>
    a.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name) => (m === '$$' ? '$' : (env.get(name) ?? m))),
  );
}

/** The liveness probe's HTTP path and port number (a named port resolved). */
export function livenessProbe(yamlText) {
  const { c } = container(yamlText);
  const get = c.livenessProbe?.httpGet;
  if (get === undefined) throw new FlagError('no httpGet liveness probe');
  const port = typeof get.port === 'number' ? get.port : c.ports?.find((p) => p.name === get.port)?.containerPort;
  if (port === undefined) throw new FlagError(`liveness probe port ${get.port}: no such container port`);
  return { path: get.path ?? '/', port };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [what, ...args] = process.argv.slice(2);
  const hostPaths = {};
  let file = join(import.meta.dirname, '..', 'deploy', 'daemonset.yaml');
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--host-path') {
      const [from, to] = (args[++i] ?? '').split('=');
      if (!from || !to) {
        console.error('podman-flags: --host-path wants HOST=STANDIN');
        process.exit(2);
      }
      hostPaths[from] = to;
    } else file = args[i];
  }
  try {
    const text = readFileSync(file, 'utf8');
    if (what === 'flags') console.log(podmanFlags(text, { hostPaths }).join('\n'));
    else if (what === 'args') console.log(containerArgs(text).join('\n'));
    else if (what === 'probe') {
      const p = livenessProbe(text);
      console.log(`${p.path} ${p.port}`);
    } else {
      console.error('usage: scripts/podman-flags.mjs flags|args|probe [--host-path HOST=STANDIN]... [DAEMONSET_YAML]');
      process.exit(2);
    }
  } catch (e) {
    console.error(`podman-flags: ${file}: ${e instanceof FlagError ? e.message : String(e)}`);
    process.exit(1);
  }
}

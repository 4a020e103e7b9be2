/**
 * Lab "pods" for end-to-end tests, as root: a network namespace `dtpod-<id>` joined by a veth
 * to a shared peer namespace `dtpeer-<id>` (198.18.0.0/15 and fd99::/16 only, never the host's
 * interfaces), a `sleep` started inside it, moved into a kubelet-style cgroup, and a kubelet-style
 * `/var/log/pods/<namespace>_<name>_<uid>/` directory under a temporary root. `destroy()`
 * removes everything, including on a failed test.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inNs, sh } from '../helpers/netns.js';

export interface CgroupRoots {
  /** where cgroup v2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts) */
  v2: string | null;
  /** a cgroup v1 hierarchy a process can be moved into (pids, or the named systemd one) */
  v1: string | null;
}

export function cgroupRoots(): CgroupRoots {
  let v2: string | null = null;
  let v1: string | null = null;
  for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const [, mnt, type, opts] = line.split(' ');
    if (type === 'cgroup2' && v2 === null) v2 = mnt!;
    if (type === 'cgroup' && v1 === null && opts!.split(',').some((o) => o === 'pids' || o === 'name=systemd')) v1 = mnt!;
  }
  return { v2, v1 };
}

export interface LabPod {
  ns: string;
  netns: number;
  uid: string;
  containerId: string;
  namespace: string;
  name: string;
  ip: string;
  ip6: string;
  peerIp: string;
  veth: string;
  pid: number;
  /** the cgroup directory the process is in */
  cgroup: string;
  /** kills the process (the pod's sandbox goes away) and waits for it */
  stop(): Promise<void>;
}

export interface Lab {
  id: string;
  peer: string;
  logsRoot: string;
  pods: LabPod[];
  addPod(o: { namespace: string; name: string; cgroupPath: (uid: string, containerId: string) => string; subnet: number }): Promise<LabPod>;
  destroy(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function makeLab(logsRoot: string): Lab {
  const id = randomBytes(3).toString('hex');
  const peer = `dtpeer-${id}`;
  const namespaces = [peer];
  const procs: ChildProcess[] = [];
  const createdDirs: string[] = [];
  const pods: LabPod[] = [];
  sh('ip', ['netns', 'add', peer]);
  inNs(peer, 'ip', ['link', 'set', 'lo', 'up']);

  const mkdirs = (dir: string) => {
    const missing: string[] = [];
    for (let d = dir; !existsSync(d); d = join(d, '..')) missing.unshift(d);
    for (const d of missing) {
      mkdirSync(d);
      createdDirs.push(d);
    }
  };

  const addPod: Lab['addPod'] = async (o) => {
    const n = pods.length;
    const ns = `dtpod-${id}-${n}`;
    const uid = randomUUID();
    const containerId = randomBytes(32).toString('hex');
    const veth = `dtp${id}${n}`;
    const vethPeer = `dtq${id}${n}`;
    const ip = `198.18.${o.subnet}.2`;
    const peerIp = `198.18.${o.subnet}.1`;
    const ip6 = `fd99::${o.subnet}:2`;
    sh('ip', ['netns', 'add', ns]);
    namespaces.push(ns);
    sh('ip', ['link', 'add', veth, 'netns', ns, 'type', 'veth', 'peer', 'name', vethPeer, 'netns', peer]);
    inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
    inNs(ns, 'ip', ['addr', 'add', `${ip}/24`, 'dev', veth]);
    inNs(ns, 'ip', ['-6', 'addr', 'add', `${ip6}/112`, 'dev', veth, 'nodad']);
    inNs(ns, 'ip', ['link', 'set', veth, 'up']);
    inNs(peer, 'ip', ['addr', 'add', `${peerIp}/24`, 'dev', vethPeer]);
    inNs(peer, 'ip', ['link', 'set', vethPeer, 'up']);
    const netns = statSync(`/run/netns/${ns}`).ino;

    // `ip netns exec` enters the netns and execs: the child's pid is the sleep's
    const child = spawn('ip', ['netns', 'exec', ns, 'sleep', '300'], { stdio: 'ignore' });
    procs.push(child);
    const pid = child.pid!;
    for (let i = 0; ; i++) {
      const link = (() => {
        try {
          return readlinkSync(`/proc/${pid}/ns/net`);
        } catch {
          return '';
        }
      })();
      if (link === `net:[${netns}]` && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep') break;
      if (i > 500) throw new Error(`sleep did not start in ${ns}`);
      await sleep(5);
    }
    const cgroup = o.cgroupPath(uid, containerId);
    mkdirs(cgroup);
    writeFileSync(join(cgroup, 'cgroup.procs'), String(pid));
    mkdirs(join(logsRoot, `${o.namespace}_${o.name}_${uid}`, 'app'));
    writeFileSync(join(logsRoot, `${o.namespace}_${o.name}_${uid}`, 'app', '0.log'), '');

    const stop = async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    };
    const pod: LabPod = { ns, netns, uid, containerId, namespace: o.namespace, name: o.name, ip, ip6, peerIp, veth, pid, cgroup, stop };
    pods.push(pod);
    return pod;
  };

  const destroy = async () => {
    for (const p of pods) await p.stop().catch(() => undefined);
    for (const c of procs) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    // a cgroup can be removed once its last process is reaped: retry briefly, deepest first
    for (const d of createdDirs.reverse()) {
      for (let i = 0; i < 100; i++) {
        try {
          rmdirSync(d);
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') break;
          if (d.startsWith('/sys/fs/cgroup') && i < 99) await sleep(10);
          else if (!d.startsWith('/sys/fs/cgroup')) break;
        }
      }
    }
    for (const ns of namespaces) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  };

  return { id, peer, logsRoot, pods, addPod, destroy };
}

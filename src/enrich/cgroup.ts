/**
 * Pod UID and container id from a process's cgroup path, as the kubelet names them:
 *
 *   systemd driver   …/kubepods.slice/kubepods-besteffort.slice/
 *                       kubepods-besteffort-pod<uid, _ for ->.slice/cri-containerd-<id>.scope
 *                    …/kubepods.slice/kubepods-pod<uid>.slice/crio-<id>.scope   (guaranteed)
 *   cgroupfs driver  …/kubepods/burstable/pod<uid>/<id>
 *                    …/kubepods/pod<uid>/crio-<id>                              (guaranteed)
 *
 * A prefix before `kubepods` is allowed: a kubelet inside a container or a cgroup namespace
 * (`/../..`), or another cgroup root (kind: `kubelet.slice/kubelet-kubepods.slice/…`). CRI-O's
 * conmon sits in the pod's slice but is no workload (and lives in the host netns): not a pod.
 */

export type QosClass = 'guaranteed' | 'burstable' | 'besteffort';

export interface PodCgroup {
  /** The pod UID as the API and /var/log/pods spell it (with dashes), or a static pod's hash. */
  podUid: string;
  /** 64 hex digits; null for a process in the pod's cgroup but no container's */
  containerId: string | null;
  qos: QosClass;
  driver: 'systemd' | 'cgroupfs';
  /** from the scope's prefix; null when the cgroupfs naming does not say */
  runtime: 'containerd' | 'cri-o' | 'docker' | null;
}

const UID = '[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32}';
const SYSTEMD_POD = new RegExp(`^(?:[\\w.-]+-)?kubepods(?:-(besteffort|burstable))?-pod(${UID})\\.slice$`);
const CGROUPFS_POD = new RegExp(`^pod(${UID})$`);
const SYSTEMD_CONTAINER = /^(cri-containerd|crio|docker)-([0-9a-f]{64})\.scope$/;
const CGROUPFS_CONTAINER = /^(?:(cri-containerd|crio|docker)-)?([0-9a-f]{64})(?:\.scope)?$/;
const CONMON = /^crio-conmon-/;

const RUNTIME = { 'cri-containerd': 'containerd', crio: 'cri-o', docker: 'docker' } as const;

/** The pod of one cgroup path (the part after the second colon of a /proc/<pid>/cgroup line). */
export function parseCgroupPath(path: string): PodCgroup | null {
  const seg = path.split('/');
  for (let k = 0; k < seg.length; k++) {
    const s = seg[k]!;
    let m = SYSTEMD_POD.exec(s);
    if (m !== null) {
      const next = seg[k + 1];
      if (next !== undefined && CONMON.test(next)) return null;
      const c = next === undefined ? null : SYSTEMD_CONTAINER.exec(next);
      return {
        podUid: m[2]!.replaceAll('_', '-'),
        containerId: c ? c[2]! : null,
        qos: (m[1] as QosClass | undefined) ?? 'guaranteed',
        driver: 'systemd',
        runtime: c ? RUNTIME[c[1] as keyof typeof RUNTIME] : null,
      };
    }
    m = CGROUPFS_POD.exec(s);
    if (m !== null) {
      const prev = seg[k - 1];
      const qos = prev === 'burstable' || prev === 'besteffort' ? prev : 'guaranteed';
      if ((qos === 'guaranteed' ? prev : seg[k - 2]) !== 'kubepods') continue;
      const next = seg[k + 1];
      if (next !== undefined && CONMON.test(next)) return null;
      const c = next === undefined ? null : CGROUPFS_CONTAINER.exec(next);
      return {
        podUid: m[1]!.replaceAll('_', '-'),
        containerId: c ? c[2]! : null,
        qos,
        driver: 'cgroupfs',
        runtime: c?.[1] ? RUNTIME[c[1] as keyof typeof RUNTIME] : null,
      };
    }
  }
  return null;
}

/** The pod of a process from the text of /proc/<pid>/cgroup (any hierarchy line that names one). */
export function parseProcCgroup(text: string): PodCgroup | null {
  for (const line of text.split('\n')) {
    // "0::/path" (v2) or "4:memory:/path" (v1); the path itself may contain colons
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (b < 0) continue;
    const pod = parseCgroupPath(line.slice(b + 1));
    if (pod !== null) return pod;
  }
  return null;
}

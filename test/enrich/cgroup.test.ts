import { describe, expect, it } from 'vitest';
import { parseCgroupPath, parseProcCgroup } from '../../src/enrich/cgroup.js';

const UID = '8d5c1f2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f';
const UIDU = UID.replaceAll('-', '_');
const ID = 'f3a9c2d1e0b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2';
const HASH = '5b1d3fbe0c81c2aec63a48e2a89f3d57';

describe('parseCgroupPath', () => {
  it('reads every kubelet naming scheme exactly', () => {
    const paths = [
      // systemd driver, containerd
      `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UIDU}.slice/cri-containerd-${ID}.scope`,
      `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UIDU}.slice/cri-containerd-${ID}.scope`,
      `/kubepods.slice/kubepods-pod${UIDU}.slice/cri-containerd-${ID}.scope`,
      // systemd driver, CRI-O (with the "container" sub-cgroup some versions add)
      `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UIDU}.slice/crio-${ID}.scope`,
      `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UIDU}.slice/crio-${ID}.scope/container`,
      // systemd driver, docker (cri-dockerd)
      `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UIDU}.slice/docker-${ID}.scope`,
      // cgroupfs driver: containerd/docker use the bare id, CRI-O prefixes it
      `/kubepods/burstable/pod${UID}/${ID}`,
      `/kubepods/besteffort/pod${UID}/${ID}`,
      `/kubepods/pod${UID}/${ID}`,
      `/kubepods/burstable/pod${UID}/crio-${ID}`,
      // a static pod: its UID is the config hash
      `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${HASH}.slice/cri-containerd-${ID}.scope`,
      `/kubepods/burstable/pod${HASH}/${ID}`,
      // seen through a cgroup namespace, inside a kind node, under another cgroup root
      `/../../kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UIDU}.slice/cri-containerd-${ID}.scope`,
      `/system.slice/containerd.service/kubepods-besteffort-pod${UIDU}.slice:cri-containerd:${ID}`,
      `/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${UIDU}.slice/cri-containerd-${ID}.scope`,
      `/docker/0123abcd/kubepods/burstable/pod${UID}/${ID}`,
      // the pod's own cgroup, no container
      `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UIDU}.slice`,
    ];
    expect(paths.map(parseCgroupPath)).toEqual([
      { podUid: UID, containerId: ID, qos: 'besteffort', driver: 'systemd', runtime: 'containerd' },
      { podUid: UID, containerId: ID, qos: 'burstable', driver: 'systemd', runtime: 'containerd' },
      { podUid: UID, containerId: ID, qos: 'guaranteed', driver: 'systemd', runtime: 'containerd' },
      { podUid: UID, containerId: ID, qos: 'burstable', driver: 'systemd', runtime: 'cri-o' },
      { podUid: UID, containerId: ID, qos: 'burstable', driver: 'systemd', runtime: 'cri-o' },
      { podUid: UID, containerId: ID, qos: 'besteffort', driver: 'systemd', runtime: 'docker' },
      { podUid: UID, containerId: ID, qos: 'burstable', driver: 'cgroupfs', runtime: null },
      { podUid: UID, containerId: ID, qos: 'besteffort', driver: 'cgroupfs', runtime: null },
      { podUid: UID, containerId: ID, qos: 'guaranteed', driver: 'cgroupfs', runtime: null },
      { podUid: UID, containerId: ID, qos: 'burstable', driver: 'cgroupfs', runtime: 'cri-o' },
      { podUid: HASH, containerId: ID, qos: 'burstable', driver: 'systemd', runtime: 'containerd' },
      { podUid: HASH, containerId: ID, qos: 'burstable', driver: 'cgroupfs', runtime: null },
      { podUid: UID, containerId: ID, qos: 'besteffort', driver: 'systemd', runtime: 'containerd' },
      null, // the "slice:runtime:id" form of a systemd cgroup *parent* string is not a cgroup path
      { podUid: UID, containerId: ID, qos: 'besteffort', driver: 'systemd', runtime: 'containerd' },
      { podUid: UID, containerId: ID, qos: 'burstable', driver: 'cgroupfs', runtime: null },
      { podUid: UID, containerId: null, qos: 'besteffort', driver: 'systemd', runtime: null },
    ]);
  });

  it('is not fooled by look-alikes, and skips CRI-O conmon (a pod-slice process in the host netns)', () => {
    expect(
      [
        '/',
        '/user.slice/user-0.slice/session-3.scope',
        '/system.slice/containerd.service',
        `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UIDU}.slice/crio-conmon-${ID}.scope`,
        `/kubepods/burstable/pod${UID}/crio-conmon-${ID}`,
        `/pod${UID}/${ID}`, // no kubepods above it
        `/kubepods/burstable/pod${UID.slice(0, 30)}/${ID}`, // truncated UID
        `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podXYZ.slice`,
      ].map(parseCgroupPath),
    ).toEqual([null, null, null, null, null, null, null, null]);
  });
});

describe('parseProcCgroup', () => {
  it('reads cgroup v2, and v1 / hybrid hierarchies with any line naming the pod', () => {
    const v2 = `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UIDU}.slice/cri-containerd-${ID}.scope\n`;
    const hybrid = [
      '12:pids:/',
      `11:memory:/kubepods/burstable/pod${UID}/${ID}`,
      `1:name=systemd:/kubepods/burstable/pod${UID}/${ID}`,
      '0::/',
      '',
    ].join('\n');
    expect(parseProcCgroup(v2)).toEqual({ podUid: UID, containerId: ID, qos: 'besteffort', driver: 'systemd', runtime: 'containerd' });
    expect(parseProcCgroup(hybrid)).toEqual({ podUid: UID, containerId: ID, qos: 'burstable', driver: 'cgroupfs', runtime: null });
    expect(parseProcCgroup('0::/user.slice\n')).toBeNull();
    expect(parseProcCgroup('')).toBeNull();
  });
});

/**
 * Pod objects (core/v1) shaped like what an API server of Kubernetes 1.30 returns for a
 * Deployment's pod on a containerd node: the fields droptrace reads and the usual company.
 */

export interface PodSpecOptions {
  name: string;
  namespace?: string;
  uid: string;
  node?: string;
  /** IPv4 first, as dual-stack pods list them; omitted or empty: not yet networked */
  ips?: string[];
  hostNetwork?: boolean;
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  /** ISO times */
  created?: string;
  started?: string;
  networkReady?: string;
  finished?: string;
  /** kubelet's config hash of a static pod (its mirror pod carries it) */
  mirrorOf?: string;
}

export type PodObject = Record<string, unknown> & { metadata: Record<string, unknown> };

export function podObject(o: PodSpecOptions): PodObject {
  const namespace = o.namespace ?? 'shop';
  const node = o.node ?? 'dt-node1';
  const created = o.created ?? '2026-03-01T10:00:00Z';
  const started = o.started ?? created;
  const phase = o.phase ?? (o.ips?.length ? 'Running' : 'Pending');
  const nodeIp = '10.0.0.11';
  const ips = o.hostNetwork ? [nodeIp] : (o.ips ?? []);
  const rs = o.name.replace(/-[a-z0-9]{5}$/, '');
  const conditions: Array<Record<string, unknown>> = [];
  if (o.networkReady) conditions.push({ type: 'PodReadyToStartContainers', status: 'True', lastProbeTime: null, lastTransitionTime: o.networkReady });
  conditions.push(
    { type: 'Initialized', status: 'True', lastProbeTime: null, lastTransitionTime: started },
    { type: 'Ready', status: phase === 'Running' ? 'True' : 'False', lastProbeTime: null, lastTransitionTime: o.networkReady ?? started },
    { type: 'ContainersReady', status: phase === 'Running' ? 'True' : 'False', lastProbeTime: null, lastTransitionTime: o.networkReady ?? started },
    { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: created },
  );
  const state =
    phase === 'Running'
      ? { running: { startedAt: o.networkReady ?? started } }
      : phase === 'Succeeded' || phase === 'Failed'
        ? {
            terminated: {
              exitCode: phase === 'Succeeded' ? 0 : 1,
              reason: phase === 'Succeeded' ? 'Completed' : 'Error',
              startedAt: started,
              finishedAt: o.finished ?? started,
              containerID: `containerd://${'ab'.repeat(32)}`,
            },
          }
        : { waiting: { reason: 'ContainerCreating' } };
  const metadata: Record<string, unknown> = {
    name: o.name,
    generateName: `${rs}-`,
    namespace,
    uid: o.uid,
    resourceVersion: '1',
    creationTimestamp: created,
    labels: { app: rs.replace(/-[a-z0-9]{8,10}$/, ''), 'pod-template-hash': '6b7f9c8d4d' },
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs, uid: '0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f', controller: true, blockOwnerDeletion: true }],
  };
  if (o.mirrorOf) {
    metadata.annotations = {
      'kubernetes.io/config.hash': o.mirrorOf,
      'kubernetes.io/config.mirror': o.mirrorOf,
      'kubernetes.io/config.source': 'file',
    };
    delete metadata.generateName;
    metadata.ownerReferences = [{ apiVersion: 'v1', kind: 'Node', name: node, uid: '7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d', controller: true }];
  }
  const status: Record<string, unknown> = {
    phase,
    conditions,
    hostIP: nodeIp,
    hostIPs: [{ ip: nodeIp }],
    startTime: started,
    containerStatuses: [
      {
        name: 'app',
        state,
        lastState: {},
        ready: phase === 'Running',
        restartCount: 0,
        image: 'registry.k8s.io/e2e-test-images/agnhost:2.47',
        imageID: 'registry.k8s.io/e2e-test-images/agnhost@sha256:' + 'cd'.repeat(32),
        containerID: `containerd://${'ab'.repeat(32)}`,
        started: phase === 'Running',
      },
    ],
    qosClass: 'BestEffort',
  };
  if (ips.length) {
    status.podIP = ips[0];
    status.podIPs = ips.map((ip) => ({ ip }));
  }
  const spec: Record<string, unknown> = {
    volumes: [{ name: 'kube-api-access-x2x9q', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }], defaultMode: 420 } }],
    containers: [
      {
        name: 'app',
        image: 'registry.k8s.io/e2e-test-images/agnhost:2.47',
        args: ['netexec', '--http-port=8080'],
        resources: {},
        volumeMounts: [{ name: 'kube-api-access-x2x9q', readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }],
        terminationMessagePath: '/dev/termination-log',
        terminationMessagePolicy: 'File',
        imagePullPolicy: 'IfNotPresent',
      },
    ],
    restartPolicy: phase === 'Succeeded' || phase === 'Failed' ? 'Never' : 'Always',
    terminationGracePeriodSeconds: 30,
    dnsPolicy: 'ClusterFirst',
    serviceAccountName: 'default',
    serviceAccount: 'default',
    nodeName: node,
    securityContext: {},
    schedulerName: 'default-scheduler',
    tolerations: [
      { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
    ],
    priority: 0,
    enableServiceLinks: true,
    preemptionPolicy: 'PreemptLowerPriority',
  };
  if (o.hostNetwork) spec.hostNetwork = true;
  return { kind: 'Pod', apiVersion: 'v1', metadata, spec, status };
}

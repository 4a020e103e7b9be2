/**
 * Pod attribution with every source this node has, combined in one index: a `--pods` file,
 * node-local discovery (/proc + /var/log/pods) and the Kubernetes API (in-cluster service
 * account or `--kubeconfig`). Configuration mistakes are errors at start (exit 2); an API or
 * a /proc that fails later is counted and retried, never fatal.
 */
import type { DiscoveryOptions } from './discovery.js';
import { NodeDiscovery } from './discovery.js';
import { inClusterTarget, kubeconfigTarget } from './kube-config.js';
import type { KubeTarget } from './kube-config.js';
import type { PodWatcherOptions, PodWatcherStatus } from './kube-watch.js';
import { PodWatcher } from './kube-watch.js';
import { podEnricher } from './pod-enricher.js';
import type { PodEnricher } from './pod-enricher.js';
import { PodIndex } from './pod-index.js';
import type { PodIndexOptions } from './pod-index.js';
import { loadPodsFile } from './pods-file.js';

export interface PodAttributionOptions {
  /** `--pods FILE` */
  podsFile?: string;
  /** `--kubeconfig FILE`; without it the in-cluster service account is used when present */
  kubeconfig?: string;
  /** `--kube-allow-http`: accept a kubeconfig whose server is plain http:// */
  kubeAllowHttp?: boolean;
  /** default true: use the service account when KUBERNETES_SERVICE_HOST is set */
  inCluster?: boolean;
  /** `--node NAME`: whose pods to watch; default $NODE_NAME, else the host name */
  node?: string;
  /** default true; false turns node-local discovery off */
  discovery?: boolean;
  /** rescan interval of discovery, ms (`--pod-rescan`); default 10 s */
  rescanMs?: number;
  /** wait up to this long for the first API list before returning; default 3 s */
  syncTimeoutMs?: number;
  /** one line for stderr when the API becomes unreachable or recovers */
  warn?: (line: string) => void;
  /** tests: roots, clocks, backoff */
  discoveryOptions?: DiscoveryOptions;
  watcherOptions?: PodWatcherOptions;
  indexOptions?: PodIndexOptions;
  env?: NodeJS.ProcessEnv;
  serviceAccountDir?: string;
}

export interface PodAttribution {
  index: PodIndex;
  /** add to the stream's enrichers; its close() stops every source */
  enricher: PodEnricher;
  discovery: NodeDiscovery | null;
  watcher: PodWatcher | null;
  /** which sources are on, for the start line or a log: "file (3 pods), discovery, api (in-cluster service account)" */
  describe(): string;
  /** failed API requests and /proc scans so far: count them with stats.enrichment_failures */
  failures(): number;
  close(): Promise<void>;
}

export async function startPodAttribution(o: PodAttributionOptions): Promise<PodAttribution> {
  const index = new PodIndex(o.indexOptions);
  const parts: string[] = [];
  if (o.podsFile !== undefined) parts.push(`file (${loadPodsFile(o.podsFile, index)} pods)`);

  let target: KubeTarget | null = null;
  if (o.kubeconfig !== undefined) {
    target = kubeconfigTarget(o.kubeconfig, { ...(o.env ? { env: o.env } : {}), ...(o.kubeAllowHttp ? { allowHttp: true } : {}) });
  }
  else if (o.inCluster !== false) {
    target = inClusterTarget({ ...(o.env ? { env: o.env } : {}), ...(o.serviceAccountDir ? { dir: o.serviceAccountDir } : {}) });
  }

  let discovery: NodeDiscovery | null = null;
  if (o.discovery !== false) {
    discovery = new NodeDiscovery(index, { ...(o.rescanMs !== undefined ? { intervalMs: o.rescanMs } : {}), ...o.discoveryOptions });
    parts.push('discovery');
  }

  let watcher: PodWatcher | null = null;
  if (target !== null) {
    const warn = o.warn;
    let failing = false;
    const onStatus = (s: PodWatcherStatus) => {
      if (s.state === 'retrying' && !failing) {
        failing = true;
        warn?.(`kubernetes api (${target!.origin}): ${s.error ?? 'unreachable'}; pods from other sources only, retrying`);
      } else if (s.state === 'synced' && failing) {
        failing = false;
        warn?.(`kubernetes api (${target!.origin}): back`);
      }
      o.watcherOptions?.onStatus?.(s);
    };
    watcher = new PodWatcher(index, target, { ...(o.node !== undefined ? { node: o.node } : {}), ...o.watcherOptions, onStatus });
    parts.push(`api (${target.origin}, node ${watcher.node})`);
  }

  const close = async () => {
    discovery?.close();
    await watcher?.close();
  };
  const enricher = podEnricher(index, { close });
  // Both start at once: the first scan of /proc and the first list overlap.
  watcher?.start();
  await Promise.all([discovery?.start(), watcher?.synced(o.syncTimeoutMs ?? 3000)]);

  return {
    index,
    enricher,
    discovery,
    watcher,
    describe: () => parts.join(', '),
    failures: () => (watcher?.stats.failures ?? 0) + (discovery?.stats.failures ?? 0),
    close,
  };
}

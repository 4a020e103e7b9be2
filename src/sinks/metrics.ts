/**
 * `--metrics [ADDR:]PORT`: the NDJSON stream as Prometheus metrics. `DropMetrics.observe()` is
 * fed every line the stream writes (the same objects), so the two sinks can never disagree;
 * src/sinks/metrics-server.ts serves the registry on /metrics.
 *
 * Cardinality is bounded by construction: flows, addresses and ports never become labels; pods
 * and conntrack netns take one of a fixed number of label slots each, and whatever does not get
 * one is summed into an `_overflow` series instead of growing the exposition.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { Slots } from '../aggregate/slots.js';
import { DroptraceError } from '../errors.js';
import { checkNodeName, defaultNodeName } from './metrics-server.js';
import type { CountersLine, DropEvent, StartLine, StatsLine, StreamLine } from '../pipeline/events.js';
import { CountersMerger } from '../host/counters-merge.js';
import { applyProbeStates } from '../pipeline/late-probes.js';

/** The label value of pods (and namespaces) that found no free label slot. */
export const OVERFLOW = '_overflow';

/** conntrack statistics (columns of /proc/net/stat/nf_conntrack) that mean a packet was refused. */
export const CONNTRACK_STATS = ['drop', 'early_drop', 'insert_failed', 'invalid'] as const;

export interface MetricsOptions {
  /** the `node` label of every series (default: defaultNodeName()) */
  node?: string;
  /** distinct pods with their own label values (default 500); later ones count as `_overflow` */
  podLimit?: number;
  /**
   * A pod that has not dropped anything for this long gives up its slot (its series are removed)
   * when a new pod needs one; 0 keeps slots for the whole run (default 1 hour).
   */
  podIdleMs?: number;
  /** distinct conntrack netns with their own `netns` label value (default 500) */
  netnsLimit?: number;
  /** distinct firewall rules with their own `rule` label value (default 200; idle ones give theirs up like pods) */
  ruleLimit?: number;
  /** also export process_* and nodejs_* metrics (RSS, fds, event loop lag); default true */
  processMetrics?: boolean;
  /** monotonic milliseconds, for pod idleness (tests) */
  nowMs?: () => number;
}

const DEFAULT_POD_LIMIT = 500;
const DEFAULT_POD_IDLE_MS = 3_600_000;
const DEFAULT_NETNS_LIMIT = 500;
const DEFAULT_RULE_LIMIT = 200;

type DropLabels = 'family' | 'kind' | 'reason' | 'namespace' | 'pod';

interface PodSlot {
  namespace: string;
  pod: string;
  /** family, kind, reason of each series this pod has, to remove exactly those on eviction */
  series: Map<string, { family: string; kind: string; reason: string }>;
}

export class DropMetrics {
  readonly registry: Registry;
  /** the `node` label value of every series */
  readonly node: string;
  private readonly nowMs: () => number;
  /** pods with label values of their own; an idle one gives its slot (and its series) up */
  private readonly pods: Slots<PodSlot>;
  /** conntrack netns inodes with a `netns` label value of their own */
  private readonly netnsSlots: Slots<true>;
  /** counters lines back into whole samples (a sample may span several lines) */
  private readonly countersMerge = new CountersMerger();

  private readonly drops: Counter<DropLabels>;
  private readonly probe: Gauge<'probe' | 'hook'>;
  /** the start line's hooks, updated by the stats lines' probes */
  private hooks: Readonly<StartLine['probes']> = [];
  private readonly info: Gauge<'version' | 'kernel' | 'schema'>;
  private readonly podsTracked: Gauge;
  private readonly neighEntries: Gauge<'table'>;
  private readonly neighThresh3: Gauge<'table'>;
  private readonly neighFill: Gauge<'table'>;
  private readonly neighTableFulls: Counter<'table'>;
  private readonly ctMax: Gauge;
  private readonly ctEntries: Gauge<'netns'>;
  private readonly ctFill: Gauge<'netns'>;
  private readonly ctStat: Counter<'netns' | 'stat'>;
  private readonly nicAllowance: Counter<'ifname' | 'netns' | 'counter'>;
  private readonly nicCtAvailable: Gauge<'ifname' | 'netns'>;
  private readonly events: Counter;
  private readonly folded: Counter;
  private readonly unfolded: Counter;
  private readonly lost: Counter<'where'>;
  private readonly decodeErrors: Counter;
  private readonly enrichmentFailures: Counter;
  private readonly countersFailures: Counter;
  private readonly kernelDrops: Counter;
  private readonly observeErrors: Counter;
  private readonly scrapesRefused: Counter;
  /** netfilter_rule drops by the rule named (its comment, else its chain): src/host/rules */
  private readonly ruleDrops: Counter<'rule'>;
  private readonly ruleSlots: Slots<string>;

  constructor(opts: MetricsOptions = {}) {
    this.nowMs = opts.nowMs ?? (() => performance.now());
    this.pods = new Slots<PodSlot>(positiveInt(opts.podLimit ?? DEFAULT_POD_LIMIT, 'pod limit'), opts.podIdleMs ?? DEFAULT_POD_IDLE_MS, (slot) => {
      for (const s of slot.series.values()) this.drops.remove({ ...s, namespace: slot.namespace, pod: slot.pod });
    });
    this.netnsSlots = new Slots<true>(positiveInt(opts.netnsLimit ?? DEFAULT_NETNS_LIMIT, 'netns limit'));
    this.ruleSlots = new Slots<string>(positiveInt(opts.ruleLimit ?? DEFAULT_RULE_LIMIT, 'rule limit'), opts.podIdleMs ?? DEFAULT_POD_IDLE_MS, (rule) =>
      this.ruleDrops.remove({ rule }),
    );
    const r = (this.registry = new Registry());
    // on every series, process metrics and those registered later (conntrack_max) included:
    // alert rules, the dashboard and the fleet view group by `node`
    this.node = checkNodeName(opts.node ?? defaultNodeName());
    r.setDefaultLabels({ node: this.node });
    if (opts.processMetrics !== false) {
      collectDefaultMetrics({ register: r });
      // gauges named like counters (promtool check metrics rejects them), and of no use here
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) r.removeSingleMetric(name);
    }
    const registers = [r];

    this.drops = new Counter({
      name: 'droptrace_drops_total',
      help: 'Packets the kernel dropped, by mechanism (family, kind, kernel drop reason) and the pod they hit ("" when none; "_overflow" past the pod limit).',
      labelNames: ['family', 'kind', 'reason', 'namespace', 'pod'],
      registers,
    });
    this.probe = new Gauge({
      name: 'droptrace_probe_attached',
      help: 'Whether a probe is attached to its kernel hook (1) or not (0: standby or unavailable, see the NDJSON start line for why).',
      labelNames: ['probe', 'hook'],
      registers,
    });
    this.info = new Gauge({
      name: 'droptrace_info',
      help: 'droptrace version, running kernel and NDJSON schema; always 1.',
      labelNames: ['version', 'kernel', 'schema'],
      registers,
    });
    this.podsTracked = new Gauge({
      name: 'droptrace_metrics_pods',
      help: 'Pods that currently have their own label values in droptrace_drops_total (bounded by the pod limit).',
      registers,
    });
    this.neighEntries = new Gauge({ name: 'droptrace_neigh_entries', help: 'Entries in a neighbour table (arp_cache, ndisc_cache).', labelNames: ['table'], registers });
    this.neighThresh3 = new Gauge({
      name: 'droptrace_neigh_gc_thresh3',
      help: 'Hard limit of a neighbour table (net.ipv4/ipv6.neigh.default.gc_thresh3): past it new neighbours fail.',
      labelNames: ['table'],
      registers,
    });
    this.neighFill = new Gauge({ name: 'droptrace_neigh_fill_ratio', help: 'Neighbour table entries / gc_thresh3.', labelNames: ['table'], registers });
    this.neighTableFulls = new Counter({
      name: 'droptrace_neigh_table_fulls_total',
      help: 'Times the kernel found a neighbour table full (table_fulls in /proc/net/stat/<table>).',
      labelNames: ['table'],
      registers,
    });
    // registered once a counters line gives the limit (absent while nf_conntrack is not loaded)
    this.ctMax = new Gauge({ name: 'droptrace_conntrack_max', help: 'Conntrack table limit (net.netfilter.nf_conntrack_max).', registers: [] });
    this.ctEntries = new Gauge({
      name: 'droptrace_conntrack_entries',
      help: 'Conntrack entries per network namespace (inode; "_overflow" sums those past the netns limit). Namespaces with nothing tracked are left out.',
      labelNames: ['netns'],
      registers,
    });
    this.ctFill = new Gauge({
      name: 'droptrace_conntrack_fill_ratio',
      help: 'Conntrack entries / nf_conntrack_max per network namespace ("_overflow": the highest of those past the netns limit).',
      labelNames: ['netns'],
      registers,
    });
    this.ctStat = new Counter({
      name: 'droptrace_conntrack_stat_total',
      help: 'Conntrack refusals per network namespace, from /proc/net/stat/nf_conntrack (drop: table full, early_drop, insert_failed: clash on confirm, invalid).',
      labelNames: ['netns', 'stat'],
      registers,
    });
    this.nicAllowance = new Counter({
      name: 'droptrace_nic_allowance_exceeded_total',
      help: 'Packets a cloud NIC dropped or queued for exceeding an allowance (ethtool -S *_allowance_exceeded); no kernel hook sees these.',
      labelNames: ['ifname', 'netns', 'counter'],
      registers,
    });
    this.nicCtAvailable = new Gauge({
      name: 'droptrace_nic_conntrack_allowance_available',
      help: 'Connections the cloud NIC can still track before conntrack_allowance_exceeded rises (ethtool -S).',
      labelNames: ['ifname', 'netns'],
      registers,
    });
    this.events = new Counter({ name: 'droptrace_events_total', help: 'Detail events delivered from the kernel ring buffer.', registers });
    this.folded = new Counter({ name: 'droptrace_folded_drops_total', help: 'Drops counted in the kernel without a detail event and written as folded lines.', registers });
    this.unfolded = new Counter({
      name: 'droptrace_unfolded_drops_total',
      help: 'Drops the kernel counted that no drop line stands for and never will (key evicted before folded, no lost-key place, undecodable, shed). events + folded + unfolded = kernel drops once the stream has drained.',
      registers,
    });
    this.lost = new Counter({
      name: 'droptrace_events_lost_total',
      help: 'Detail events lost (ring_buffer: the kernel ring was full; userspace: droptrace could not take them in time; stdout: drops in lines a stalled reader never got). The kernel counts stay exact.',
      labelNames: ['where'],
      registers,
    });
    this.decodeErrors = new Counter({ name: 'droptrace_decode_errors_total', help: 'Ring-buffer records that could not be decoded.', registers });
    this.enrichmentFailures = new Counter({
      name: 'droptrace_enrichment_failures_total',
      help: 'Enrichment lookups that failed (pod attribution, DNS question).',
      registers,
    });
    this.countersFailures = new Counter({ name: 'droptrace_counters_failures_total', help: 'Host samples (tables, NIC counters) that failed.', registers });
    this.kernelDrops = new Counter({
      name: 'droptrace_kernel_drops_total',
      help: 'Drops the kernel program counted (exact; equals sum(droptrace_drops_total) once folded lines are written).',
      registers,
    });
    this.observeErrors = new Counter({
      name: 'droptrace_metrics_errors_total',
      help: 'Stream lines the metrics could not take in (malformed); the NDJSON still has them.',
      registers,
    });
    this.ruleDrops = new Counter({
      name: 'droptrace_rule_drops_total',
      help: 'Drops of netfilter_rule lines by the rule named for them: its comment (kube-proxy and CNIs name the Service or NetworkPolicy), else family, table and chain ("_overflow" past the rule limit).',
      labelNames: ['rule'],
      registers,
    });
    this.scrapesRefused = new Counter({
      name: 'droptrace_metrics_scrapes_refused_total',
      help: 'Scrapes of /metrics answered 503 because too many were already waiting for the one render in flight.',
      registers,
    });
  }

  /**
   * Takes one line of the stream. The lines are the pipeline's own (typed, and checked against
   * the JSON Schema in tests), so nothing here checks their shape again; still, a metrics sink
   * must never take the stream down: a line it cannot take in is counted, never thrown.
   */
  observe(line: StreamLine): void {
    try {
      switch (line.type) {
        case 'drop':
          this.drop(line);
          break;
        case 'start':
          this.start(line);
          break;
        case 'stats':
          this.stats(line);
          break;
        case 'counters': {
          // a sample comes as several lines (under 16 KiB each), netns as changes: taken once whole
          const whole = this.countersMerge.add(line);
          if (whole !== null) this.counters(whole);
          break;
        }
      }
    } catch {
      // A metrics sink must never take the stream down; counted, and the line is still in the NDJSON.
      this.observeErrors.inc();
    }
  }

  private drop(ev: DropEvent): void {
    const n = ev.count;
    const slot = ev.pod ? this.podSlot(ev.pod) : null;
    const who = ev.pod ? (slot ?? { namespace: OVERFLOW, pod: OVERFLOW }) : { namespace: '', pod: '' };
    // no reason (kernels before 5.17): an empty label
    const reason = ev.reason ?? '';
    this.drops.inc({ family: ev.family, kind: ev.kind, reason, namespace: who.namespace, pod: who.pod }, n);
    // remembered so that evicting the pod removes exactly its series
    slot?.series.set(`${ev.family}\0${ev.kind}\0${reason}`, { family: ev.family, kind: ev.kind, reason });
    if (ev.rule) {
      const r = ev.rule;
      const name = (r.comment ?? `${r.family} ${r.table} ${r.chain}`).slice(0, 128);
      this.ruleDrops.inc({ rule: this.ruleSlots.take(name, this.nowMs(), () => name) ?? OVERFLOW }, n);
    }
  }

  /**
   * The label slot of a pod, taken or reused; null when every slot is held by a pod that dropped
   * something recently. Namespaces get no slots of their own: with ephemeral namespaces (CI)
   * they grow too, so an overflowed pod is `_overflow` in both labels.
   */
  private podSlot(pod: NonNullable<DropEvent['pod']>): PodSlot | null {
    const slot = this.pods.take(`${pod.namespace}/${pod.name}`, this.nowMs(), () => ({ namespace: pod.namespace, pod: pod.name, series: new Map() }));
    this.podsTracked.set(this.pods.size);
    return slot;
  }

  private start(l: StartLine): void {
    this.hooks = l.probes;
    this.setProbes();
    this.info.reset();
    this.info.set({ version: l.version, kernel: l.kernel, schema: String(l.schema) }, 1);
  }

  /** droptrace_probe_attached from the hooks as they are now */
  private setProbes(): void {
    this.probe.reset();
    for (const p of this.hooks) this.probe.set({ probe: p.probe, hook: p.hook }, p.state === 'attached' ? 1 : 0);
  }

  private stats(l: StatsLine): void {
    if (l.probes) {
      // a probe that waited for its module and attached since (or gave up): the gauge follows
      const hooks = applyProbeStates(this.hooks, l.probes);
      if (hooks !== this.hooks) {
        this.hooks = hooks;
        this.setProbes();
      }
    }
    mirror(this.events, l.events);
    mirror(this.folded, l.folded);
    // absent from streams recorded before it was written: stays 0
    if (l.unfolded !== undefined) mirror(this.unfolded, l.unfolded);
    this.lost.reset();
    this.lost.inc({ where: 'ring_buffer' }, l.lost.ring_buffer);
    this.lost.inc({ where: 'userspace' }, l.lost.userspace);
    // drops in lines a stalled stdout reader never got, where the CLI counts them
    if (l.lost.stdout !== undefined) this.lost.inc({ where: 'stdout' }, l.lost.stdout);
    mirror(this.decodeErrors, l.decode_errors);
    mirror(this.enrichmentFailures, l.enrichment_failures);
    mirror(this.countersFailures, l.counters_failures);
    mirror(this.kernelDrops, l.kernel.drops);
  }

  /** Each counters line replaces the table metrics: they show the latest sample only. */
  private counters(l: CountersLine): void {
    for (const m of [this.neighEntries, this.neighThresh3, this.neighFill]) m.reset();
    this.neighTableFulls.reset();
    for (const t of l.neigh) {
      const labels = { table: t.table };
      this.neighEntries.set(labels, t.entries);
      if (t.gc_thresh3 !== null) this.neighThresh3.set(labels, t.gc_thresh3);
      if (t.fill !== null) this.neighFill.set(labels, t.fill);
      const fulls = t.stats.table_fulls;
      if (fulls !== undefined) this.neighTableFulls.inc(labels, fulls);
    }

    this.ctEntries.reset();
    this.ctFill.reset();
    this.ctStat.reset();
    const ct = l.conntrack;
    // A label-less gauge cannot be empty: without a limit to show it leaves the registry.
    const max = ct?.nf_conntrack_max ?? null;
    const hasMax = max !== null;
    if (hasMax) this.ctMax.set(max);
    const shown = this.registry.getSingleMetric('droptrace_conntrack_max') !== undefined;
    if (hasMax && !shown) this.registry.registerMetric(this.ctMax);
    if (!hasMax && shown) this.registry.removeSingleMetric('droptrace_conntrack_max');
    if (ct) {
      const present = new Set(ct.netns.map((n) => String(n.netns)));
      // A netns that left the line (gone, or idle again) frees its slot for the next one.
      this.netnsSlots.retain((k) => present.has(k));
      for (const n of ct.netns) this.netnsSlots.take(String(n.netns), 0, () => true);
      const over = { any: false, count: 0, fill: 0, stats: new Map<string, number>() };
      for (const n of ct.netns) {
        if (this.netnsSlots.has(String(n.netns))) {
          const labels = { netns: String(n.netns) };
          this.ctEntries.set(labels, n.count);
          if (n.fill !== null) this.ctFill.set(labels, n.fill);
          for (const stat of CONNTRACK_STATS) {
            const v = n.stats[stat];
            if (v !== undefined) this.ctStat.inc({ ...labels, stat }, v);
          }
        } else {
          over.any = true;
          over.count += n.count;
          over.fill = Math.max(over.fill, n.fill ?? 0);
          for (const stat of CONNTRACK_STATS) over.stats.set(stat, (over.stats.get(stat) ?? 0) + (n.stats[stat] ?? 0));
        }
      }
      if (over.any) {
        const labels = { netns: OVERFLOW };
        this.ctEntries.set(labels, over.count);
        this.ctFill.set(labels, over.fill);
        for (const [stat, v] of over.stats) this.ctStat.inc({ ...labels, stat }, v);
      }
    } else {
      this.netnsSlots.clear();
    }

    this.nicAllowance.reset();
    this.nicCtAvailable.reset();
    for (const nic of l.nic) {
      const labels = { ifname: nic.ifname, netns: nic.netns === null ? '' : String(nic.netns) };
      for (const [name, v] of Object.entries(nic.allowance)) {
        if (name === 'conntrack_allowance_available') this.nicCtAvailable.set(labels, v);
        else this.nicAllowance.inc({ ...labels, counter: name }, v);
      }
    }
  }

  /** the metrics server refused a scrape (too many waiting): counted, never silent */
  scrapeRefused(): void {
    this.scrapesRefused.inc();
  }

  /** Pods with their own label values now (tests, TUI). */
  get podCount(): number {
    return this.pods.size;
  }
}

/**
 * Sets a label-less counter to an absolute value read from the kernel or a stats line: those are
 * already cumulative, so the exposition mirrors them instead of adding them up again.
 */
function mirror(c: Counter, v: number): void {
  c.reset();
  c.inc(v);
}

function positiveInt(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 1) throw new DroptraceError('E_METRICS_LIMIT', 'usage', `bad metrics ${what} ${v}: expected a whole number of at least 1`);
  return v;
}

export { checkNodeName, defaultNodeName, parseMetricsAddress, startMetricsServer, StreamHealth } from './metrics-server.js';
export type { Health, MetricsAddress, MetricsServer, MetricsServerOptions } from './metrics-server.js';

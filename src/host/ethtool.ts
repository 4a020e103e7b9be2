/**
 * NIC counters from `ethtool -S <dev>`: whatever the driver exports, including the cloud
 * allowance counters of AWS ENA (packets the provider queued or dropped because the instance
 * went over its bandwidth, packet-rate, connection-tracking or link-local limits). A device
 * without `ethtool -S` support (lo) or without a given counter is simply left out.
 */
import type { HostIo } from './io.js';
import { errnoCode, mapLimit } from './io.js';
import type { NetnsHandle, NetnsScan } from './netns.js';
import { enterArgs, readNetnsProcNet } from './netns.js';

/** The ENA allowance counters: packets shaped or dropped by the provider, never seen by the kernel. */
export const ALLOWANCE_COUNTERS = [
  'bw_in_allowance_exceeded',
  'bw_out_allowance_exceeded',
  'pps_allowance_exceeded',
  'conntrack_allowance_exceeded',
  'linklocal_allowance_exceeded',
] as const;

/** Also reported with the allowance counters, but a level (connections still available), not a count. */
export const ALLOWANCE_GAUGES = ['conntrack_allowance_available'] as const;

/** ethtool -S values that are levels or identifiers, so a rate of them means nothing. */
export const NIC_GAUGES: ReadonlySet<string> = new Set([
  ...ALLOWANCE_GAUGES,
  'peer_ifindex', // veth
  'ena_srd_mode',
  'ena_srd_resource_utilization',
]);

export interface NicReading {
  ifname: string;
  /** Inode of the netns the device lives in; null when that is not known. */
  netns: number | null;
  /** Kernel driver bound to the device (`ena`, `virtio_net` ...); null for virtual devices or when unknown. */
  driver: string | null;
  /** True for software devices (veth, bridge, ifb ...), null when not known (another netns). */
  virtual: boolean | null;
  /** Every `ethtool -S` value, in the driver's order and words. */
  stats: Record<string, number>;
}

export type NicSelection = 'all' | 'physical' | 'none' | readonly string[];

export interface ReadNicsOptions {
  /** Devices of the reader's netns to read; default `all` (every device but lo). */
  nics?: NicSelection;
  /** Also read every device of every other netns (one nsenter + ethtool per device). */
  nicNetns?: boolean;
  /** Commands in flight at once. */
  concurrency?: number;
}

/** `ethtool -S` text to name → value; header lines and anything not `name: integer` are skipped. */
export function parseEthtoolStats(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    // The value is the last field; a name may itself hold a colon.
    const m = /^\s*(\S.*?)\s*:\s*(\d+)\s*$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** Device names from /proc/net/dev (two header lines, then `name: counters`). */
export function parseProcNetDev(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n').slice(2)) {
    const i = line.indexOf(':');
    if (i > 0) out.push(line.slice(0, i).trim());
  }
  return out;
}

/** The allowance counters (and gauge) this device has, in a fixed order. */
export function allowanceOf(stats: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of [...ALLOWANCE_COUNTERS, ...ALLOWANCE_GAUGES]) {
    const v = stats[name];
    if (v !== undefined) out[name] = v;
  }
  return out;
}

export async function readNics(io: HostIo, scan: NetnsScan, opts: ReadNicsOptions, notes: string[]): Promise<NicReading[]> {
  const selection = opts.nics ?? 'all';
  const limit = opts.concurrency ?? 8;
  const missing = new Set<string>();

  // A non-zero exit is a device without `ethtool -S` support or one that just went away.
  const run = async (cmd: string, args: string[]): Promise<string | null> => {
    if (missing.has(cmd)) return null;
    try {
      const r = await io.exec(cmd, args);
      return r.code === 0 ? r.stdout : null;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') missing.add(cmd);
      return null;
    }
  };

  type Job = { ifname: string; h: NetnsHandle | null; driver: string | null; virtual: boolean | null };
  const jobs: Job[] = [];
  const self = scan.netns.find((h) => h.self) ?? null;

  if (selection !== 'none') {
    const devText = await io.readFile('/proc/self/net/dev').catch(() => null);
    for (const ifname of devText === null ? [] : parseProcNetDev(devText)) {
      if (ifname === 'lo') continue;
      if (Array.isArray(selection) && !selection.includes(ifname)) continue;
      const sysfs = await io.readlink(`/sys/class/net/${ifname}`).catch(() => null);
      const virtual = sysfs === null ? null : sysfs.includes('/devices/virtual/');
      if (selection === 'physical' && virtual !== false) continue;
      const drv = await io.readlink(`/sys/class/net/${ifname}/device/driver`).catch(() => null);
      jobs.push({ ifname, h: self, driver: drv === null ? null : (drv.split('/').pop() ?? null), virtual });
    }
  }
  if (opts.nicNetns === true) {
    for (const h of scan.netns) {
      if (h.self) continue;
      const devText = await readNetnsProcNet(io, h, 'dev');
      for (const ifname of devText === null ? [] : parseProcNetDev(devText)) {
        if (ifname !== 'lo') jobs.push({ ifname, h, driver: null, virtual: null });
      }
    }
  }

  const readings = await mapLimit(jobs, limit, async (job): Promise<NicReading | null> => {
    const enter = job.h === null ? null : enterArgs(job.h);
    const text =
      enter === null
        ? await run('ethtool', ['-S', job.ifname])
        : await run('nsenter', [...enter, 'ethtool', '-S', job.ifname]);
    if (text === null) return null;
    const stats = parseEthtoolStats(text);
    if (Object.keys(stats).length === 0) return null;
    return { ifname: job.ifname, netns: job.h?.inode ?? scan.selfInode, driver: job.driver, virtual: job.virtual, stats };
  });
  for (const cmd of missing) notes.push(`nic counters: ${cmd} not found (install ${cmd === 'nsenter' ? 'util-linux' : 'ethtool'})`);
  return readings.filter((r): r is NicReading => r !== null);
}

/**
 * Connection tracking, per netns. Each netns has its own table count and statistics, and
 * `/proc/<pid>/net/stat/nf_conntrack` shows both for the pid's netns: its `entries` column is
 * that netns's nf_conntrack_count (the same number `/proc/sys/net/netfilter/nf_conntrack_count`
 * gives inside it), so no namespace needs entering. The limit, nf_conntrack_max, is one global
 * value (read-only outside the initial netns) that every netns's count is held against.
 */
import type { HostIo } from './io.js';
import { errnoCode, mapLimit } from './io.js';
import type { NetnsHandle, NetnsScan } from './netns.js';
import type { EnteredReads } from './netns.js';
import { readNetnsProcNet } from './netns.js';
import type { ProcStatTable, TableCache } from './proc-stat.js';
import { parseProcStatTable, tableEntries } from './proc-stat.js';

export interface ConntrackNetnsReading {
  netns: NetnsHandle;
  /** nf_conntrack_count of this netns. */
  count: number;
  raw: ProcStatTable;
  /** Monotonic ms the table was read (earlier than the sample for a reused nsenter reading). */
  at: number;
}

export interface ConntrackReading {
  /** nf_conntrack_max, global; null when unreadable. */
  max: number | null;
  netns: ConntrackNetnsReading[];
}

/** Null when the nf_conntrack module is not loaded (nothing to report, not an error). */
export async function readConntrack(
  io: HostIo,
  scan: NetnsScan,
  notes: string[],
  entered?: EnteredReads,
  now = 0,
  /** Parsed tables by netns inode: an unchanged file is not parsed again. */
  tables?: TableCache<number>,
): Promise<ConntrackReading | null> {
  let selfText: string;
  try {
    selfText = await io.readFile('/proc/self/net/stat/nf_conntrack');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    throw err;
  }
  const max = await io
    .readFile('/proc/sys/net/netfilter/nf_conntrack_max')
    .then((t) => (/^\s*\d+\s*$/.test(t) ? Number(t) : null))
    .catch(() => null);

  const readings = await mapLimit(scan.netns, 16, async (h): Promise<ConntrackNetnsReading | null> => {
    // `at` is the sample's start for every table read now, so the sampler can tell them from reused ones
    const got = h.self
      ? { text: selfText, at: now }
      : entered !== undefined && h.pids.length === 0 && h.path !== null
        ? await entered.read(io, h, 'stat/nf_conntrack', now)
        : { text: await readNetnsProcNet(io, h, 'stat/nf_conntrack'), at: now };
    if (got.text === null) return null;
    try {
      const source = `nf_conntrack statistics of netns ${h.inode}`;
      const raw = tables !== undefined ? tables.parse(h.inode, got.text, source) : parseProcStatTable(got.text, source);
      return { netns: h, count: tableEntries(raw) ?? 0, raw, at: got.at };
    } catch (err) {
      notes.push(err instanceof Error ? err.message : String(err));
      return null;
    }
  });
  return { max, netns: readings.filter((r): r is ConntrackNetnsReading => r !== null) };
}

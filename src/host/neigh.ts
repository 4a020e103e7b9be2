/**
 * The neighbour tables (ARP for IPv4, NDISC for IPv6). There is one table per family for the
 * whole machine, shared by every netns; its statistics exist only in the initial netns's
 * /proc/net/stat, and its limits gc_thresh1/2/3 only under the initial netns's
 * /proc/sys/net/ipv{4,6}/neigh/default. A reader in another netns falls back to pid 1's view.
 */
import type { HostIo } from './io.js';
import { errnoCode } from './io.js';
import type { ProcStatTable } from './proc-stat.js';
import { parseProcStatTable, tableEntries } from './proc-stat.js';

export type NeighTableName = 'arp_cache' | 'ndisc_cache';

export const NEIGH_TABLES: readonly { table: NeighTableName; family: 'ipv4' | 'ipv6'; sysctl: string }[] = [
  { table: 'arp_cache', family: 'ipv4', sysctl: '/proc/sys/net/ipv4/neigh/default' },
  { table: 'ndisc_cache', family: 'ipv6', sysctl: '/proc/sys/net/ipv6/neigh/default' },
];

export interface NeighThresholds {
  gcThresh1: number | null;
  gcThresh2: number | null;
  /** The hard limit: at it, a new neighbour fails unless forced GC finds a victim. */
  gcThresh3: number | null;
}

export interface NeighReading extends NeighThresholds {
  table: NeighTableName;
  family: 'ipv4' | 'ipv6';
  entries: number;
  raw: ProcStatTable;
}

/**
 * Reads both tables. A table that is absent (IPv6 disabled) is left out; what could not be
 * read for another reason is said in `notes`.
 */
export async function readNeighTables(io: HostIo, notes: string[]): Promise<NeighReading[]> {
  const out: NeighReading[] = [];
  let thresholds: Map<string, number> | null = null;
  for (const t of NEIGH_TABLES) {
    const text = await readFirst(io, [`/proc/net/stat/${t.table}`, `/proc/1/net/stat/${t.table}`]);
    if (text === null) {
      if (t.table === 'arp_cache') {
        notes.push('neighbour tables: /proc/net/stat/arp_cache is not visible from this netns (run droptrace in the host network namespace)');
      }
      continue;
    }
    const raw = parseProcStatTable(text, `/proc/net/stat/${t.table}`);
    const local = await readThresholds(io, t.sysctl);
    let th = local;
    if (th === null) {
      thresholds ??= await readInitNetnsThresholds(io);
      th = {
        gcThresh1: thresholds.get(`${t.sysctl}/gc_thresh1`) ?? null,
        gcThresh2: thresholds.get(`${t.sysctl}/gc_thresh2`) ?? null,
        gcThresh3: thresholds.get(`${t.sysctl}/gc_thresh3`) ?? null,
      };
      if (th.gcThresh3 === null) {
        notes.push(`neighbour table ${t.table}: gc_thresh1/2/3 are not visible from this netns (run droptrace in the host network namespace)`);
      }
    }
    out.push({ table: t.table, family: t.family, entries: tableEntries(raw) ?? 0, raw, ...th });
  }
  return out;
}

async function readFirst(io: HostIo, paths: readonly string[]): Promise<string | null> {
  for (const p of paths) {
    try {
      return await io.readFile(p);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
  }
  return null;
}

async function readThresholds(io: HostIo, dir: string): Promise<NeighThresholds | null> {
  try {
    const [a, b, c] = await Promise.all([1, 2, 3].map((n) => io.readFile(`${dir}/gc_thresh${n}`)));
    return { gcThresh1: toInt(a), gcThresh2: toInt(b), gcThresh3: toInt(c) };
  } catch {
    // Not in the initial netns: the directory does not exist here.
    return null;
  }
}

/** One nsenter into pid 1's netns for all six values; `grep -H` labels each with its path. */
async function readInitNetnsThresholds(io: HostIo): Promise<Map<string, number>> {
  const paths = NEIGH_TABLES.flatMap((t) => [1, 2, 3].map((n) => `${t.sysctl}/gc_thresh${n}`));
  const out = new Map<string, number>();
  const r = await io.exec('nsenter', ['-t', '1', '-n', 'grep', '-H', '.', ...paths]).catch(() => null);
  for (const line of r?.stdout.split('\n') ?? []) {
    const i = line.lastIndexOf(':');
    const v = toInt(line.slice(i + 1));
    if (i > 0 && v !== null) out.set(line.slice(0, i), v);
  }
  return out;
}

function toInt(text: string | undefined): number | null {
  const v = Number((text ?? '').trim());
  return text !== undefined && text.trim() !== '' && Number.isInteger(v) ? v : null;
}

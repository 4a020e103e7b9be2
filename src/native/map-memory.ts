/**
 * What the BPF maps cost the kernel, by the accounting of kernel/bpf/hashtab.c and arraymap.c
 * (their map_mem_usage, which fdinfo's `memlock` reports): `droptrace check` prints it, and the
 * key map's sizing is stated and tested here. Sizes leave out each map's fixed header (< 1 KiB).
 */
import { readFileSync } from 'node:fs';
import type { MapInfo } from './binding.js';

/** struct htab_elem before its key (hash node, LRU node, hash), on 64-bit kernels */
export const HTAB_ELEM_BYTES = 48;
/** struct bucket: list head and lock */
export const HTAB_BUCKET_BYTES = 16;
/** entries of the per-key counter map (probes/droptrace.bpf.c DT_KEY_ENTRIES) */
export const KEY_ENTRIES = 65536;
/** what the key map may cost, on any machine */
export const KEY_MAP_BUDGET_BYTES = 16 << 20;

const r8 = (n: number) => Math.ceil(n / 8) * 8;
const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

export type MapShape = Pick<MapInfo, 'type' | 'maxEntries' | 'keySize' | 'valueSize'>;

export function isPerCpu(type: string): boolean {
  return type === 'percpu_array' || type === 'percpu_hash' || type === 'lru_percpu_hash';
}

/** Bytes a map of this shape costs with `cpus` possible CPUs (preallocated, as droptrace's are). */
export function mapBytes(m: MapShape, cpus: number): number {
  const n = m.maxEntries;
  switch (m.type) {
    case 'hash':
    case 'lru_hash':
      return n * (HTAB_ELEM_BYTES + r8(m.keySize) + r8(m.valueSize)) + pow2(n) * HTAB_BUCKET_BYTES + 32 * cpus;
    case 'percpu_hash':
    case 'lru_percpu_hash':
      return n * (HTAB_ELEM_BYTES + r8(m.keySize) + 8) + n * cpus * r8(m.valueSize) + pow2(n) * HTAB_BUCKET_BYTES + 32 * cpus;
    case 'percpu_array':
      return n * (8 + cpus * r8(m.valueSize));
    case 'array':
      return n * r8(m.valueSize);
    case 'ringbuf':
      return n;
    default:
      return 0;
  }
}

/** The key map as it is (shared by all CPUs, atomic adds) and as it was (per-CPU values). */
export function keyMapBytes(cpus: number, keySize: number, valueSize: number, entries = KEY_ENTRIES): { shared: number; perCpu: number } {
  const shape = { maxEntries: entries, keySize, valueSize };
  return { shared: mapBytes({ ...shape, type: 'lru_hash' }, cpus), perCpu: mapBytes({ ...shape, type: 'lru_percpu_hash' }, cpus) };
}

/** CPUs the kernel sizes per-CPU maps for (/sys/devices/system/cpu/possible, e.g. "0-127"). */
export function possibleCpus(text = readFileSync('/sys/devices/system/cpu/possible', 'utf8')): number {
  let n = 0;
  for (const part of text.trim().split(',')) {
    const [a, b] = part.split('-').map(Number);
    n += b === undefined ? 1 : b - a! + 1;
  }
  return n;
}

export interface MapMemory {
  cpus: number;
  /** the kernel's own count, summed */
  total: number;
  /** total = fixed + perCpu × cpus, from the maps' shapes */
  fixed: number;
  perCpu: number;
  maps: MapInfo[];
}

export function mapMemory(maps: MapInfo[], cpus: number): MapMemory {
  const total = maps.reduce((s, m) => s + m.memlock, 0);
  const perCpu = maps.filter((m) => isPerCpu(m.type)).reduce((s, m) => s + m.maxEntries * r8(m.valueSize), 0);
  return { cpus, total, perCpu, fixed: total - perCpu * cpus, maps };
}

const mib = (b: number) => `${(b / (1 << 20)).toFixed(1)} MiB`;

export function formatMapMemory(m: MapMemory): string[] {
  const lines = [`maps: ${mib(m.total)} on this machine = ${mib(m.fixed)} + ${(m.perCpu / 1024).toFixed(1)} KiB × ${m.cpus} possible CPUs (kernel's memlock count)`];
  for (const x of [...m.maps].sort((a, b) => b.memlock - a.memlock)) {
    if (x.memlock < 64 << 10) continue;
    const shape = x.type === 'ringbuf' ? `${mib(x.maxEntries)} ring` : `${x.maxEntries} × ${x.keySize} B key + ${x.valueSize} B value${isPerCpu(x.type) ? ' per CPU' : ''}`;
    lines.push(`  ${x.name.padEnd(14)} ${x.type.padEnd(15)} ${shape.padEnd(36)} ${mib(x.memlock)}`);
  }
  const key = m.maps.find((x) => x.name === 'key_counts');
  if (key) {
    lines.push(
      `  key_counts: ${key.maxEntries} × (${HTAB_ELEM_BYTES} + ${r8(key.keySize)} + ${r8(key.valueSize)}) B + ${HTAB_BUCKET_BYTES} B × buckets, shared by all CPUs: the same on any machine (budget ${mib(KEY_MAP_BUDGET_BYTES)})`,
    );
  }
  return lines;
}

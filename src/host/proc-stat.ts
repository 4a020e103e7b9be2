/**
 * `/proc/net/stat/{arp_cache,ndisc_cache,nf_conntrack}`: a header line of column names, then
 * one row of hex numbers per possible CPU. Counters are per CPU and must be summed; the first
 * column, `entries`, is the table's current size and is printed identically on every row.
 */
import { DroptraceError } from '../errors.js';

export interface ProcStatTable {
  /** Column names exactly as the kernel prints them (`table_fulls`, `insert_failed` ...). */
  columns: string[];
  /** One row per CPU, values in column order. */
  rows: number[][];
}

const TWO_32 = 2 ** 32;

export function parseProcStatTable(text: string, source: string): ProcStatTable {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines[0];
  if (header === undefined) throw malformed(source, 'empty file');
  const columns = header.trim().split(/\s+/);
  const rows: number[][] = [];
  for (const line of lines.slice(1)) {
    const cells = line.trim().split(/\s+/);
    if (cells.length !== columns.length) {
      throw malformed(source, `a row has ${cells.length} values for ${columns.length} columns`);
    }
    rows.push(
      cells.map((cell) => {
        if (!/^[0-9a-fA-F]+$/.test(cell)) throw malformed(source, `"${cell}" is not hex`);
        return parseInt(cell, 16);
      }),
    );
  }
  if (rows.length === 0) throw malformed(source, 'no per-cpu rows');
  return { columns, rows };
}

/** `entries` (a gauge, taken from the first row), or null when the table has no such column. */
export function tableEntries(table: ProcStatTable): number | null {
  const i = table.columns.indexOf('entries');
  return i < 0 ? null : (table.rows[0]?.[i] ?? null);
}

/** Totals of tables already summed: a table reused for an unchanged file (TableCache) is summed once. */
const totalsOf = new WeakMap<ProcStatTable, Readonly<Record<string, number>>>();

/**
 * Every column but `entries`, summed over CPUs. The result is shared by every call for the same
 * table object (a table is never changed after parsing): callers must not modify it.
 */
export function tableTotals(table: ProcStatTable): Record<string, number> {
  const kept = totalsOf.get(table);
  if (kept !== undefined) return kept as Record<string, number>;
  const out: Record<string, number> = {};
  table.columns.forEach((name, i) => {
    if (name === 'entries') return;
    out[name] = table.rows.reduce((sum, row) => sum + (row[i] ?? 0), 0);
  });
  totalsOf.set(table, out);
  return out;
}

/**
 * Parsed tables of files read again and again (each netns's `stat/nf_conntrack`, every sample):
 * a file whose text is the same as last time — an idle netns's counters do not move — gives the
 * table parsed then, the same object, so neither the parse nor the sums (tableTotals) nor the
 * increases (counterIncreases, all 0 for one object) are worked out again.
 */
export class TableCache<K> {
  readonly #kept = new Map<K, { text: string; table: ProcStatTable }>();
  /** Parses made so far (the other calls were served from the cache). */
  parses = 0;

  parse(key: K, text: string, source: string): ProcStatTable {
    const kept = this.#kept.get(key);
    if (kept !== undefined && kept.text === text) return kept.table;
    this.parses++;
    // a file that does not parse is not kept: the next call tries again and fails the same way
    const table = parseProcStatTable(text, source);
    this.#kept.set(key, { text, table });
    return table;
  }

  /** Forgets the keys not in `present` (a netns churned away leaves nothing behind). */
  keepOnly(present: ReadonlySet<K>): void {
    for (const key of this.#kept.keys()) if (!present.has(key)) this.#kept.delete(key);
  }

  get size(): number {
    return this.#kept.size;
  }
}

/**
 * Increase of every counter column between two readings of the same table, or null for a
 * column whose increase cannot be known (it went backwards: the namespace or module was
 * recreated). nf_conntrack's per-CPU counters are 32 bits wide and wrap, so a per-CPU drop from
 * the upper half of the 32-bit range is taken as a wrap rather than a reset.
 */
export function counterIncreases(prev: ProcStatTable, cur: ProcStatTable): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  if (prev === cur) {
    // one reading (TableCache gave the unchanged file's table again): nothing moved
    for (const name of cur.columns) if (name !== 'entries') out[name] = 0;
    return out;
  }
  const sameCpus = prev.rows.length === cur.rows.length;
  cur.columns.forEach((name, ci) => {
    if (name === 'entries') return;
    const pi = prev.columns.indexOf(name);
    if (pi < 0) {
      out[name] = null;
      return;
    }
    if (!sameCpus) {
      const d = sum(cur.rows, ci) - sum(prev.rows, pi);
      out[name] = d >= 0 ? d : null;
      return;
    }
    let total = 0;
    for (let r = 0; r < cur.rows.length; r++) {
      const before = prev.rows[r]?.[pi] ?? 0;
      let d = (cur.rows[r]?.[ci] ?? 0) - before;
      if (d < 0) {
        if (before >= TWO_32 / 2 && before < TWO_32) d += TWO_32;
        else {
          total = Number.NaN;
          break;
        }
      }
      total += d;
    }
    out[name] = Number.isNaN(total) ? null : total;
  });
  return out;
}

function sum(rows: number[][], i: number): number {
  return rows.reduce((s, row) => s + (row[i] ?? 0), 0);
}

function malformed(source: string, why: string): DroptraceError {
  return new DroptraceError('host_parse', 'runtime', `cannot parse ${source}: ${why}`, {
    hint: 'the kernel changed its format; please report it with the file attached',
  });
}

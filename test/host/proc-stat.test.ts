import { describe, expect, it } from 'vitest';
import { DroptraceError } from '../../src/errors.js';
import { TableCache, counterIncreases, parseProcStatTable, tableEntries, tableTotals } from '../../src/host/proc-stat.js';
import { fixture } from './fake-io.js';

describe('parseProcStatTable', () => {
  it('reads arp_cache recorded on this machine: header, one hex row per CPU', () => {
    const t = parseProcStatTable(fixture('proc-net-stat-arp_cache-idle.txt'), 'arp_cache');
    expect(t.columns).toEqual([
      'entries', 'allocs', 'destroys', 'hash_grows', 'lookups', 'hits', 'res_failed', 'rcv_probes_mcast',
      'rcv_probes_ucast', 'periodic_gc_runs', 'forced_gc_runs', 'unresolved_discards', 'table_fulls',
    ]);
    expect(t.rows).toEqual([
      [2, 1, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0],
      [2, 1, 0, 0, 3, 3, 0, 0, 0, 0x5b, 0, 0, 0],
    ]);
  });

  it('takes entries once (every row repeats it) and sums the counters over CPUs', () => {
    const t = parseProcStatTable(fixture('proc-net-stat-arp_cache-later.txt'), 'arp_cache');
    expect(tableEntries(t)).toBe(4);
    expect(tableTotals(t)).toMatchInlineSnapshot(`
      {
        "allocs": 794,
        "destroys": 790,
        "forced_gc_runs": 1379,
        "hash_grows": 6,
        "hits": 30,
        "lookups": 3186,
        "periodic_gc_runs": 124,
        "rcv_probes_mcast": 0,
        "rcv_probes_ucast": 0,
        "res_failed": 1024,
        "table_fulls": 1376,
        "unresolved_discards": 0,
      }
    `);
  });

  it('reads nf_conntrack, whose header has double spaces, with every column', () => {
    const t = parseProcStatTable(fixture('proc-net-stat-nf_conntrack-table-full-lab.txt'), 'nf_conntrack');
    expect(tableEntries(t)).toBe(0);
    expect(tableTotals(t)).toEqual({
      clashres: 0, found: 0, new: 0, invalid: 3, ignore: 0, delete: 0, chainlength: 0, insert: 0,
      insert_failed: 0, drop: 15, early_drop: 0, icmp_error: 0, expect_new: 0, expect_create: 0,
      expect_delete: 0, search_restart: 0,
    });
  });

  it('reads the per-netns count from the entries column', () => {
    const t = parseProcStatTable(fixture('proc-pid-net-stat-nf_conntrack-after-connections.txt'), 'nf_conntrack');
    expect(tableEntries(t)).toBe(5);
  });

  it('refuses a row that does not fit the header, saying which file', () => {
    let caught: unknown;
    try {
      parseProcStatTable('entries allocs\n00000001\n', '/proc/net/stat/arp_cache');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DroptraceError);
    expect((caught as DroptraceError).code).toBe('host_parse');
    expect((caught as DroptraceError).message).toBe(
      'cannot parse /proc/net/stat/arp_cache: a row has 1 values for 2 columns',
    );
  });

  it('refuses non-hex values and a header without rows', () => {
    expect(() => parseProcStatTable('entries\nzz\n', 'x')).toThrow('cannot parse x: "zz" is not hex');
    expect(() => parseProcStatTable('entries\n', 'x')).toThrow('cannot parse x: no per-cpu rows');
    expect(() => parseProcStatTable('', 'x')).toThrow('cannot parse x: empty file');
  });
});

describe('counterIncreases', () => {
  it('gives the increase of each counter between two real readings, without entries', () => {
    const before = parseProcStatTable(fixture('proc-net-stat-arp_cache-idle.txt'), 'arp_cache');
    const after = parseProcStatTable(fixture('proc-net-stat-arp_cache-after-lab-overflow.txt'), 'arp_cache');
    expect(counterIncreases(before, after)).toEqual({
      allocs: 777, destroys: 776, hash_grows: 6, lookups: 3114, hits: 9, res_failed: 1024,
      rcv_probes_mcast: 0, rcv_probes_ucast: 0, periodic_gc_runs: 19, forced_gc_runs: 1379,
      unresolved_discards: 0, table_fulls: 1376,
    });
  });

  it('takes a per-CPU drop from the top half of 32 bits as a wrap', () => {
    const before = parseProcStatTable('entries drop\n00000001 fffffff0\n00000001 00000002\n', 'x');
    const after = parseProcStatTable('entries drop\n00000001 00000010\n00000001 00000003\n', 'x');
    expect(counterIncreases(before, after)).toEqual({ drop: 0x20 + 1 });
  });

  it('gives null for a counter that went backwards otherwise (netns or module recreated)', () => {
    const before = parseProcStatTable('entries drop found\n00000001 00000100 00000001\n', 'x');
    const after = parseProcStatTable('entries drop found\n00000001 00000005 00000002\n', 'x');
    expect(counterIncreases(before, after)).toEqual({ drop: null, found: 1 });
  });

  it('compares sums when the number of CPUs changed, and null for a new column', () => {
    const before = parseProcStatTable('entries drop\n00000001 00000004\n', 'x');
    const after = parseProcStatTable('entries drop found\n00000001 00000004 00000001\n00000001 00000003 00000001\n', 'x');
    expect(counterIncreases(before, after)).toEqual({ drop: 3, found: null });
  });
});

describe('TableCache', () => {
  const idle = fixture('proc-net-stat-nf_conntrack-idle.txt');
  const full = fixture('proc-net-stat-nf_conntrack-table-full-lab.txt');

  it('parses a key once while its text stays the same, and again when the text changes', () => {
    const cache = new TableCache<number>();
    const a = cache.parse(7, idle, 'nf_conntrack');
    expect(cache.parse(7, `${idle}`, 'nf_conntrack')).toBe(a);
    expect(cache.parses).toBe(1);
    // another key with the same text is its own entry
    const other = cache.parse(8, idle, 'nf_conntrack');
    expect(other).not.toBe(a);
    expect(other).toEqual(a);
    const b = cache.parse(7, full, 'nf_conntrack');
    expect(b).not.toBe(a);
    expect(b).toEqual(parseProcStatTable(full, 'nf_conntrack'));
    expect(cache.parse(7, full, 'nf_conntrack')).toBe(b);
    expect(cache.parses).toBe(3);
  });

  it('keeps no failed parse and forgets the keys that are gone', () => {
    const cache = new TableCache<number>();
    expect(() => cache.parse(7, 'entries\n', 'nf_conntrack')).toThrow(DroptraceError);
    expect(() => cache.parse(7, 'entries\n', 'nf_conntrack')).toThrow(DroptraceError);
    expect(cache.size).toBe(0);
    cache.parse(7, idle, 'nf_conntrack');
    cache.parse(8, idle, 'nf_conntrack');
    cache.keepOnly(new Set([8]));
    expect(cache.size).toBe(1);
    cache.parse(7, idle, 'nf_conntrack');
    expect(cache.parses).toBe(5);
  });

  it('gives an unchanged table increases of 0 and the same sums as a fresh parse', () => {
    const cache = new TableCache<number>();
    const t = cache.parse(7, full, 'nf_conntrack');
    const inc = counterIncreases(t, cache.parse(7, full, 'nf_conntrack'));
    const fresh = counterIncreases(parseProcStatTable(full, 'x'), parseProcStatTable(full, 'x'));
    expect(inc).toEqual(fresh);
    expect(Object.values(inc).every((v) => v === 0)).toBe(true);
    expect(Object.keys(inc)).not.toContain('entries');
    expect(tableTotals(t)).toBe(tableTotals(t));
    expect(tableTotals(t)).toEqual(tableTotals(parseProcStatTable(full, 'x')));
  });
});

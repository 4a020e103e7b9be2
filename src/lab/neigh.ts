/**
 * neigh-overflow: the neighbour table (arp_cache / ndisc_cache) full at gc_thresh3.
 *
 * The tables and their gc_thresh1/2/3 are global (a namespace has no neigh/default of its
 * own), so the thresholds are lowered for the burst only — tens of milliseconds, at most
 * GLOBAL_WINDOW_MAX_MS — to leave ROOM entries above what the table already holds, and one
 * namespace sends datagrams to ROOM + OVERFLOW distinct on-link addresses. The first ROOM get
 * an INCOMPLETE entry (referenced by its resolution timer, so forced GC cannot evict it); the
 * rest find the table full: neigh_create fails (created=0) and the packet is dropped with
 * NEIGH_CREATEFAIL at ip_finish_output2 / ip6_finish_output2.
 *
 * The same recipe overflows arp_cache (--family 4) every time, measured on 6.18: drops =
 * OVERFLOW minus the entries the table held, in every run. What makes IPv4 reliable is the
 * speed of the burst (600 datagrams in 5-100 ms, non-blocking, SO_SNDBUFFORCE): a slower
 * sender lets entries reach FAILED after 3 s of probes, forced GC evicts those, and the
 * table never reports full (the earlier lab pass saw exactly that, NEIGH_FAILED only).
 *
 * The datagrams that did get an entry wait on it, unanswered, until resolution fails (3 probes,
 * 1 s apart, by default) and neigh_invalidate frees them: the user's own packets behind the
 * overflow. The scenario counts those entries right after the burst (INCOMPLETE, one datagram
 * each) and keeps the namespaces until none is left INCOMPLETE, so every one of those drops
 * happens before the teardown (which would purge them instead).
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { DroptraceError } from '../errors.js';
import { beforeProvoke, observe, readSysctl, runLab, sumStatColumn } from './session.js';
import type { LabSession } from './session.js';
import type { LabOptions, LabResult, Scenario } from './types.js';

/** entries the burst may create before the table is full */
const ROOM = 256;
/** datagrams sent beyond ROOM: each should be a NEIGH_CREATEFAIL drop */
const OVERFLOW = 344;
const DPORT = 9;
/** the longest a queued datagram may wait for its entry to fail (3 s by default), with room for a busy host */
const RESOLUTION_MAX_MS = 30_000;

/** INCOMPLETE entries of one family on a device of a namespace: each holds one datagram of the burst. */
async function incomplete(lab: LabSession, ns: string, family: 4 | 6, dev: string): Promise<number> {
  const out = await lab.ip(ns, [`-${family}`, 'neigh', 'show', 'dev', dev, 'nud', 'incomplete']);
  return out.split('\n').filter((l) => l.trim() !== '').length;
}

/** Entries in a neighbour table now, all namespaces together (first column, hex, any CPU row). */
export function neighEntries(table: 'arp_cache' | 'ndisc_cache'): number {
  const row = readFileSync(`/proc/net/stat/${table}`, 'utf8').split('\n')[1] ?? '';
  return parseInt(row.trim().split(/\s+/)[0] ?? '0', 16);
}

/** Sum of one column of a host-wide /proc/net/stat file (the neighbour tables are global). */
export function statColumn(file: string, column: string): number {
  return sumStatColumn(readFileSync(file, 'utf8'), column);
}

async function run(opts: LabOptions): Promise<LabResult> {
  const family = opts.family ?? 6;
  const ipv = family === 6 ? 'ipv6' : 'ipv4';
  const table = family === 6 ? 'ndisc_cache' : 'arp_cache';
  return runLab('neigh-overflow', opts, async (lab) => {
    const p = await lab.pair();
    if (family === 6) {
      // All targets share one solicited-node group (see 'neigh_burst'); a permanent entry for
      // it is exempt from GC, so the neighbour solicitations never need a new entry and every
      // drop is one of the datagrams (else forced GC evicts the NOARP multicast entry and a
      // solicitation is dropped too)
      await lab.ip(p.a.name, ['-6', 'neigh', 'replace', 'ff02::1:ff00:7', 'lladdr', '33:33:ff:00:00:07', 'dev', p.devA, 'nud', 'permanent']);
    }
    const sender = lab.helper(p.a.name, 'neighbour burst sender', 'neigh_burst', {
      family,
      count: ROOM + OVERFLOW,
      prefix6: 'fd99::',
      base4: '198.18.1.0',
      dport: DPORT,
    });
    await sender.expect('ready');
    await beforeProvoke(lab, opts);

    const entries = neighEntries(table);
    const key = (n: number) => `net.${ipv}.neigh.default.gc_thresh${n}`;
    const old3 = Number(readSysctl(key(3)));
    const thresh3 = entries + ROOM;
    if (thresh3 >= old3) {
      throw new DroptraceError('E_LAB_NEIGH_BUSY', 'runtime', `lab: ${table} already holds ${entries} entries (gc_thresh3 ${old3}); not lowering it further`);
    }
    const fullsBefore = statColumn(`/proc/net/stat/${table}`, 'table_fulls');
    const started = Date.now();
    await lab.changeGlobals({ [key(1)]: Math.floor(thresh3 / 4), [key(2)]: Math.floor(thresh3 / 2), [key(3)]: thresh3 });
    let res: { sent: number; errors: Record<string, number>; ms: number };
    let queued = 0;
    try {
      sender.send('go');
      res = await sender.expectJson('done');
      queued = await incomplete(lab, p.a.name, family, p.devA);
      await lab.holdGlobals(opts.durationMs ?? 0);
    } finally {
      const held = lab.restoreGlobals();
      if (held !== null) lab.notes.push(`global ${ipv} gc_thresh3 ${old3} -> ${thresh3} (table held ${entries}) for ${held} ms`);
    }
    const fulls = statColumn(`/proc/net/stat/${table}`, 'table_fulls') - fullsBefore;
    lab.notes.push(
      `${ROOM + OVERFLOW} datagrams to distinct on-link ${ipv} addresses in ${res.ms} ms: sendto ok ${res.sent}` +
        (Object.keys(res.errors).length ? `, failed ${Object.entries(res.errors).map(([e, n]) => `${n} ${e}`).join(', ')}` : ''),
      `${table} table_fulls +${fulls} (all namespaces)`,
      'forced GC may have evicted idle host neighbour entries while the table was full; they are re-resolved on next use',
    );
    lab.log(`sent ${ROOM + OVERFLOW} datagrams (${res.sent} accepted by sendto), ${table} table_fulls +${fulls}`);
    // the queued datagrams die when their entries fail: wait for that (the kernel's own timers)
    const waitFrom = Date.now();
    let left = queued;
    while (left > 0 && Date.now() - waitFrom < RESOLUTION_MAX_MS) {
      await sleep(100);
      left = await incomplete(lab, p.a.name, family, p.devA);
    }
    if (left > 0) {
      throw new DroptraceError('E_LAB_NEIGH_SLOW', 'runtime', `lab: ${left} neighbour entries still INCOMPLETE ${RESOLUTION_MAX_MS} ms after the burst`);
    }
    lab.notes.push(`${queued} datagrams waited on INCOMPLETE entries; resolution failed for all of them ${Date.now() - waitFrom} ms later (neigh_invalidate)`);
    lab.log(`${queued} datagrams queued for resolution; all resolutions failed`);
    await observe(lab, started, opts.durationMs ?? 0);
    return {
      expect: [
        {
          family: 'neigh',
          kind: 'neigh_table_full',
          reason: 'NEIGH_CREATEFAIL',
          netns: p.a.netns,
          // A lower bound: while the table is held full, any other packet of this namespace
          // that needs a new entry (an MLD report, say) is dropped the same way. IPv6: each
          // dropped datagram was an EINVAL from sendto (ip6_finish_output2). IPv4 reports
          // success; forced GC can free at most the entries the table held before the burst.
          atLeast: Math.max(1, family === 6 ? (res.errors.EINVAL ?? 0) : OVERFLOW - entries),
        },
        {
          // the user's datagrams behind the overflow: freed by neigh_invalidate when their entries
          // failed, IPv6's without a reason (ndisc_error_report), IPv4's with NEIGH_FAILED
          family: 'neigh',
          kind: 'neigh_resolution_failed',
          reason: family === 6 ? 'NOT_SPECIFIED' : 'NEIGH_FAILED',
          location: 'neigh_invalidate',
          netns: p.a.netns,
          count: queued,
        },
      ],
    };
  });
}

export const neighOverflow: Scenario = {
  name: 'neigh-overflow',
  summary: 'neighbour table full: gc_thresh3 lowered globally for the burst (IPv6 by default, --family 4 for ARP), NEIGH_CREATEFAIL',
  run,
};

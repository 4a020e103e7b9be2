import { describe, expect, it } from 'vitest';
import { toCountersLine } from '../../src/host/counters-line.js';
import { HostSampler } from '../../src/host/sampler.js';
import { FakeClock, FakeIo, errno, fixture } from './fake-io.js';

const HOST = 4026531833;
const POD = 4026532320;
const EMPTY = 4026532246;

/** Sets the `entries` column of every row of a recorded /proc/net/stat table (an edited fixture). */
function withEntries(text: string, entries: number): string {
  const [header, ...rows] = text.trimEnd().split('\n');
  const hex = entries.toString(16).padStart(8, '0');
  return [header, ...rows.map((r) => r.replace(/^[0-9a-f]+/, hex))].join('\n') + '\n';
}

/** Adds to some counters of a recorded `ethtool -S` text (an edited fixture). */
function bump(text: string, add: Record<string, number>): string {
  return text.replace(/^(\s*)(\S+): (\d+)$/gm, (line, sp: string, name: string, v: string) =>
    add[name] === undefined ? line : `${sp}${name}: ${Number(v) + add[name]}`,
  );
}

const ok = (stdout: string) => ({ code: 0, stdout, stderr: '' });

/**
 * The recorded machine: the host netns (pid 1), a netns named dtrec with one process (4242), and
 * a named netns without processes (EMPTY), reached with nsenter. NICs: eth0 (virtio_net, this
 * machine's) and ens5 (ENA, hand-written). Then `later()` moves it to its second reading.
 */
function machine() {
  const io = new FakeIo();
  io.dirs.set('/proc', ['1', '4242', 'self']);
  io.links.set('/proc/self/ns/net', `net:[${HOST}]`);
  io.links.set('/proc/1/ns/net', `net:[${HOST}]`);
  io.links.set('/proc/4242/ns/net', `net:[${POD}]`);
  io.files.set('/proc/1/comm', 'systemd\n');
  io.files.set('/proc/4242/comm', 'python3\n');
  io.dirs.set('/run/netns', ['dtlab-t1-b', 'dtrec']);
  io.nsInodes.set('/run/netns/dtrec', POD);
  io.nsInodes.set('/run/netns/dtlab-t1-b', EMPTY);

  io.files.set('/proc/net/stat/arp_cache', fixture('proc-net-stat-arp_cache-idle.txt'));
  io.files.set('/proc/net/stat/ndisc_cache', fixture('proc-net-stat-ndisc_cache-idle.txt'));
  for (const v of ['ipv4', 'ipv6']) {
    io.files.set(`/proc/sys/net/${v}/neigh/default/gc_thresh1`, '128\n');
    io.files.set(`/proc/sys/net/${v}/neigh/default/gc_thresh2`, '512\n');
    io.files.set(`/proc/sys/net/${v}/neigh/default/gc_thresh3`, '1024\n');
  }

  io.files.set('/proc/sys/net/netfilter/nf_conntrack_max', '262144\n');
  io.files.set('/proc/self/net/stat/nf_conntrack', fixture('proc-net-stat-nf_conntrack-idle.txt'));
  io.files.set('/proc/4242/net/stat/nf_conntrack', fixture('proc-pid-net-stat-nf_conntrack-before-connections.txt'));
  const emptyCt = 'nsenter --net=/run/netns/dtlab-t1-b cat /proc/net/stat/nf_conntrack';
  io.commands.set(emptyCt, ok(fixture('proc-net-stat-nf_conntrack-idle.txt')));

  io.files.set('/proc/self/net/dev', 'Inter-|\n face |\n    lo: 0\n  eth0: 0\n  ens5: 0\n');
  io.links.set('/sys/class/net/eth0', '../../devices/pci0000:00/0000:00:03.0/virtio2/net/eth0');
  io.links.set('/sys/class/net/eth0/device/driver', '../../../../bus/virtio/drivers/virtio_net');
  io.links.set('/sys/class/net/ens5', '../../devices/pci0000:00/0000:00:05.0/net/ens5');
  io.links.set('/sys/class/net/ens5/device/driver', '../../../../bus/pci/drivers/ena');
  io.commands.set('ethtool -S eth0', ok(fixture('ethtool-S-virtio_net.txt')));
  io.commands.set('ethtool -S ens5', ok(fixture('ethtool-S-ena-hand-written.txt')));

  const later = () => {
    io.files.set('/proc/net/stat/arp_cache', fixture('proc-net-stat-arp_cache-after-lab-overflow.txt'));
    io.files.set('/proc/net/stat/ndisc_cache', fixture('proc-net-stat-ndisc_cache-after-lab-overflow.txt'));
    io.files.set('/proc/4242/net/stat/nf_conntrack', fixture('proc-pid-net-stat-nf_conntrack-after-connections.txt'));
    // Real readings of two different lab netns, paired here as one netns over time.
    io.commands.set(emptyCt, ok(fixture('proc-net-stat-nf_conntrack-table-full-lab.txt')));
    io.commands.set(
      'ethtool -S ens5',
      ok(bump(fixture('ethtool-S-ena-hand-written.txt'), {
        pps_allowance_exceeded: 12,
        linklocal_allowance_exceeded: 3,
        conntrack_allowance_available: -100,
        queue_0_rx_cnt: 5000,
      })),
    );
  };
  return { io, later };
}

async function twoSamples(setup?: (io: FakeIo) => void) {
  const { io, later } = machine();
  setup?.(io);
  const clock = new FakeClock();
  // the process-less netns (one nsenter each) is read again at every rescan: here each sample
  const sampler = new HostSampler({ io, clock, netnsRescanMs: 10_000, nicEveryMs: 10_000 });
  const first = await sampler.sample();
  clock.advance(10_000);
  later();
  const second = await sampler.sample();
  return { io, first, second };
}

describe('HostSampler', () => {
  it('runs ethtool -S once per nicEveryMs (default 15 s), repeating the counters in between without rates', async () => {
    const { io, later } = machine();
    const clock = new FakeClock();
    const sampler = new HostSampler({ io, clock, netnsRescanMs: 5_000 });
    const ethtools = () => io.execLog.filter((l) => l === 'ethtool -S ens5').length;
    const first = await sampler.sample();
    clock.advance(5_000);
    later();
    const second = await sampler.sample();
    expect(ethtools()).toBe(1);
    const ens5 = (s: typeof first) => s.nics.find((n) => n.ifname === 'ens5');
    expect([ens5(second)?.stats, ens5(second)?.rates]).toEqual([ens5(first)?.stats, null]);
    clock.advance(10_000);
    const third = await sampler.sample();
    expect(ethtools()).toBe(2);
    // the 12 more pps_allowance_exceeded since the reading 15 s ago, over those 15 s
    expect(ens5(third)?.rates?.pps_allowance_exceeded).toBe(12 / 15);
    expect(third.warnings.filter((w) => w.startsWith('ens5 (ena): pps'))).toEqual([
      expect.stringMatching(/^ens5 \(ena\): pps_allowance_exceeded \+12 in the last 15\.0 s: /),
    ]);
  });

  it('reads a process-less netns (a spawn) once per rescan, reusing it in between without a rate', async () => {
    const { io, later } = machine();
    const clock = new FakeClock();
    const sampler = new HostSampler({ io, clock, nics: 'none' });
    const spawns = () => io.execLog.filter((l) => l.startsWith('nsenter --net=/run/netns/dtlab-t1-b')).length;
    await sampler.sample();
    clock.advance(10_000);
    later();
    const second = await sampler.sample();
    expect(spawns()).toBe(1);
    const empty = () => second.conntrack?.netns.find((n) => n.netns === EMPTY);
    expect([empty()?.count, empty()?.rates]).toEqual([0, null]);
    expect(second.conntrack?.netns.find((n) => n.netns === POD)?.rates).not.toBeNull();
    clock.advance(20_000);
    const third = await sampler.sample();
    expect(spawns()).toBe(2);
    const e = third.conntrack?.netns.find((n) => n.netns === EMPTY);
    // the increase since the reading 30 s ago, over those 30 s
    expect(e?.rates).toMatchObject({ drop: 0.5, insert_failed: 0 });
    expect(third.warnings.filter((w) => w.includes('dtlab-t1-b'))[0]).toMatch(/^conntrack of netns 4026532246 \(dtlab-t1-b\) dropped 15 packets in the last 30\.0 s/);
  });

  it('first sample: levels and totals, every rate null, no warnings', async () => {
    const { first } = await twoSamples();
    expect(first.intervalS).toBeNull();
    expect(first.selfNetns).toBe(HOST);
    expect(first.neigh.map((t) => [t.table, t.family, t.entries, t.gcThresh1, t.gcThresh2, t.gcThresh3, t.rates])).toEqual([
      ['arp_cache', 'ipv4', 2, 128, 512, 1024, null],
      ['ndisc_cache', 'ipv6', 4, 128, 512, 1024, null],
    ]);
    expect(first.conntrack?.max).toBe(262144);
    expect(first.conntrack?.netns.map((n) => [n.netns, n.name, n.pid, n.comm, n.self, n.init, n.count, n.rates])).toEqual([
      [HOST, null, 1, 'systemd', true, true, 0, null],
      [EMPTY, 'dtlab-t1-b', null, null, false, false, 0, null],
      [POD, 'dtrec', 4242, 'python3', false, false, 0, null],
    ]);
    expect(first.nics.map((n) => [n.ifname, n.driver, n.virtual, n.rates])).toEqual([
      ['eth0', 'virtio_net', false, null],
      ['ens5', 'ena', false, null],
    ]);
    expect(first.warnings).toEqual([]);
    expect(first.unavailable).toEqual([]);
    expect(first.scan).toEqual({ pids: 2, netns: 3, vanished: 0, denied: 0 });
  });

  it('second sample: per-second rates from the previous one', async () => {
    const { second } = await twoSamples();
    expect(second.intervalS).toBe(10);
    const arp = second.neigh[0];
    expect(arp?.stats.table_fulls).toBe(1376);
    expect(arp?.rates).toEqual({
      allocs: 77.7, destroys: 77.6, hash_grows: 0.6, lookups: 311.4, hits: 0.9, res_failed: 102.4,
      rcv_probes_mcast: 0, rcv_probes_ucast: 0, periodic_gc_runs: 1.9, forced_gc_runs: 137.9,
      unresolved_discards: 0, table_fulls: 137.6,
    });
    const pod = second.conntrack?.netns.find((n) => n.netns === POD);
    expect(pod?.count).toBe(5);
    expect(pod?.fill).toBe(5 / 262144);
    const empty = second.conntrack?.netns.find((n) => n.netns === EMPTY);
    expect(empty?.rates).toMatchObject({ drop: 1.5, invalid: 0.3, insert_failed: 0 });
    const ens5 = second.nics.find((n) => n.ifname === 'ens5');
    expect(ens5?.allowance).toEqual({
      bw_in_allowance_exceeded: 0,
      bw_out_allowance_exceeded: 1482,
      pps_allowance_exceeded: 49,
      conntrack_allowance_exceeded: 5,
      linklocal_allowance_exceeded: 214,
      conntrack_allowance_available: 136712,
    });
    expect(ens5?.rates).toMatchObject({ pps_allowance_exceeded: 1.2, linklocal_allowance_exceeded: 0.3, queue_0_rx_cnt: 500 });
    // a level, not a counter: no rate
    expect(ens5?.rates).not.toHaveProperty('conntrack_allowance_available');
  });

  it('second sample: warnings for what rose, one line each, in an engineer\'s words', async () => {
    const { second } = await twoSamples();
    expect(second.warnings).toEqual([
      'neighbour table arp_cache overflowed 1376 times in the last 10.0 s (table_fulls, gc_thresh3=1024): new neighbours failed (NEIGH_CREATEFAIL)',
      'neighbour table ndisc_cache overflowed 2405 times in the last 10.0 s (table_fulls, gc_thresh3=1024): new neighbours failed (NEIGH_CREATEFAIL)',
      'conntrack of netns 4026532246 (dtlab-t1-b) dropped 15 packets in the last 10.0 s (drop, count 0/262144): table full or insert failed',
      "ens5 (ena): pps_allowance_exceeded +12 in the last 10.0 s: packets queued or dropped by the cloud provider at the instance's packets-per-second limit",
      'ens5 (ena): linklocal_allowance_exceeded +3 in the last 10.0 s: packets to link-local services (DNS resolver, instance metadata, time sync) dropped by the cloud provider at their packets-per-second limit',
    ]);
  });

  it('warns when a table is at 90% of its limit', async () => {
    const { io } = machine();
    io.files.set('/proc/net/stat/arp_cache', withEntries(fixture('proc-net-stat-arp_cache-idle.txt'), 1000));
    io.files.set('/proc/net/stat/ndisc_cache', withEntries(fixture('proc-net-stat-ndisc_cache-idle.txt'), 921)); // 89.9%
    io.files.set('/proc/sys/net/netfilter/nf_conntrack_max', '5\n');
    io.files.set('/proc/4242/net/stat/nf_conntrack', fixture('proc-pid-net-stat-nf_conntrack-after-connections.txt'));
    const s = await new HostSampler({ io, clock: new FakeClock() }).sample();
    expect(s.warnings).toEqual([
      'neighbour table arp_cache at 1000/1024 (98% of gc_thresh3): new neighbours will fail (NEIGH_CREATEFAIL)',
      'conntrack table of netns 4026532320 (dtrec, pid 4242 python3) at 5/5 (100% of nf_conntrack_max): new connections will be dropped (NETFILTER_DROP, "nf_conntrack: table full")',
    ]);
  });

  it('never says 100% before the limit is reached, and honours warnFill', async () => {
    const { io } = machine();
    io.files.set('/proc/net/stat/arp_cache', withEntries(fixture('proc-net-stat-arp_cache-idle.txt'), 1023));
    io.files.set('/proc/net/stat/ndisc_cache', withEntries(fixture('proc-net-stat-ndisc_cache-idle.txt'), 600));
    const s = await new HostSampler({ io, clock: new FakeClock(), warnFill: 0.5 }).sample();
    expect(s.warnings).toEqual([
      'neighbour table arp_cache at 1023/1024 (99% of gc_thresh3): new neighbours will fail (NEIGH_CREATEFAIL)',
      'neighbour table ndisc_cache at 600/1024 (59% of gc_thresh3): new neighbours will fail (NEIGH_CREATEFAIL)',
    ]);
    expect(() => new HostSampler({ io, warnFill: 90 })).toThrow('warnFill must be in (0, 1], got 90');
  });

  it('reports insert clashes and early drops', async () => {
    const { io, later } = machine();
    const clock = new FakeClock();
    const sampler = new HostSampler({ io, clock, nics: 'none', netnsRescanMs: 2_500 });
    await sampler.sample();
    later();
    io.files.set('/proc/4242/net/stat/nf_conntrack', fixture('proc-net-stat-nf_conntrack-insert-clash-lab.txt'));
    io.files.set('/proc/net/stat/arp_cache', fixture('proc-net-stat-arp_cache-idle.txt'));
    io.files.set('/proc/net/stat/ndisc_cache', fixture('proc-net-stat-ndisc_cache-idle.txt'));
    io.commands.set(
      'nsenter --net=/run/netns/dtlab-t1-b cat /proc/net/stat/nf_conntrack',
      ok(fixture('proc-net-stat-nf_conntrack-idle.txt').replace(/^(\S+\s+)((?:\S+\s+){10})00000000/m, '$1$200000007')),
    );
    clock.advance(2_500);
    const s = await sampler.sample();
    expect(s.warnings).toEqual([
      'conntrack of netns 4026532246 (dtlab-t1-b) evicted 7 unreplied connections in the last 2.5 s (early_drop): the table is full',
      'conntrack of netns 4026532320 (dtrec, pid 4242 python3) dropped 1 packet in the last 2.5 s (drop, count 0/262144): table full or insert failed',
      'conntrack of netns 4026532320 (dtrec, pid 4242 python3) failed 1 insert in the last 2.5 s (insert_failed): connections clashed on confirm, the race behind 5 s DNS timeouts',
    ]);
  });

  it('a netns that vanished is simply gone; a new one starts without rates', async () => {
    const { io } = machine();
    const clock = new FakeClock();
    const sampler = new HostSampler({ io, clock, nics: 'none' });
    await sampler.sample();
    // 4242 exits: its netns goes with it; a new pod netns appears
    io.links.delete('/proc/4242/ns/net');
    io.files.delete('/proc/4242/comm');
    io.files.delete('/proc/4242/net/stat/nf_conntrack');
    io.nsInodes.delete('/run/netns/dtrec');
    io.dirs.set('/run/netns', ['dtlab-t1-b']);
    io.dirs.set('/proc', ['1', '4242', '5000', 'self']);
    io.links.set('/proc/5000/ns/net', 'net:[4026532999]');
    io.files.set('/proc/5000/comm', 'pause\n');
    io.files.set('/proc/5000/net/stat/nf_conntrack', fixture('proc-net-stat-nf_conntrack-idle.txt'));
    clock.advance(1_000);
    const s = await sampler.sample();
    // the process-less EMPTY's reading of a second ago is reused (one spawn per rescan): no rate yet
    expect(s.conntrack?.netns.map((n) => [n.netns, n.rates === null])).toEqual([
      [HOST, false],
      [EMPTY, true],
      [4026532999, true],
    ]);
    expect(s.scan).toEqual({ pids: 3, netns: 3, vanished: 1, denied: 0 });
    expect(s.unavailable).toEqual([]);
  });

  it('conntrack module not loaded: conntrack is null, and nothing is said about it', async () => {
    const { io } = machine();
    io.files.delete('/proc/self/net/stat/nf_conntrack');
    const s = await new HostSampler({ io, clock: new FakeClock() }).sample();
    expect(s.conntrack).toBeNull();
    expect(s.unavailable).toEqual([]);
    expect(toCountersLine(s).conntrack).toBeNull();
  });

  it('outside the host netns: neighbour tables through pid 1, thresholds through one nsenter', async () => {
    const { io } = machine();
    for (const t of ['arp_cache', 'ndisc_cache']) {
      io.files.set(`/proc/1/net/stat/${t}`, io.files.get(`/proc/net/stat/${t}`) ?? '');
      io.files.delete(`/proc/net/stat/${t}`);
    }
    for (const v of ['ipv4', 'ipv6']) for (const n of [1, 2, 3]) io.files.delete(`/proc/sys/net/${v}/neigh/default/gc_thresh${n}`);
    const paths = ['ipv4', 'ipv6'].flatMap((v) => [1, 2, 3].map((n) => `/proc/sys/net/${v}/neigh/default/gc_thresh${n}`));
    io.commands.set(
      `nsenter -t 1 -n grep -H . ${paths.join(' ')}`,
      ok(paths.map((p, i) => `${p}:${[128, 512, 1024, 256, 1024, 2048][i]}`).join('\n') + '\n'),
    );
    const s = await new HostSampler({ io, clock: new FakeClock(), nics: 'none' }).sample();
    expect(s.neigh.map((t) => [t.table, t.entries, t.gcThresh1, t.gcThresh2, t.gcThresh3])).toEqual([
      ['arp_cache', 2, 128, 512, 1024],
      ['ndisc_cache', 4, 256, 1024, 2048],
    ]);
    expect(io.execLog.filter((l) => l.startsWith('nsenter -t 1'))).toHaveLength(1);
    expect(s.unavailable).toEqual([]);
  });

  it('says what it could not read, and samples the rest', async () => {
    const { io } = machine();
    for (const t of ['arp_cache', 'ndisc_cache']) io.files.delete(`/proc/net/stat/${t}`);
    io.files.set('/proc/4242/net/stat/nf_conntrack', 'entries drop\n00000001\n');
    io.commands.set('ethtool -S eth0', errno('ENOENT', 'ethtool'));
    io.commands.set('ethtool -S ens5', errno('ENOENT', 'ethtool'));
    const s = await new HostSampler({ io, clock: new FakeClock() }).sample();
    expect(s.neigh).toEqual([]);
    expect(s.conntrack?.netns.map((n) => n.netns)).toEqual([HOST, EMPTY]);
    expect(s.nics).toEqual([]);
    expect(s.unavailable).toEqual([
      'neighbour tables: /proc/net/stat/arp_cache is not visible from this netns (run droptrace in the host network namespace)',
      'cannot parse nf_conntrack statistics of netns 4026532320: a row has 1 values for 2 columns',
      'nic counters: ethtool not found (install ethtool)',
    ]);
  });

  it('says when it may not look at some processes (not root)', async () => {
    const { io } = machine();
    io.links.delete('/proc/4242/ns/net');
    io.failures.set('/proc/4242/ns/net', 'EACCES');
    io.dirs.set('/run/netns', []);
    const s = await new HostSampler({ io, clock: new FakeClock(), nics: 'none' }).sample();
    expect(s.conntrack?.netns.map((n) => n.netns)).toEqual([HOST]);
    expect(s.unavailable).toEqual([
      'netns scan: 1 processes could not be looked at (not root), so their netns may be missing',
    ]);
  });

  it('serialises overlapping calls so rates always compare consecutive samples', async () => {
    const { io } = machine();
    const clock = new FakeClock();
    const sampler = new HostSampler({ io, clock, nics: 'none' });
    const [a, b] = await Promise.all([sampler.sample(), sampler.sample()]);
    expect(a.intervalS).toBeNull();
    // the clock did not move between them: no interval, so no rates rather than a division by zero
    expect(b.intervalS).toBeNull();
    expect(b.neigh[0]?.rates).toBeNull();
  });
});

describe('toCountersLine', () => {
  it('is plain JSON, with the kernel\'s names', async () => {
    const { second } = await twoSamples();
    const line = toCountersLine(second);
    expect(JSON.parse(JSON.stringify(line))).toEqual(line);
    const compact = {
      ...line,
      neigh: line.neigh.map((t) => ({ ...t, stats: { table_fulls: t.stats.table_fulls }, rates: { table_fulls: t.rates?.table_fulls } })),
      conntrack: line.conntrack && {
        ...line.conntrack,
        netns: line.conntrack.netns.map((n) => ({ ...n, stats: { drop: n.stats.drop }, rates: { drop: n.rates?.drop } })),
      },
      nic: line.nic.map((n) => ({
        ...n,
        stats: `${Object.keys(n.stats).length} counters`,
        rates: Object.fromEntries(Object.entries(n.rates ?? {}).filter(([k]) => k.includes('allowance'))),
      })),
      warnings: `${line.warnings.length} warnings`,
    };
    expect(compact).toMatchInlineSnapshot(`
      {
        "conntrack": {
          "gone": [],
          "netns": [
            {
              "comm": null,
              "count": 0,
              "fill": 0,
              "init": false,
              "name": "dtlab-t1-b",
              "netns": 4026532246,
              "pid": null,
              "rates": {
                "drop": 1.5,
              },
              "self": false,
              "stats": {
                "drop": 15,
              },
            },
            {
              "comm": "python3",
              "count": 5,
              "fill": 0.000019,
              "init": false,
              "name": "dtrec",
              "netns": 4026532320,
              "pid": 4242,
              "rates": {
                "drop": 0,
              },
              "self": false,
              "stats": {
                "drop": 0,
              },
            },
          ],
          "netns_idle": 1,
          "netns_total": 3,
          "nf_conntrack_max": 262144,
        },
        "cost_ms": 0,
        "full": true,
        "interval_s": 10,
        "neigh": [
          {
            "entries": 3,
            "family": "ipv4",
            "fill": 0.00293,
            "gc_thresh1": 128,
            "gc_thresh2": 512,
            "gc_thresh3": 1024,
            "rates": {
              "table_fulls": 137.6,
            },
            "stats": {
              "table_fulls": 1376,
            },
            "table": "arp_cache",
          },
          {
            "entries": 9,
            "family": "ipv6",
            "fill": 0.008789,
            "gc_thresh1": 128,
            "gc_thresh2": 512,
            "gc_thresh3": 1024,
            "rates": {
              "table_fulls": 240.5,
            },
            "stats": {
              "table_fulls": 2405,
            },
            "table": "ndisc_cache",
          },
        ],
        "netns_self": 4026531833,
        "nic": [
          {
            "allowance": {},
            "driver": "virtio_net",
            "ifname": "eth0",
            "netns": 4026531833,
            "rates": {},
            "stats": "20 counters",
            "virtual": false,
          },
          {
            "allowance": {
              "bw_in_allowance_exceeded": 0,
              "bw_out_allowance_exceeded": 1482,
              "conntrack_allowance_available": 136712,
              "conntrack_allowance_exceeded": 5,
              "linklocal_allowance_exceeded": 214,
              "pps_allowance_exceeded": 49,
            },
            "driver": "ena",
            "ifname": "ens5",
            "netns": 4026531833,
            "rates": {
              "bw_in_allowance_exceeded": 0,
              "bw_out_allowance_exceeded": 0,
              "conntrack_allowance_exceeded": 0,
              "linklocal_allowance_exceeded": 0.3,
              "pps_allowance_exceeded": 1.2,
            },
            "stats": "93 counters",
            "virtual": false,
          },
        ],
        "part": 1,
        "parts": 1,
        "sample": 1,
        "scan": {
          "denied": 0,
          "netns": 3,
          "pids": 2,
          "vanished": 0,
        },
        "time": "2025-06-01T12:00:10.000Z",
        "type": "counters",
        "unavailable": [],
        "version": 2,
        "warnings": "5 warnings",
      }
    `);
  });

  it('rounds rates, leaves idle netns out unless asked, and has null rates on the first sample', async () => {
    const { first, second } = await twoSamples();
    expect(toCountersLine(first).neigh.every((t) => t.rates === null)).toBe(true);
    expect(toCountersLine(first).interval_s).toBeNull();
    expect(toCountersLine(first).time).toBe('2025-06-01T12:00:00.000Z');
    const line = toCountersLine(second);
    expect(line.conntrack?.netns_total).toBe(3);
    expect(line.conntrack?.netns_idle).toBe(1);
    expect(line.conntrack?.netns.map((n) => n.netns)).toEqual([EMPTY, POD]);
    expect(toCountersLine(second, { includeIdleNetns: true }).conntrack?.netns.map((n) => n.netns)).toEqual([HOST, EMPTY, POD]);
    expect(line.conntrack?.netns.find((n) => n.netns === POD)?.fill).toBe(0.000019);
  });
});

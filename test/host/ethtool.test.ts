import { describe, expect, it } from 'vitest';
import { allowanceOf, parseEthtoolStats, parseProcNetDev, readNics } from '../../src/host/ethtool.js';
import type { NetnsScan } from '../../src/host/netns.js';
import { FakeIo, errno, fixture } from './fake-io.js';

describe('parseEthtoolStats', () => {
  it('reads virtio_net (eth0 of this machine) in the driver order', () => {
    const s = parseEthtoolStats(fixture('ethtool-S-virtio_net.txt'));
    expect(Object.keys(s)).toHaveLength(20);
    expect(Object.keys(s).slice(0, 3)).toEqual(['rx_drops', 'rx_xdp_packets', 'rx_xdp_tx']);
    expect(s.rx_kicks).toBe(721);
    expect(s.tx0_kicks).toBe(1948);
  });

  it('reads a veth, whose first value is the peer ifindex', () => {
    expect(parseEthtoolStats(fixture('ethtool-S-veth-host-side.txt'))).toMatchInlineSnapshot(`
      {
        "peer_ifindex": 2,
        "rx_queue_0_drops": 0,
        "rx_queue_0_xdp_bytes": 6606,
        "rx_queue_0_xdp_drops": 0,
        "rx_queue_0_xdp_packets": 34,
        "rx_queue_0_xdp_redirect": 0,
        "rx_queue_0_xdp_tx": 0,
        "rx_queue_0_xdp_tx_errors": 0,
        "tx_queue_0_xdp_xmit": 0,
        "tx_queue_0_xdp_xmit_errors": 0,
      }
    `);
  });

  it('reads the hand-written ENA output, allowance counters included', () => {
    const s = parseEthtoolStats(fixture('ethtool-S-ena-hand-written.txt'));
    expect(Object.keys(s)).toHaveLength(93);
    expect(allowanceOf(s)).toEqual({
      bw_in_allowance_exceeded: 0,
      bw_out_allowance_exceeded: 1482,
      pps_allowance_exceeded: 37,
      conntrack_allowance_exceeded: 5,
      linklocal_allowance_exceeded: 211,
      conntrack_allowance_available: 136812,
    });
    expect(s.queue_1_rx_cnt).toBe(120055);
    expect(s.ena_admin_q_completed_cmd).toBe(2091);
  });

  it('has no allowance counters on devices that lack them', () => {
    expect(allowanceOf(parseEthtoolStats(fixture('ethtool-S-virtio_net.txt')))).toEqual({});
  });

  it('skips headers and lines that are not name: integer; keeps colons inside names', () => {
    expect(parseEthtoolStats('NIC statistics:\n     a:b: 5\n     weird: n/a\n\n  c : 7\n')).toEqual({ 'a:b': 5, c: 7 });
    expect(parseEthtoolStats('')).toEqual({});
  });
});

describe('parseProcNetDev', () => {
  it('lists the devices of this machine and of a netns', () => {
    expect(parseProcNetDev(fixture('proc-net-dev.txt'))).toEqual(['lo', 'ifb0', 'ifb1', 'eth0']);
    expect(parseProcNetDev(fixture('proc-pid-net-dev.txt'))).toEqual(['lo', 'dtrecb']);
  });
});

describe('readNics', () => {
  const selfOnly: NetnsScan = {
    netns: [{ inode: 4026531833, pids: [1], comm: 'init', name: null, path: null, self: true, init: true }],
    selfInode: 4026531833,
    pids: 1,
    vanished: 0,
    denied: 0,
  };

  function machine(): FakeIo {
    const io = new FakeIo();
    io.files.set('/proc/self/net/dev', fixture('proc-net-dev.txt'));
    io.links.set('/sys/class/net/eth0', '../../devices/pci0000:00/0000:00:03.0/virtio2/net/eth0');
    io.links.set('/sys/class/net/eth0/device/driver', '../../../../bus/virtio/drivers/virtio_net');
    io.links.set('/sys/class/net/ifb0', '../../devices/virtual/net/ifb0');
    io.links.set('/sys/class/net/ifb1', '../../devices/virtual/net/ifb1');
    io.commands.set('ethtool -S eth0', { code: 0, stdout: fixture('ethtool-S-virtio_net.txt'), stderr: '' });
    io.commands.set('ethtool -S ifb0', { code: 0, stdout: fixture('ethtool-S-ifb.txt'), stderr: '' });
    // ifb1 went away between /proc/net/dev and ethtool: simply absent
    io.commands.set('ethtool -S ifb1', { code: 1, stdout: '', stderr: 'netlink error: No such device' });
    io.commands.set('ethtool -S lo', { code: 94, stdout: '', stderr: fixture('ethtool-S-lo.stderr') });
    return io;
  }

  it('reads every device but lo; one that fails is absent, not an error', async () => {
    const io = machine();
    const notes: string[] = [];
    const nics = await readNics(io, selfOnly, {}, notes);
    expect(nics.map((n) => [n.ifname, n.driver, n.virtual, Object.keys(n.stats).length])).toEqual([
      ['ifb0', null, true, 4],
      ['eth0', 'virtio_net', false, 20],
    ]);
    expect(nics.every((n) => n.netns === 4026531833)).toBe(true);
    expect(notes).toEqual([]);
    expect(io.execLog).toEqual(['ethtool -S ifb0', 'ethtool -S ifb1', 'ethtool -S eth0']);
  });

  it('reads only physical devices, or only the named ones, or none', async () => {
    const io = machine();
    expect((await readNics(io, selfOnly, { nics: 'physical' }, [])).map((n) => n.ifname)).toEqual(['eth0']);
    expect((await readNics(io, selfOnly, { nics: ['ifb0'] }, [])).map((n) => n.ifname)).toEqual(['ifb0']);
    expect(await readNics(io, selfOnly, { nics: 'none' }, [])).toEqual([]);
  });

  it('says once that ethtool is missing', async () => {
    const io = machine();
    for (const dev of ['eth0', 'ifb0', 'ifb1']) io.commands.set(`ethtool -S ${dev}`, errno('ENOENT', 'ethtool'));
    const notes: string[] = [];
    expect(await readNics(io, selfOnly, {}, notes)).toEqual([]);
    expect(notes).toEqual(['nic counters: ethtool not found (install ethtool)']);
  });

  it('enters other netns by pid, or by path when no process lives there', async () => {
    const io = machine();
    const scan: NetnsScan = {
      ...selfOnly,
      netns: [
        ...selfOnly.netns,
        { inode: 4026532320, pids: [4242], comm: 'python3', name: 'dtrec', path: '/run/netns/dtrec', self: false, init: false },
        { inode: 4026532400, pids: [], comm: null, name: 'empty', path: '/run/netns/empty', self: false, init: false },
      ],
    };
    io.files.set('/proc/4242/net/dev', fixture('proc-pid-net-dev.txt'));
    io.commands.set('nsenter -t 4242 -n ethtool -S dtrecb', { code: 0, stdout: fixture('ethtool-S-veth-netns-side.txt'), stderr: '' });
    io.commands.set('nsenter --net=/run/netns/empty cat /proc/net/dev', {
      code: 0,
      stdout: 'Inter-|\n face |\n    lo: 0 0\n  dummy0: 0 0\n',
      stderr: '',
    });
    const nics = await readNics(io, scan, { nics: 'none', nicNetns: true }, []);
    expect(nics.map((n) => [n.netns, n.ifname, n.stats.peer_ifindex])).toEqual([[4026532320, 'dtrecb', 6]]);
    expect(io.execLog).toEqual([
      'nsenter --net=/run/netns/empty cat /proc/net/dev',
      'nsenter -t 4242 -n ethtool -S dtrecb',
      'nsenter --net=/run/netns/empty ethtool -S dummy0',
    ]);
  });
});

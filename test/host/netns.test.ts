import { describe, expect, it } from 'vitest';
import { describeNetns, enterArgs, parseNetnsLink, readNetnsProcNet, scanNetns } from '../../src/host/netns.js';
import { FakeIo } from './fake-io.js';

const HOST = 4026531833;
const POD = 4026532320;
const EMPTY = 4026532400;

/** A host with pid 1 and 77 in the host netns, 300 and 301 in a pod netns, 555 exiting mid-scan. */
function machine(): FakeIo {
  const io = new FakeIo();
  io.dirs.set('/proc', ['1', '77', '300', '301', '555', 'self', 'net', 'sys']);
  io.links.set('/proc/self/ns/net', `net:[${HOST}]`);
  io.links.set('/proc/1/ns/net', `net:[${HOST}]`);
  io.links.set('/proc/77/ns/net', `net:[${HOST}]`);
  io.links.set('/proc/300/ns/net', `net:[${POD}]`);
  io.links.set('/proc/301/ns/net', `net:[${POD}]`);
  io.files.set('/proc/1/comm', 'systemd\n');
  io.files.set('/proc/301/comm', 'nginx\n');
  io.dirs.set('/run/netns', ['cni-empty', 'cni-pod', 'stale']);
  io.nsInodes.set('/run/netns/cni-pod', POD);
  io.nsInodes.set('/run/netns/cni-empty', EMPTY);
  io.nsInodes.set('/run/netns/stale', null); // a name whose mount is gone
  return io;
}

describe('scanNetns', () => {
  it('finds one entry per netns inode, named ones without processes included', async () => {
    const scan = await scanNetns(machine());
    expect(scan).toMatchInlineSnapshot(`
      {
        "denied": 0,
        "netns": [
          {
            "comm": "systemd",
            "init": true,
            "inode": 4026531833,
            "name": null,
            "path": null,
            "pids": [
              1,
              77,
            ],
            "self": true,
          },
          {
            "comm": "nginx",
            "init": false,
            "inode": 4026532320,
            "name": "cni-pod",
            "path": "/run/netns/cni-pod",
            "pids": [
              301,
            ],
            "self": false,
          },
          {
            "comm": null,
            "init": false,
            "inode": 4026532400,
            "name": "cni-empty",
            "path": "/run/netns/cni-empty",
            "pids": [],
            "self": false,
          },
        ],
        "pids": 5,
        "selfInode": 4026531833,
        "vanished": 1,
      }
    `);
  });

  it('counts processes it may not look at apart from those that exited', async () => {
    const io = machine();
    io.failures.set('/proc/77/ns/net', 'EACCES');
    io.links.delete('/proc/77/ns/net');
    const scan = await scanNetns(io);
    expect([scan.vanished, scan.denied]).toEqual([1, 1]);
  });

  it('looks only at its own netns when asked not to walk /proc', async () => {
    const io = machine();
    const scan = await scanNetns(io, { all: false });
    expect(scan.netns.map((h) => [h.inode, h.self, h.pids])).toEqual([[HOST, true, []]]);
    expect(scan.pids).toBe(0);
  });

  it('copes with no /run/netns at all', async () => {
    const io = machine();
    io.dirs.delete('/run/netns');
    const scan = await scanNetns(io);
    expect(scan.netns.map((h) => h.inode)).toEqual([HOST, POD]);
  });
});

describe('readNetnsProcNet', () => {
  it('reads through the next process when the first has exited, then through nsenter', async () => {
    const io = machine();
    const scan = await scanNetns(io);
    const pod = scan.netns.find((h) => h.inode === POD);
    const empty = scan.netns.find((h) => h.inode === EMPTY);
    if (!pod || !empty) throw new Error('scan lost a netns');
    io.files.set('/proc/301/net/stat/nf_conntrack', 'pod view');
    expect(await readNetnsProcNet(io, pod, 'stat/nf_conntrack')).toBe('pod view');

    io.commands.set('nsenter --net=/run/netns/cni-empty cat /proc/net/stat/nf_conntrack', { code: 0, stdout: 'empty view', stderr: '' });
    expect(await readNetnsProcNet(io, empty, 'stat/nf_conntrack')).toBe('empty view');

    io.files.delete('/proc/301/net/stat/nf_conntrack');
    io.commands.set('nsenter --net=/run/netns/cni-pod cat /proc/net/stat/nf_conntrack', { code: 1, stdout: '', stderr: 'gone' });
    expect(await readNetnsProcNet(io, pod, 'stat/nf_conntrack')).toBeNull();
  });
});

describe('naming', () => {
  it('parses the ns link and builds nsenter arguments', () => {
    expect(parseNetnsLink('net:[4026531833]\n')).toBe(4026531833);
    expect(parseNetnsLink('mnt:[4026531833]')).toBeNull();
    const base = { inode: POD, comm: null, name: null, path: null, self: false, init: false };
    expect(enterArgs({ ...base, pids: [300] })).toEqual(['-t', '300', '-n']);
    expect(enterArgs({ ...base, pids: [], path: '/run/netns/x' })).toEqual(['--net=/run/netns/x']);
    expect(enterArgs({ ...base, pids: [300], self: true })).toBeNull();
  });

  it('describes a netns the way an engineer looks for it', () => {
    const base = { inode: POD, pids: [] as number[], comm: null, name: null, init: false };
    expect(describeNetns(base)).toBe('netns 4026532320');
    expect(describeNetns({ ...base, pids: [300], comm: 'nginx', name: 'cni-pod' })).toBe('netns 4026532320 (cni-pod, pid 300 nginx)');
    expect(describeNetns({ ...base, inode: HOST, pids: [1], comm: 'systemd', init: true })).toBe('host netns 4026531833 (pid 1 systemd)');
  });
});

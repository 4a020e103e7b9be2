import { describe, expect, it } from 'vitest';
import { NodeDiscovery } from '../../src/enrich/discovery.js';
import { PodIndex } from '../../src/enrich/pod-index.js';
import { ProcWalker, walkProc } from '../../src/host/proc-walk.js';
import { HostSampler } from '../../src/host/sampler.js';
import { FakeClock, FakeIo } from './fake-io.js';

const HOST = 4026531833;
const POD = 4026532320;
const NEW = 4026532999;

/** Counts the readdir calls on /proc: one per walk. */
class CountingIo extends FakeIo {
  procWalks = 0;
  readlinks = 0;
  override async readdir(path: string): Promise<string[]> {
    if (path === '/proc') this.procWalks++;
    return super.readdir(path);
  }
  override async readlink(path: string): Promise<string> {
    this.readlinks++;
    return super.readlink(path);
  }
}

function machine(): CountingIo {
  const io = new CountingIo();
  io.dirs.set('/proc', ['300', '1', '77', 'self', '555']);
  io.links.set('/proc/self/ns/net', `net:[${HOST}]`);
  io.links.set('/proc/1/ns/net', `net:[${HOST}]`);
  io.links.set('/proc/77/ns/net', `net:[${HOST}]`);
  io.links.set('/proc/300/ns/net', `net:[${POD}]`);
  io.failures.set('/proc/555/ns/net', 'EACCES');
  io.files.set('/proc/1/comm', 'systemd\n');
  io.files.set('/proc/300/comm', 'pause\n');
  return io;
}

describe('walkProc', () => {
  it('groups processes by netns, pids ascending, and counts the ones it may not look at', async () => {
    const w = await walkProc(machine(), new FakeClock());
    expect([...w.byInode]).toEqual([
      [HOST, [1, 77]],
      [POD, [300]],
    ]);
    expect([w.selfInode, w.initInode, w.pids, w.vanished, w.denied]).toEqual([HOST, HOST, 4, 0, 1]);
  });
});

describe('ProcWalker', () => {
  it('hands out the last walk to a caller content with its age, walks for one that is not', async () => {
    const io = machine();
    const clock = new FakeClock();
    const walker = new ProcWalker({ io, clock });
    const a = await walker.fresh();
    clock.advance(1_000);
    expect(await walker.get(clock.monotonicMs() - 2_000)).toBe(a);
    expect(io.procWalks).toBe(1);
    const b = await walker.fresh();
    expect(b).not.toBe(a);
    expect(b.startedAt).toBe(a.startedAt + 1_000);
    expect(io.procWalks).toBe(2);
  });

  it('lets concurrent callers share the walk under way, and a failed walk fails only its callers', async () => {
    const io = machine();
    const clock = new FakeClock();
    const walker = new ProcWalker({ io, clock });
    const [x, y] = await Promise.all([walker.fresh(), walker.fresh()]);
    expect(x).toBe(y);
    expect(io.procWalks).toBe(1);
    io.dirs.delete('/proc');
    clock.advance(1);
    await expect(walker.fresh()).rejects.toThrow('ENOENT');
    io.dirs.set('/proc', ['1']);
    clock.advance(1);
    expect((await walker.fresh()).pids).toBe(1);
  });

  it('is the one walk pod discovery and the host sampler both read (issue 14)', async () => {
    const io = machine();
    const clock = new FakeClock();
    const walker = new ProcWalker({ io, clock });
    const sampler = new HostSampler({ io, clock, walker, nics: 'none' });
    const discovery = new NodeDiscovery(new PodIndex(), { io, walker, intervalMs: 0 });
    await sampler.sample();
    expect(io.procWalks).toBe(1);
    // a periodic discovery scan a moment later takes the sampler's walk
    clock.advance(1_000);
    const scan = await discovery.scan({ shared: true });
    expect([scan.pids, scan.netns, scan.hostNetns]).toEqual([4, 2, HOST]);
    expect(io.procWalks).toBe(1);
    // one after a drop from an unknown netns walks again
    await discovery.scan();
    expect(io.procWalks).toBe(2);
    // the sampler's kept set aged out: discovery's walk of a moment ago serves it
    clock.advance(29_000);
    await discovery.scan();
    expect(io.procWalks).toBe(3);
    clock.advance(1_000);
    const snap = await sampler.sample();
    expect(snap.scan).toEqual({ pids: 4, netns: 2, vanished: 0, denied: 1 });
    expect(io.procWalks).toBe(3);
  });
});

describe('ProcWalker on an unchanged node', () => {
  it('hands an older walk to a caller content with some age while /proc lists the same pids', async () => {
    const io = machine();
    const clock = new FakeClock();
    const walker = new ProcWalker({ io, clock });
    const a = await walker.fresh();
    expect(a.pidList).toEqual([1, 77, 300, 555]);
    clock.advance(10_000);
    // one readdir, no readlink: the same walk
    const links = io.readlinks;
    expect(await walker.get(clock.monotonicMs() - 2_000)).toBe(a);
    expect([io.procWalks, io.readlinks - links, walker.walks, walker.unchanged]).toEqual([2, 0, 1, 1]);
    // a caller that needs a walk from now on always gets one, same pids or not
    const b = await walker.fresh();
    expect(b).not.toBe(a);
    expect(b.startedAt).toBe(a.startedAt + 10_000);
    expect([walker.walks, walker.unchanged]).toEqual([2, 1]);
  });

  it('walks when a process came or went, and after unchangedMaxMs whatever the pids', async () => {
    const io = machine();
    const clock = new FakeClock();
    const walker = new ProcWalker({ io, clock, unchangedMaxMs: 30_000 });
    const a = await walker.fresh();
    io.dirs.set('/proc', ['300', '1', '77', 'self', '555', '900']);
    io.links.set('/proc/900/ns/net', `net:[${NEW}]`);
    clock.advance(5_000);
    const b = await walker.get(clock.monotonicMs() - 2_000);
    expect(b).not.toBe(a);
    expect([...b.byInode.keys()].sort()).toEqual([HOST, POD, NEW].sort());
    // the walk read /proc once: the listing of the check is the walk's
    expect([io.procWalks, walker.walks, walker.unchanged]).toEqual([2, 2, 0]);
    io.dirs.set('/proc', ['300', '1', '77', 'self', '555']);
    clock.advance(5_000);
    const c = await walker.get(clock.monotonicMs() - 2_000);
    expect(c.pidList).toEqual([1, 77, 300, 555]);
    expect(c.byInode.has(NEW)).toBe(false);
    // same pids, but the last full walk is more than 30 s old: walk (a pid moved in place)
    io.links.set('/proc/77/ns/net', `net:[${NEW}]`);
    clock.advance(29_000);
    expect(await walker.get(clock.monotonicMs() - 2_000)).toBe(c);
    clock.advance(1_001);
    const d = await walker.get(clock.monotonicMs() - 2_000);
    expect(d.byInode.get(NEW)).toEqual([77]);
    expect([walker.walks, walker.unchanged]).toEqual([4, 1]);
  });

  it('never serves an unchanged walk with unchangedMaxMs 0', async () => {
    const io = machine();
    const clock = new FakeClock();
    const walker = new ProcWalker({ io, clock, unchangedMaxMs: 0 });
    await walker.fresh();
    clock.advance(10_000);
    await walker.get(clock.monotonicMs() - 2_000);
    expect([io.procWalks, walker.walks, walker.unchanged]).toEqual([2, 2, 0]);
  });
});

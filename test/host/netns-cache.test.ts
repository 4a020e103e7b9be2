import { describe, expect, it } from 'vitest';
import { NetnsCache } from '../../src/host/netns-cache.js';
import { scanNetns } from '../../src/host/netns.js';
import { FakeClock, FakeIo } from './fake-io.js';

const HOST = 4026531833;
const POD = 4026532320;
const NEW = 4026532999;
const EMPTY = 4026532246;

function setup() {
  const io = new FakeIo();
  io.dirs.set('/proc', ['1', '4242', 'self']);
  io.links.set('/proc/self/ns/net', `net:[${HOST}]`);
  io.links.set('/proc/1/ns/net', `net:[${HOST}]`);
  io.links.set('/proc/4242/ns/net', `net:[${POD}]`);
  io.files.set('/proc/1/comm', 'systemd\n');
  io.files.set('/proc/4242/comm', 'pause\n');
  io.dirs.set('/run/netns', ['empty']);
  io.nsInodes.set('/run/netns/empty', EMPTY);
  const clock = new FakeClock();
  const cache = new NetnsCache(io, clock, { maxAgeMs: 30_000, walk: () => scanNetns(io) });
  const inodes = async () => (await cache.get()).netns.map((h) => h.inode);
  return { io, clock, cache, inodes };
}

describe('NetnsCache', () => {
  it('keeps the walked set while it is intact, and finds a new netns at the next walk', async () => {
    const { io, clock, cache, inodes } = setup();
    expect(await inodes()).toEqual([HOST, EMPTY, POD]);
    io.dirs.set('/proc', ['1', '4242', '5000', 'self']);
    io.links.set('/proc/5000/ns/net', `net:[${NEW}]`);
    clock.advance(29_999);
    expect(await inodes()).toEqual([HOST, EMPTY, POD]);
    expect(cache.walks).toBe(1);
    clock.advance(1);
    expect(await inodes()).toEqual([HOST, EMPTY, POD, NEW]);
    expect(cache.walks).toBe(2);
  });

  it('walks again at once when a known netns lost its process or a pid moved to another netns', async () => {
    const { io, clock, cache, inodes } = setup();
    await inodes();
    // pid 4242 exited and its number went to a process in another netns
    io.links.set('/proc/4242/ns/net', `net:[${NEW}]`);
    clock.advance(1_000);
    expect(await inodes()).toEqual([HOST, EMPTY, NEW]);
    expect(cache.walks).toBe(2);
    // a process-less named netns unbound
    io.nsInodes.delete('/run/netns/empty');
    io.dirs.set('/run/netns', []);
    clock.advance(1_000);
    expect(await inodes()).toEqual([HOST, NEW]);
    expect(cache.walks).toBe(3);
  });

  it('walks at every use with maxAgeMs 0, and never keeps a failed walk', async () => {
    const io = new FakeIo();
    const clock = new FakeClock();
    let n = 0;
    const cache = new NetnsCache(io, clock, {
      maxAgeMs: 0,
      walk: async () => {
        n++;
        if (n === 2) throw new Error('EMFILE');
        return { netns: [], selfInode: null, pids: 0, vanished: 0, denied: 0 };
      },
    });
    await cache.get();
    await expect(cache.get()).rejects.toThrow('EMFILE');
    await cache.get();
    expect(n).toBe(3);
    expect(cache.walks).toBe(2);
  });
});

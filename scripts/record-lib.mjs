// What the fixture recorders (record-golden.mjs, record-golden-dnat.mjs, record-overlay.mjs)
// share: the built addon, a pair of throw-away namespaces joined by a veth, the capture of
// real ring-buffer records in one of them, and the fixture's JSON with the layout the records
// are in (scripts/gen-record.mjs re-lays them when the layout changes).
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { release } from 'node:os';
import { EVENT_FIELDS, EVENT_SIZE, EVENT_VERSION } from '../dist/src/gen/record.js';

const require = createRequire(import.meta.url);
export const addon = require('../build/Release/droptrace.node');
export const sh = (...a) => execFileSync(a[0], a.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
export const ns = (n, ...a) => sh('ip', 'netns', 'exec', n, ...a);

/**
 * Namespaces A and B joined by veth devices `${dev}a`/`${dev}b`: 198.18.7.1 and fd99::7:1 in A,
 * .2 and ::7:2 in B. Returns B's netns inode and the cleanup (also run first, for a run that died).
 */
export function vethPair(A, B, dev) {
  const cleanup = () => {
    for (const n of [A, B]) try { execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' }); } catch {}
  };
  cleanup();
  try {
    sh('ip', 'netns', 'add', A); sh('ip', 'netns', 'add', B);
    sh('ip', 'link', 'add', `${dev}a`, 'netns', A, 'type', 'veth', 'peer', 'name', `${dev}b`, 'netns', B);
    for (const [n, d, ip, ip6] of [[A, `${dev}a`, '198.18.7.1', 'fd99::7:1'], [B, `${dev}b`, '198.18.7.2', 'fd99::7:2']]) {
      ns(n, 'ip', 'link', 'set', 'lo', 'up');
      ns(n, 'ip', 'addr', 'add', `${ip}/24`, 'dev', d);
      ns(n, 'ip', '-6', 'addr', 'add', `${ip6}/112`, 'dev', d, 'nodad');
      ns(n, 'ip', 'link', 'set', d, 'up');
    }
    return { netnsB: statSync(`/run/netns/${B}`).ino, cleanup };
  } catch (e) {
    cleanup();
    throw e;
  }
}

/**
 * Traces the drops of `netns` while `act` runs and for `ms` after: each record goes to
 * `onRecord` (a view into the batch's buffer, valid during the call).
 */
export async function capture(netns, onRecord, act, ms = 500) {
  const t = new addon.Tracer({ filterNetns: netns });
  t.attach();
  try {
    await new Promise((resolve) => {
      t.start((buf) => {
        for (let o = 0; o < buf.length; ) {
          const size = buf.readUInt16LE(o + EVENT_FIELDS.size[0]);
          onRecord(buf.subarray(o, o + size));
          o += size;
        }
      }, resolve);
      act();
      setTimeout(() => t.stop(), ms);
    });
  } finally {
    t.close();
  }
}

/** The fixture on stdout: the kernel, `extra`'s fields, its reason names, the records (hex) and their layout. */
export function writeFixture(records, extra = {}) {
  const reasons = addon.btfEnum('skb_drop_reason');
  const layout = { version: EVENT_VERSION, size: EVENT_SIZE, fields: EVENT_FIELDS };
  process.stdout.write(JSON.stringify({ kernel: release(), ...extra, reasons, records, layout }, null, 1) + '\n');
}

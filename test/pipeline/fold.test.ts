import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Decoder, recordKey } from '../../src/pipeline/decode.js';
import type { KeyCount, RawDrop } from '../../src/pipeline/decode.js';
import type { DropEvent } from '../../src/pipeline/events.js';
import { Folder } from '../../src/pipeline/fold.js';
import { FIELDS } from '../../src/pipeline/layout.js';

const ev = (kind: string): DropEvent => ({
  type: 'drop',
  time: 't0',
  family: 'netfilter',
  kind,
  reason: 'NETFILTER_DROP',
  location: 'nft_do_chain',
  netns: 1,
  ifname: 'v',
  ifindex: 2,
  flow: { proto: 'udp', src: '198.18.0.1', dst: '198.18.0.2', sport: 1, dport: 2 },
  pod: null,
  count: 3,
  explain: 'e',
  hint: 'h',
  last_time: 't1',
  dns: null,
});
const key = (k: string, count: number, suppressed: number): KeyCount => ({
  key: k,
  reason: 12,
  netns: 1,
  ifindex: 2,
  flowRecord: { monoDeltaNs: 0 } as RawDrop,
  count,
  suppressed,
});

describe('Folder', () => {
  it('writes the growth of each suppressed count once, like the last delivered event', () => {
    const f = new Folder();
    f.delivered('k1', ev('netfilter_rule'));
    const none = () => {
      throw new Error('not needed: a template exists');
    };
    expect(f.reconcile([key('k1', 10, 0)], none, 'now')).toEqual([]);
    const a = f.reconcile([key('k1', 50, 40)], none, 'now1');
    expect(a).toHaveLength(1);
    expect(a[0]).toMatchObject({ kind: 'netfilter_rule', count: 40, folded: true, time: 'now1' });
    expect(a[0]).not.toHaveProperty('last_time');
    expect(a[0]).not.toHaveProperty('dns');
    expect(f.reconcile([key('k1', 50, 40)], none, 'now2')).toEqual([]);
    expect(f.reconcile([key('k1', 57, 47)], none, 'now3').map((e) => e.count)).toEqual([7]);
    expect(f.total).toBe(47);
  });

  it('describes a key no event was delivered for from the key itself', () => {
    const f = new Folder();
    const out = f.reconcile([key('k2', 5, 5)], () => ev('conntrack_table_full'), 'now');
    expect(out.map((e) => [e.kind, e.count])).toEqual([['conntrack_table_full', 5]]);
  });

  it('starts over when the kernel map re-created a key', () => {
    const f = new Folder();
    f.reconcile([key('k3', 100, 100)], () => ev('x'), 'a');
    expect(f.reconcile([key('k3', 4, 4)], () => ev('x'), 'b').map((e) => e.count)).toEqual([4]);
  });

  it('forgets the oldest descriptions past its bound, never what it already folded', () => {
    const f = new Folder(4);
    f.delivered('a', ev('a'));
    f.delivered('b', ev('b')); // a and b move to the older generation
    f.delivered('c', ev('c'));
    f.delivered('d', ev('d')); // c and d replace it: a is forgotten
    expect(f.reconcile([key('a', 1, 1), key('c', 1, 1)], () => ev('described'), 'n').map((e) => e.kind)).toEqual(['described', 'c']);
    // what was folded is remembered for every key the kernel still has
    for (let i = 0; i < 10; i++) f.delivered(`x${i}`, ev('x'));
    expect(f.reconcile([key('a', 3, 3), key('c', 1, 1)], () => ev('described'), 'n').map((e) => e.count)).toEqual([2]);
  });

  it('keeps no fold counts for keys the kernel no longer has', () => {
    const f = new Folder();
    f.reconcile([key('gone', 5, 5)], () => ev('x'), 'a');
    f.reconcile([], () => ev('x'), 'b');
    // the key came back new: its 2 suppressed drops are new drops
    expect(f.reconcile([key('gone', 2, 2)], () => ev('x'), 'c').map((e) => e.count)).toEqual([2]);
  });
});

// A real record (kernel 6.18): UDP to a closed port, netns 4026532457.
const record = Buffer.from((JSON.parse(readFileSync(new URL('../fixtures/golden-6.18.json', import.meta.url), 'utf8')) as { records: string[] }).records[0]!, 'hex');
/** the per-key counter key of a record, as the key map would give it */
const keyOf = (r: Buffer) => recordKey(new Decoder(0n).decode(r).drops[0]!);
const recordKeyName = keyOf(record);
const withRecord = (kind: string) => {
  const f = new Folder(8);
  const delivered = { ...ev(kind), pod: { namespace: 'n', name: 'p', uid: 'u' }, pod_match: 'netns' as const };
  // the record sits inside a larger buffer, as in a ring-buffer batch; its key is read from it
  f.delivered(null, delivered, Buffer.concat([Buffer.alloc(5), record]), 5);
  return f;
};

describe('Folder with records', () => {
  it('rebuilds a description from the record, with the pod enrichment gave the event', () => {
    const f = withRecord('no_socket');
    const seen: RawDrop[] = [];
    const out = f.reconcile([key(recordKeyName, 3, 3)], (raw) => {
      seen.push(raw);
      return { ...ev('rebuilt'), pod: null };
    }, 'now');
    expect(seen.map((d) => [d.src, d.dst, d.sport, d.dport, d.ifname])).toEqual([['198.18.7.1', '198.18.7.2', 41000, 5400, 'dtgvb']]);
    expect(out).toMatchObject([{ kind: 'rebuilt', count: 3, folded: true, pod: { name: 'p' }, pod_match: 'netns' }]);
  });

  it('keeps an event whole when its explanation said sysctl values (those of its time)', () => {
    const f = withRecord('conntrack_table_full');
    const out = f.reconcile([key(recordKeyName, 3, 3)], () => {
      throw new Error('not rebuilt');
    }, 'now');
    expect(out).toMatchObject([{ kind: 'conntrack_table_full', count: 3 }]);
  });

  it('remembers at most its bound of descriptions, however many keys it saw', () => {
    const f = new Folder(8);
    // 10,000 keys: the record with its source port changed
    const names: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      const r = Buffer.from(record);
      r.writeUInt16LE(1000 + i, FIELDS.sport[0]);
      names.push(keyOf(r));
      f.delivered(null, ev('no_socket'), r, 0);
    }
    expect(new Set(names).size).toBe(10_000);
    let fromRecord = 0;
    let fromKey = 0;
    const keys = names.map((n) => key(n, 1, 1));
    f.reconcile(keys, (raw) => {
      if (raw.monoDeltaNs !== 0) fromRecord++;
      else fromKey++;
      return ev('x');
    }, 'now');
    // the last 8 keys at most (two generations of 4), the rest from the keys themselves
    expect(fromRecord).toBeLessThanOrEqual(8);
    expect(fromRecord).toBeGreaterThanOrEqual(4);
    expect(fromRecord + fromKey).toBe(10_000);
  });

  it('finds the key read from a record under the key map\'s string of it, and no other', () => {
    const f = withRecord('no_socket');
    const describe = (raw: RawDrop) => ev(raw.monoDeltaNs !== 0 ? 'from-record' : 'from-key');
    expect(f.reconcile([key('k', 3, 3)], describe, 'now').map((e) => e.kind)).toEqual(['from-key']);
    expect(f.reconcile([key(recordKeyName, 2, 2)], describe, 'now').map((e) => e.kind)).toEqual(['from-record']);
  });

  it('needs the record or the key', () => {
    expect(() => new Folder().delivered(null, ev('x'))).toThrow(TypeError);
  });

  it('hands each folded line over as it is made when given emit', () => {
    const f = new Folder();
    const lines: number[] = [];
    const out = f.reconcile([key('a', 2, 2), key('b', 3, 3)], () => ev('x'), 'now', (e) => lines.push(e.count));
    expect([out, lines]).toEqual([[], [2, 3]]);
  });
});

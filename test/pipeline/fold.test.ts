import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EVENT_FIELDS, KEY_SIZE } from '../../src/gen/record.js';
import { decodeKeys } from '../../src/pipeline/decode.js';
import type { KeyCount, RawDrop } from '../../src/pipeline/decode.js';
import type { DropEvent } from '../../src/pipeline/events.js';
import { Folder } from '../../src/pipeline/fold.js';
import { KEY_ENTRY_SIZE } from '../../src/pipeline/layout.js';

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
/** a key's bytes: a name stands for a `struct dt_key` (no IP header, so no flow) */
const keyBytes = (name: string) => {
  const b = new Uint8Array(KEY_SIZE);
  b.set(Buffer.from(name));
  return b;
};
/** the key-map entry of a key, as the reconcile reads it */
const key = (k: string | Uint8Array, count: number, suppressed: number): KeyCount => {
  const entry = Buffer.alloc(KEY_ENTRY_SIZE);
  entry.set(typeof k === 'string' ? keyBytes(k) : k.subarray(0, KEY_SIZE));
  entry.writeBigUInt64LE(BigInt(count), KEY_SIZE);
  entry.writeBigUInt64LE(BigInt(suppressed), KEY_SIZE + 8);
  return decodeKeys(entry)[0]!;
};

describe('Folder', () => {
  it('writes the growth of each suppressed count once, like the last delivered event', () => {
    const f = new Folder();
    f.delivered(keyBytes('k1'), ev('netfilter_rule'));
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
    f.delivered(keyBytes('a'), ev('a'));
    f.delivered(keyBytes('b'), ev('b')); // a and b move to the older generation
    f.delivered(keyBytes('c'), ev('c'));
    f.delivered(keyBytes('d'), ev('d')); // c and d replace it: a is forgotten
    expect(f.reconcile([key('a', 1, 1), key('c', 1, 1)], () => ev('described'), 'n').map((e) => e.kind)).toEqual(['described', 'c']);
    // what was folded is remembered for every key the kernel still has
    for (let i = 0; i < 10; i++) f.delivered(keyBytes(`x${i}`), ev('x'));
    expect(f.reconcile([key('a', 3, 3), key('c', 1, 1)], () => ev('described'), 'n').map((e) => e.count)).toEqual([2]);
  });

  it('keeps no fold counts for keys the kernel no longer has', () => {
    const f = new Folder();
    f.reconcile([key('gone', 5, 5)], () => ev('x'), 'a');
    f.reconcile([], () => ev('x'), 'b');
    // the key came back new: its 2 suppressed drops are new drops
    expect(f.reconcile([key('gone', 2, 2)], () => ev('x'), 'c').map((e) => e.count)).toEqual([2]);
  });

  // The race of a lone key: the kernel sent its first drops as detail events and counted the
  // rest; a fold that reads the key before those events reach JS has nothing to describe it by.
  it('holds the growth of a key whose own detail event is still in flight for one reconcile', () => {
    const f = new Folder();
    const byKey = () => ev('from the key');
    // count 8, suppressed 5: three detail events were sent, none delivered yet
    expect(f.reconcile([key('lone', 8, 5)], byKey, 'a', undefined, [], true)).toEqual([]);
    f.settle(5);
    expect(f.unfolded).toBe(0);
    // they arrived: the folded line says what they said, with all of the held growth
    f.delivered(keyBytes('lone'), ev('delivered'));
    const out = f.reconcile([key('lone', 9, 6)], byKey, 'b', undefined, [], true);
    expect(out.map((e) => [e.kind, e.count])).toEqual([['delivered', 6]]);
    f.settle(6);
    expect(f.unfolded).toBe(0);
    expect(f.total).toBe(6);
  });

  it('holds a key once only, never one that sent no event, and never at the last reconcile', () => {
    const f = new Folder();
    const byKey = () => ev('from the key');
    expect(f.reconcile([key('lost', 4, 2)], byKey, 'a', undefined, [], true)).toEqual([]);
    // its event never came (the addon lost it): the second reconcile folds it from the key
    expect(f.reconcile([key('lost', 4, 2)], byKey, 'b', undefined, [], true).map((e) => [e.kind, e.count])).toEqual([['from the key', 2]]);
    // every drop of this key was only counted (no detail sent): nothing to wait for
    expect(f.reconcile([key('quiet', 3, 3)], byKey, 'c', undefined, [], true).map((e) => e.count)).toEqual([3]);
    // the last reconcile (defer off) folds everything
    expect(f.reconcile([key('late', 5, 1)], byKey, 'd').map((e) => e.count)).toEqual([1]);
    f.settle(6);
    expect(f.unfolded).toBe(0);
    expect(f.total).toBe(6);
  });
});

// A real record (kernel 6.18): UDP to a closed port, netns 4026532457. Its first KEY_SIZE bytes
// are its per-key counter key, as the key map gives it.
const record = Buffer.from((JSON.parse(readFileSync(new URL('../fixtures/golden-6.18.json', import.meta.url), 'utf8')) as { records: string[] }).records[0]!, 'hex');
const recordFlow = { proto: 'udp', src: '198.18.7.1', dst: '198.18.7.2', sport: 41000, dport: 5400 };
const deliveredWith = (kind: string, more: Partial<DropEvent> = {}): DropEvent => ({
  ...ev(kind),
  flow: recordFlow,
  pod: { namespace: 'n', name: 'p', uid: 'u' },
  pod_match: 'netns',
  ...more,
});
const withRecord = (delivered: DropEvent) => {
  const f = new Folder(8);
  // the record sits inside a larger buffer, as in a ring-buffer batch; its key is read from it
  f.delivered(null, delivered, Buffer.concat([Buffer.alloc(5), record]), 5);
  return f;
};
const notDescribed = () => {
  throw new Error('described again');
};

describe('Folder with records', () => {
  it('says what the delivered event said (pod included) and the flow of its key; describes nothing again', () => {
    const f = withRecord(deliveredWith('no_socket'));
    const out = f.reconcile([key(record, 3, 3)], notDescribed, 'now');
    const { last_time: _l, dns: _d, ...said } = deliveredWith('no_socket');
    expect(out).toEqual([{ ...said, time: 'now', count: 3, folded: true }]);
    expect(Object.keys(out[0]!)).toEqual([...Object.keys(said), 'folded']);
  });

  it('keeps what an explanation said when delivered (the sysctl values of its time)', () => {
    const f = withRecord(deliveredWith('conntrack_table_full', { explain: 'table full at 65536', conntrack: { nf_conntrack_max: 65536 } }));
    expect(f.reconcile([key(record, 3, 3)], notDescribed, 'now')).toMatchObject([{ kind: 'conntrack_table_full', explain: 'table full at 65536', conntrack: { nf_conntrack_max: 65536 }, count: 3 }]);
  });

  it('says what a one-off explanation (a DNS question, a martian) said when delivered, from its kept text; describes nothing again', () => {
    const martian = { kind: 'martian_source', explain: 'martian packet on dtgvb: source 198.18.7.1 cannot be valid there (IP_INVALID_SOURCE). ünïcode', hint: 'find who sends from 198.18.7.1', martian: { kernel_logged: false, rp_filter: 1 } };
    const dns = { dns: { name: 'kube-dns.', type: 'A', id: 1, response: false }, explain: 'DNS query for kube-dns. (A) dropped: a firewall rule', truncated: true as const };
    const long = { kind: 'martian_source', explain: 'x'.repeat(400), hint: 'y'.repeat(200), martian: { kernel_logged: null, rp_filter: null } };
    for (const more of [martian, dns, long]) {
      const f = withRecord(deliveredWith('netfilter_rule', more));
      const out = f.reconcile([key(record, 2, 2)], notDescribed, 'now');
      const { last_time: _l, dns: _d, ...said } = deliveredWith('netfilter_rule', more);
      expect(out).toEqual([{ ...said, time: 'now', count: 2, folded: true }]);
      // (the order of the fields of real lines: the golden lines, test/pipeline/events.test.ts)
      // and again, from the same kept text
      expect(f.reconcile([key(record, 3, 3)], notDescribed, 'later')).toEqual([{ ...said, time: 'later', count: 1, folded: true }]);
    }
  });

  it('gives the flow the shape the event gave it (no ports when the headers were cut short)', () => {
    const f = withRecord(deliveredWith('no_socket', { flow: { proto: 'udp', src: '198.18.7.1', dst: '198.18.7.2' } }));
    expect(f.reconcile([key(record, 1, 1)], notDescribed, 'now')[0]!.flow).toEqual({ proto: 'udp', src: '198.18.7.1', dst: '198.18.7.2' });
    const g = withRecord(deliveredWith('no_socket', { flow: null }));
    expect(g.reconcile([key(record, 1, 1)], notDescribed, 'now')[0]!.flow).toBeNull();
  });

  it('remembers at most its bound of descriptions, however many keys it saw', () => {
    const f = new Folder(8);
    // 10,000 keys: the record with its source port changed
    const records: Buffer[] = [];
    for (let i = 0; i < 10_000; i++) {
      const r = Buffer.from(record);
      r.writeUInt16LE(1000 + i, EVENT_FIELDS.sport[0]);
      records.push(r);
      f.delivered(null, deliveredWith('no_socket'), r, 0);
    }
    let fromKey = 0;
    const out = f.reconcile(records.map((r) => key(r, 1, 1)), (raw: RawDrop) => {
      fromKey++;
      expect(raw.src).toBe('198.18.7.1');
      return ev('x');
    }, 'now');
    // the last 8 keys at most (two generations of 4), the rest from the keys themselves
    const fromDelivered = out.filter((e) => e.kind === 'no_socket');
    expect(fromDelivered.length).toBeLessThanOrEqual(8);
    expect(fromDelivered.length).toBeGreaterThanOrEqual(4);
    expect(fromDelivered.length + fromKey).toBe(10_000);
    expect(fromDelivered.map((e) => e.flow?.sport)).toEqual(records.slice(10_000 - fromDelivered.length).map((r) => r.readUInt16LE(EVENT_FIELDS.sport[0])));
  });

  it("finds the key read from a record under the key map's bytes of it, and no other", () => {
    const f = withRecord(deliveredWith('no_socket'));
    const describe = () => ev('from-key');
    expect(f.reconcile([key('k', 3, 3)], describe, 'now').map((e) => e.kind)).toEqual(['from-key']);
    expect(f.reconcile([key(record, 2, 2)], describe, 'now').map((e) => e.kind)).toEqual(['no_socket']);
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

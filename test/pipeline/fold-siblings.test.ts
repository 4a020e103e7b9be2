/**
 * Folded lines of keys that never had a delivered event (a many-flows flood past the detail
 * budget): described from the key at a sibling's place and on its device, the sibling being a
 * delivered key of the same reason, netns, device, IP version and L4 protocol. Over the golden
 * records, with the real decoder and builder.
 */
import { describe, expect, it } from 'vitest';
import { WallClock } from '../../src/pipeline/clock.js';
import { Decoder, decodeKeys } from '../../src/pipeline/decode.js';
import type { KeyCount } from '../../src/pipeline/decode.js';
import { EventBuilder } from '../../src/pipeline/events.js';
import type { DropEvent, Pod } from '../../src/pipeline/events.js';
import { Folder } from '../../src/pipeline/fold.js';
import { Symbolizer } from '../../src/pipeline/kallsyms.js';
import { FIELDS, KEY_ENTRY_SIZE, KEY_SIZE } from '../../src/pipeline/layout.js';
import { ReasonNames } from '../../src/pipeline/reasons.js';
import { groupHash } from '../../src/pipeline/siblings.js';
import { GOLDEN, GOLDEN_CLOCKS, GOLDEN_RECORDS } from '../helpers/fake-tracer.js';

const kallsyms = ['ffffffff8204908c t __udp4_lib_rcv', 'ffffffff81ff7c0b t ip_rcv_finish_core.constprop.0'].join('\n');
/** golden records: a UDP no_socket at __udp4_lib_rcv, an IP_LOCALNET martian at ip_rcv_finish_core (both on dtgvb) */
const [NO_SOCKET, MARTIAN] = [GOLDEN_RECORDS[0]!, GOLDEN_RECORDS[3]!];
const pod: Pod = { namespace: 'n', name: 'p', uid: 'u' };

function setup(siblingGroups?: number) {
  const builder = new EventBuilder(new ReasonNames(GOLDEN.reasons), new Symbolizer(kallsyms), new WallClock(GOLDEN_CLOCKS), () => null);
  const decoder = new Decoder(GOLDEN_CLOCKS.monotonicNs);
  const folder = new Folder(16384, siblingGroups);
  /** one record delivered as the stream does it: built, enriched (`more`), handed to the folder */
  const deliver = (r: Buffer, more: Partial<DropEvent> = {}): DropEvent => {
    const raws = decoder.decode(r).drops;
    const ev = Object.assign(builder.build(raws[0]!), more);
    folder.delivered(null, ev, r, 0);
    return ev;
  };
  const fold = (keys: KeyCount[]) => folder.reconcile(keys, (raw) => builder.describe(raw), 'now');
  return { folder, deliver, fold };
}

/** `r` with other field values (a sibling key, or another group) */
function variant(r: Buffer, set: Partial<Record<'sport' | 'ifindex' | 'saddr', number | Buffer>>): Buffer {
  const v = Buffer.from(r);
  if (set.sport !== undefined) v.writeUInt16LE(set.sport as number, FIELDS.sport[0]);
  if (set.ifindex !== undefined) v.writeUInt32LE(set.ifindex as number, FIELDS.ifindex[0]);
  if (set.saddr !== undefined) (set.saddr as Buffer).copy(v, FIELDS.saddr[0]);
  return v;
}

/** the key-map entry of a record's key, decoded as the reconcile reads it */
function key(r: Buffer, count: number, suppressed: number): KeyCount {
  const e = Buffer.alloc(KEY_ENTRY_SIZE);
  // a record opens with its key, as the key map holds it
  r.copy(e, 0, 0, KEY_SIZE);
  e.writeBigUInt64LE(BigInt(count), KEY_SIZE);
  e.writeBigUInt64LE(BigInt(suppressed), KEY_SIZE + 8);
  return decodeKeys(e)[0]!;
}

describe('folded lines of keys with no delivered event', () => {
  it("take a sibling's place and device, and keep their own flow, count and time", () => {
    const { deliver, fold } = setup();
    const sibling = deliver(NO_SOCKET, { pod, pod_match: 'netns' });
    expect(sibling).toMatchObject({ kind: 'no_socket', location: '__udp4_lib_rcv', ifname: 'dtgvb' });
    const own = variant(NO_SOCKET, { sport: 777 });
    const [line, ...rest] = fold([key(own, 5, 5)]);
    expect(rest).toEqual([]);
    expect(line).toEqual({
      type: 'drop',
      time: 'now',
      family: sibling.family,
      kind: 'no_socket',
      reason: 'NO_SOCKET',
      location: '__udp4_lib_rcv',
      netns: sibling.netns,
      ifname: 'dtgvb',
      ifindex: sibling.ifindex,
      flow: { ...sibling.flow!, sport: 777 },
      // the netns's pod is every key's of it
      pod,
      count: 5,
      explain: sibling.explain,
      hint: sibling.hint,
      certainty: 'exact',
      pod_match: 'netns',
      folded: true,
    });
  });

  it("do not take a pod the sibling had by its own address", () => {
    const { deliver, fold } = setup();
    deliver(NO_SOCKET, { pod, pod_match: 'src' });
    const [line] = fold([key(variant(NO_SOCKET, { sport: 777 }), 1, 1)]);
    expect(line).toMatchObject({ location: '__udp4_lib_rcv', ifname: 'dtgvb', pod: null });
    expect(line).not.toHaveProperty('pod_match');
  });

  it('do not copy a one-off explanation: classified and explained for their own addresses', () => {
    const { deliver, fold } = setup();
    const sibling = deliver(MARTIAN);
    expect(sibling.kind).toBe('martian_source');
    // the same group from a valid source: IP_LOCALNET then means a loopback destination
    const own = variant(MARTIAN, { saddr: Buffer.from([198, 18, 9, 9]) });
    const [line] = fold([key(own, 2, 2)]);
    expect(line).toMatchObject({ kind: 'martian_destination', location: 'ip_rcv_finish_core', ifname: 'dtgvb', count: 2, folded: true });
    expect(line!.flow!.src).toBe('198.18.9.9');
    expect(line!.explain).not.toBe(sibling.explain);
    expect(line!.explain).toContain(`destination ${sibling.flow!.dst} cannot be valid`);
    expect(line!.explain).toContain('martian packet on dtgvb');
    expect(line!.explain).not.toContain(sibling.flow!.src);
  });

  it('are described from the key alone, as before, when no sibling was delivered', () => {
    const { deliver, fold } = setup();
    deliver(NO_SOCKET);
    // another device: not a sibling
    const [line] = fold([key(variant(NO_SOCKET, { ifindex: 99, sport: 777 }), 1, 1)]);
    expect(line).toMatchObject({ location: '0x0', ifname: '', ifindex: 99, count: 1, folded: true });
  });

  it('still say what their own delivered event said when they had one', () => {
    const { deliver, fold } = setup();
    deliver(NO_SOCKET, { explain: 'its own words' });
    deliver(variant(NO_SOCKET, { sport: 777 }), { explain: 'a sibling' });
    expect(fold([key(NO_SOCKET, 3, 3)]).map((l) => l.explain)).toEqual(['its own words']);
  });

  it('keep at most their bound of sibling groups, the first kept dropped first', () => {
    const { folder, deliver, fold } = setup(4);
    // five groups: five devices
    for (let i = 1; i <= 5; i++) deliver(variant(NO_SOCKET, { ifindex: 100 + i }));
    expect(folder.siblings.size).toBe(4);
    const lines = fold([1, 2, 3, 4, 5].map((i) => key(variant(NO_SOCKET, { ifindex: 100 + i, sport: 777 }), 1, 1)));
    expect(lines.map((l) => [l.ifindex, l.location])).toEqual([
      [101, '0x0'],
      [102, '__udp4_lib_rcv'],
      [103, '__udp4_lib_rcv'],
      [104, '__udp4_lib_rcv'],
      [105, '__udp4_lib_rcv'],
    ]);
    for (let i = 0; i < 10_000; i++) deliver(variant(NO_SOCKET, { ifindex: 1000 + i }));
    expect(folder.siblings.size).toBe(4);
    const last = fold([9996, 9997, 9998, 9999, 0].map((i) => key(variant(NO_SOCKET, { ifindex: 1000 + i, sport: 777 }), 1, 1)));
    expect(last.map((l) => l.location)).toEqual(['__udp4_lib_rcv', '__udp4_lib_rcv', '__udp4_lib_rcv', '__udp4_lib_rcv', '0x0']);
  });

  it('two groups at the same place of the index cost each other their template, never the other groups theirs', () => {
    const { folder, deliver, fold } = setup(4);
    const r0 = NO_SOCKET;
    const [reason, netns, proto] = [r0.readUInt32LE(FIELDS.reason[0]), r0.readUInt32LE(FIELDS.netns[0]), (r0[FIELDS.ip_version[0]]! << 8) | r0[FIELDS.l4_proto[0]]!];
    // 16 places for 4 slots: two devices at places of their own, and two at one place, found by trying
    const place = (ifindex: number) => groupHash(reason, netns, ifindex, proto, 15);
    const others = [201];
    for (let i = 202; others.length < 2; i++) if (place(i) !== place(201)) others.push(i);
    const free = (i: number) => !others.some((o) => place(o) === place(i));
    let c = 300;
    while (!free(c)) c++;
    let d = c + 1;
    while (place(d) !== place(c)) d++;
    const pair = [c, d];
    for (const i of others) deliver(variant(NO_SOCKET, { ifindex: i }));
    for (let n = 0; n < 1000; n++) deliver(variant(NO_SOCKET, { ifindex: pair[n % 2]! }));
    expect(folder.siblings.size).toBe(3);
    const lines = fold([...others, ...pair].map((i) => key(variant(NO_SOCKET, { ifindex: i, sport: 777 }), 1, 1)));
    // the last of the pair delivered holds the place
    expect(lines.map((l) => l.location)).toEqual(['__udp4_lib_rcv', '__udp4_lib_rcv', '0x0', '__udp4_lib_rcv']);
  });
});

/**
 * Drop lines on a kernel without drop reasons (5.10-5.16): the golden records with the place in
 * the key's reason (probes/droptrace.h, DT_REASON_LOCATION_BIT), as that kernel's program
 * writes them, through the real EventBuilder and the key-map decoder.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CT_FLAG, MARTIAN_FLAG } from '../../src/gen/record.js';
import { WallClock } from '../../src/pipeline/clock.js';
import { Decoder, decodeKeys } from '../../src/pipeline/decode.js';
import { EventBuilder } from '../../src/pipeline/events.js';
import { Symbolizer } from '../../src/pipeline/kallsyms.js';
import { FIELDS, KEY_ENTRY_SIZE, KEY_SIZE } from '../../src/pipeline/layout.js';
import { ReasonNames } from '../../src/pipeline/reasons.js';

const golden = JSON.parse(readFileSync(new URL('../fixtures/golden-6.18.json', import.meta.url), 'utf8')) as { records: string[] };
const records = golden.records.map((h) => Buffer.from(h, 'hex'));
const kallsyms = [
  'ffffffff8204908c t __udp4_lib_rcv',
  'ffffffff81a00000 T nf_hook_slow',
  'ffffffff81ff7c0b t ip_rcv_finish_core.constprop.0',
].join('\n');

function setup() {
  const clock = new WallClock({ monotonicNs: 2_399_000_000_000n, realtimeNs: 1_795_510_937_000_000_000n });
  const builder = new EventBuilder(ReasonNames.none(), new Symbolizer(kallsyms), clock, () => null);
  return { builder, decoder: new Decoder(clock.monoBaseNs) };
}

/** The first golden IPv4 record, as 5.10 would send it for a drop at `location`. */
function at(location: bigint, ctFlags = 0, martianConf = 0): Buffer {
  const r = Buffer.from(records.find((b) => b[FIELDS.flags[0]]! & 1)!);
  r.writeBigUInt64LE(location, FIELDS.location[0]);
  r.writeUInt32LE((Number(location & 0xffffffffn) | 0x80000000) >>> 0, FIELDS.reason[0]);
  r[FIELDS.ct_flags[0]] = ctFlags;
  r[FIELDS.martian_conf[0]] = martianConf;
  r[FIELDS.payload_len[0]] = 0;
  r[FIELDS.payload_len[0] + 1] = 0;
  r[FIELDS.neigh_family[0]] = 0;
  return r;
}

describe('drop lines without drop reasons', () => {
  it('have reason null, the kind of the place, a certainty and the evidence', () => {
    const { builder, decoder } = setup();
    const recs = [
      at(0xffffffff81a00040n, CT_FLAG.ACTIVE),
      at(0xffffffff81a00040n, CT_FLAG.ACTIVE | CT_FLAG.DROP_ROSE),
      at(0xffffffff81ff7c40n, 0, MARTIAN_FLAG.KNOWN | MARTIAN_FLAG.ROUTE_EXDEV | MARTIAN_FLAG.SOURCE_SEEN),
      at(0xffffffff820490a0n),
    ];
    const lines = decoder.decode(Buffer.concat(recs)).drops.map((d) => builder.build(d));
    expect(lines.map((l) => [l.reason, l.location, l.family, l.kind, l.certainty])).toEqual([
      [null, 'nf_hook_slow', 'netfilter', 'netfilter_rule', 'likely'],
      [null, 'nf_hook_slow', 'conntrack', 'conntrack_table_full', 'likely'],
      [null, 'ip_rcv_finish_core', 'martian', 'rp_filter', 'exact'],
      [null, '__udp4_lib_rcv', 'other', 'no_socket', 'possible'],
    ]);
    expect(lines[2]!.evidence).toContain('ip_route_input_noref returned -EXDEV (reverse-path check failed)');
    expect(lines[3]!.explain).toBe('the kernel dropped the packet in __udp4_lib_rcv (no socket, going by the place); this kernel gives no drop reason');
  });

  it('keep the place of a key counted without detail (the key holds its low 32 bits)', () => {
    const e = Buffer.alloc(KEY_ENTRY_SIZE);
    at(0xffffffff820490a0n).copy(e, 0, 0, KEY_SIZE);
    e.writeBigUInt64LE(3n, KEY_SIZE);
    e.writeBigUInt64LE(3n, KEY_SIZE + 8);
    const [k] = decodeKeys(e);
    const d = k!.flowRecord;
    expect([d.location, d.locationLow]).toEqual([0xffffffff820490a0n, 0x820490a0 | 0]);
    const { builder } = setup();
    const line = builder.describe(d);
    expect([line.reason, line.location, line.kind]).toEqual([null, '__udp4_lib_rcv', 'no_socket']);
  });
});

/** stream --filter: what the gate writes, and how the excluded drops stay counted. */
import { ruleDropLine, statsLineOf } from '../../helpers/lines.js';
import { describe, expect, it } from 'vitest';
import { compileFilter, FilterGate } from '../../../src/pipeline/filter/index.js';
import type { DropEvent, StartLine, StatsLine, StreamLine } from '../../../src/pipeline/events.js';

const drop = (kind: string, dport: number, count = 1, extra: Partial<DropEvent> = {}): DropEvent =>
  ruleDropLine({
    family: kind === 'netfilter_rule' ? 'netfilter' : 'other',
    kind,
    reason: kind === 'netfilter_rule' ? 'NETFILTER_DROP' : 'NO_SOCKET',
    location: 'nf_hook_slow',
    netns: 4026532123,
    ifname: 'dvb1',
    flow: { proto: 'udp', src: '198.18.7.1', dst: '198.18.7.2', sport: 40001, dport },
    count,
    explain: '',
    hint: '',
    ...extra,
  });
const start: StartLine = { type: 'start', schema: 1, time: 't', version: 'v', node: 'n', kernel: 'k', filter: { netns: null }, probes: [], attribution: 'none' };
const stats = (final: boolean): StatsLine => statsLineOf({ final });

describe('FilterGate', () => {
  it('writes the matching drop lines, counts the drops of the others (folded counts whole), and says so', () => {
    const out: StreamLine[] = [];
    const g = new FilterGate(compileFilter('kind=netfilter_rule and port=5301'), (l) => out.push(l));
    const lines: StreamLine[] = [
      start,
      drop('netfilter_rule', 5301),
      drop('no_socket', 5302),
      stats(false),
      drop('netfilter_rule', 5302, 40, { folded: true }),
      drop('netfilter_rule', 5301, 7, { folded: true }),
      drop('no_socket', 5301, 3, { folded: true }),
      stats(true),
    ];
    for (const l of lines) g.emit(l);
    expect(out.map((l) => (l.type === 'drop' ? `${l.kind}:${l.flow?.dport}x${l.count}` : l.type === 'stats' ? `stats ${l.filtered}` : l.type === 'start' ? `start ${l.filter.expr}` : l.type))).toEqual([
      'start kind=netfilter_rule and port=5301',
      'netfilter_rule:5301x1',
      'stats 1',
      'netfilter_rule:5301x7',
      'stats 44',
    ]);
    expect(g.excluded).toBe(44);
    // the lines it passed on are the pipeline's own objects; stats and start are copies
    expect(out[1]).toBe(lines[1]);
    expect(lines[3]).not.toHaveProperty('filtered');
  });

  it('sees pods and DNS names as enrichment left them', () => {
    const out: StreamLine[] = [];
    const g = new FilterGate(compileFilter('pod=web-* or dns=*.svc.cluster.local'), (l) => out.push(l));
    g.emit(drop('netfilter_rule', 80, 1, { pod: { namespace: 'shop', name: 'web-1', uid: 'u' } }));
    g.emit(drop('netfilter_rule', 53, 1, { dns: { name: 'kube-dns.kube-system.svc.cluster.local.', type: 'A', id: 1, response: false } }));
    g.emit(drop('netfilter_rule', 53, 1, { dns: { name: 'example.com.', type: 'A', id: 2, response: false } }));
    expect(out.map((l) => (l as DropEvent).flow?.dport)).toEqual([80, 53]);
    expect(g.excluded).toBe(1);
  });

  it('passes everything untouched without a filter', () => {
    const out: StreamLine[] = [];
    const g = new FilterGate(compileFilter(''), (l) => out.push(l));
    const lines = [start, drop('no_socket', 1), stats(true)];
    for (const l of lines) g.emit(l);
    expect(out).toEqual(lines);
    expect(out[2]).not.toHaveProperty('filtered');
  });
});

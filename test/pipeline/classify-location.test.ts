import { describe, expect, it } from 'vitest';
import { classifyByLocation, isLocationKey, locationOfKey, locationReadsDrop } from '../../src/pipeline/classify-location.js';
import type { LocationInput } from '../../src/pipeline/classify-location.js';
import { CT_FLAG, MARTIAN_FLAG } from '../../src/gen/record.js';

const base: LocationInput = { location: 'x', src: '198.18.0.1', dst: '198.18.0.2', ctFlags: 0, martianConf: 0, rpFilter: 0, neighFailed: false };
const at = (location: string, more: Partial<LocationInput> = {}) => {
  const c = classifyByLocation({ ...base, location, ...more });
  return [c.family, c.kind, c.certainty];
};

describe('location keys (kernels without drop reasons)', () => {
  it('are the location with bit 31 set, and give the address back', () => {
    expect(isLocationKey(0x81ff7c4b)).toBe(true);
    expect(isLocationKey(77)).toBe(false);
    expect(isLocationKey(0x3ffff)).toBe(false);
    expect(locationOfKey(0x81ff7c4b)).toBe(0xffffffff81ff7c4bn);
    expect(locationOfKey(0x81ff7c4b | 0)).toBe(0xffffffff81ff7c4bn);
  });
});

describe('classifyByLocation: netfilter drops (all freed in nf_hook_slow)', () => {
  const nf = (ctFlags: number) => at('nf_hook_slow', { ctFlags });
  it('is a rule when no conntrack counter rose, never conntrack', () => {
    expect(nf(0)).toEqual(['netfilter', 'netfilter_rule', 'likely']);
    expect(nf(CT_FLAG.ACTIVE | CT_FLAG.HAS_CT | CT_FLAG.CONFIRMED)).toEqual(['netfilter', 'netfilter_rule', 'likely']);
    expect(nf(CT_FLAG.ACTIVE | CT_FLAG.HAS_CT)).toEqual(['netfilter', 'netfilter_rule', 'likely']);
  });
  it('is conntrack full when the drop counter rose (exact when __nf_conntrack_alloc was seen failing), never a rule', () => {
    expect(nf(CT_FLAG.ACTIVE | CT_FLAG.DROP_ROSE)).toEqual(['conntrack', 'conntrack_table_full', 'likely']);
    expect(nf(CT_FLAG.ACTIVE | CT_FLAG.ALLOC_FAILED)).toEqual(['conntrack', 'conntrack_table_full', 'exact']);
  });
  it('is insert failed and invalid from their counters', () => {
    expect(nf(CT_FLAG.ACTIVE | CT_FLAG.HAS_CT | CT_FLAG.INSERT_FAILED_ROSE)).toEqual(['conntrack', 'conntrack_insert_failed', 'likely']);
    expect(nf(CT_FLAG.ACTIVE | CT_FLAG.INVALID_ROSE)).toEqual(['conntrack', 'conntrack_invalid', 'likely']);
  });
  it('says how it decided', () => {
    expect(classifyByLocation({ ...base, location: 'nf_hook_slow', ctFlags: CT_FLAG.ACTIVE }).evidence).toEqual([
      'freed in nf_hook_slow: a netfilter verdict (rule or conntrack)',
      "no conntrack counter of this netns rose on this CPU: a rule's DROP",
      'this kernel gives no drop reason (before 5.17): classified by the place',
    ]);
    expect(classifyByLocation({ ...base, location: 'nf_hook_slow', ctFlags: CT_FLAG.ACTIVE | CT_FLAG.DROP_ROSE }).evidence).toEqual([
      'freed in nf_hook_slow: a netfilter verdict (rule or conntrack)',
      'no conntrack entry on the packet',
      "conntrack's drop counter rose on this CPU",
      'this kernel gives no drop reason (before 5.17): classified by the place',
    ]);
  });
});

describe('classifyByLocation: the input route lookup (ip_rcv_finish_core)', () => {
  const K = MARTIAN_FLAG.KNOWN;
  it('is rp_filter when the lookup returned -EXDEV, even though ip_handle_martian_source ran', () => {
    expect(at('ip_rcv_finish_core', { martianConf: K | MARTIAN_FLAG.ROUTE_EXDEV | MARTIAN_FLAG.SOURCE_SEEN, rpFilter: 1 })).toEqual(['martian', 'rp_filter', 'exact']);
  });
  it('is a martian source when ip_handle_martian_source ran: exact with -EINVAL seen, likely without the lookup hook', () => {
    expect(at('ip_rcv_finish_core', { martianConf: K | MARTIAN_FLAG.ROUTE_EINVAL | MARTIAN_FLAG.SOURCE_SEEN, src: '127.0.0.9' })).toEqual(['martian', 'martian_source', 'exact']);
    expect(at('ip_rcv_finish_core', { martianConf: K | MARTIAN_FLAG.SOURCE_SEEN })).toEqual(['martian', 'martian_source', 'likely']);
  });
  it('falls back on addresses that are never valid', () => {
    expect(at('ip_rcv_finish_core', { src: '127.0.0.9' })).toEqual(['martian', 'martian_source', 'likely']);
    expect(at('ip_rcv_finish_core', { src: '224.0.0.1' })).toEqual(['martian', 'martian_source', 'likely']);
    expect(at('ip_rcv_finish_core', { dst: '0.0.0.9' })).toEqual(['martian', 'martian_destination', 'likely']);
    expect(at('ip_rcv_finish_core', { dst: '127.0.0.1', martianConf: K | MARTIAN_FLAG.ROUTE_EINVAL })).toEqual(['martian', 'martian_destination', 'exact']);
  });
  it('guesses rp_filter for a plausible source only where rp_filter is on, else a martian source', () => {
    expect(at('ip_rcv_finish_core', { martianConf: K, rpFilter: 1 })).toEqual(['martian', 'rp_filter', 'possible']);
    expect(at('ip_rcv_finish_core', { martianConf: K, rpFilter: 0 })).toEqual(['martian', 'martian_source', 'possible']);
    expect(at('ip_rcv_finish_core', { martianConf: K | MARTIAN_FLAG.ROUTE_EINVAL, rpFilter: 1 })).toEqual(['martian', 'martian_source', 'possible']);
  });
});

describe('classifyByLocation: neighbours and the rest', () => {
  it('is table full at ip(6)_finish_output2: exact when neigh_create was seen failing', () => {
    expect(at('ip6_finish_output2', { neighFailed: true })).toEqual(['neigh', 'neigh_table_full', 'exact']);
    expect(at('ip_finish_output2')).toEqual(['neigh', 'neigh_table_full', 'likely']);
  });
  it('names the places with one meaning, and those with several as possible', () => {
    expect(at('arp_error_report')).toEqual(['neigh', 'neigh_resolution_failed', 'likely']);
    expect(at('ndisc_error_report')).toEqual(['neigh', 'neigh_resolution_failed', 'likely']);
    expect(at('__neigh_event_send')).toEqual(['neigh', 'neigh_queue_full', 'possible']);
    expect(at('__udp4_lib_rcv')).toEqual(['other', 'no_socket', 'possible']);
    expect(at('tcp_v6_rcv')).toEqual(['other', 'no_socket', 'possible']);
  });
  it('calls a 0/8 destination at ip_error martian, and anything else not_specified', () => {
    expect(at('ip_error', { dst: '0.0.0.9' })).toEqual(['martian', 'martian_destination', 'likely']);
    expect(at('ip_error')).toEqual(['other', 'not_specified', 'possible']);
    expect(at('unix_stream_connect')).toEqual(['other', 'not_specified', 'possible']);
  });
  it('reads the flow only at places whose kind depends on it', () => {
    expect(['ip_rcv_finish_core', 'ip_error', 'ip_finish_output2', 'nf_hook_slow', '__udp4_lib_rcv'].map(locationReadsDrop)).toEqual([true, true, true, false, false]);
  });
});

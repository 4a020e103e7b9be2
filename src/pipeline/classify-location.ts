/**
 * Classification where kfree_skb gives no drop reason (Linux 5.10-5.16): from the place the
 * skb was freed (the kernel function), what the optional hooks saw just before on the same CPU
 * (a failed neighbour creation, the route lookup's error, ip_handle_martian_source,
 * __nf_conntrack_alloc failing), the netns' conntrack counters at a netfilter drop, and the
 * flow. Each result says how sure it is: `exact` when a hook saw the failure, `likely` when the
 * place (and the signals next to it) have one meaning, `possible` when the place has several.
 * Pure: no I/O. The places are 5.10's (net/ of v5.10); a kernel that moved a drop elsewhere
 * gets `not_specified`, never a wrong kind.
 */
import { CT_FLAG, MARTIAN_FLAG, REASON_LOCATION_BIT } from '../gen/record.js';
import type { Classification } from './classify.js';
import { isMartianSource, netfilterKind } from './classify.js';

export interface LocationInput {
  /** kernel function that freed the skb, clone suffix stripped (ip_rcv_finish_core) */
  location: string;
  src: string | null;
  dst: string | null;
  /** CT_FLAG: read at drops in nf_hook_slow */
  ctFlags: number;
  /** MARTIAN_FLAG */
  martianConf: number;
  /** effective rp_filter of the receiving device (IPv4), when martianConf has KNOWN */
  rpFilter: number;
  /** a hook saw a neighbour entry fail to be created just before (neigh:neigh_create) */
  neighFailed: boolean;
}

/** A key's reason number that is a drop location (probes/droptrace.h, DT_REASON_LOCATION_BIT). */
export function isLocationKey(reason: number): boolean {
  return reason >>> REASON_LOCATION_BIT === 1;
}

/** The kernel text address a location key stands for: x86-64 kernel text and modules have all-ones high bits. */
export function locationOfKey(reason: number): bigint {
  return 0xffffffff00000000n | BigInt(reason >>> 0);
}

/** Does the classification of a drop at this place read more than (location, ctFlags, martianConf)? */
export function locationReadsDrop(location: string): boolean {
  return location === 'ip_rcv_finish_core' || location === 'ip_error' || NEIGH_OUTPUT.has(location);
}

/** ip(6)_finish_output2 free the skb when no neighbour entry could be created for the next hop. */
const NEIGH_OUTPUT = new Set(['ip_finish_output2', 'ip6_finish_output2']);

/** Places with one meaning on 5.10 (each frees the skb for that failure only). */
const ONE_MEANING: Record<string, [Classification['family'], string, string]> = {
  arp_error_report: ['neigh', 'neigh_resolution_failed', 'neighbour resolution gave up (neigh_invalidate → arp_error_report)'],
  ndisc_error_report: ['neigh', 'neigh_resolution_failed', 'neighbour resolution gave up (neigh_invalidate → ndisc_error_report)'],
  neigh_invalidate: ['neigh', 'neigh_resolution_failed', 'neighbour resolution gave up (neigh_invalidate)'],
};

/** Places with a most frequent meaning among several. */
const MOSTLY: Record<string, [Classification['family'], string, string]> = {
  __neigh_event_send: ['neigh', 'neigh_queue_full', '__neigh_event_send frees a packet when the queue for an unresolved neighbour overflows (also when the entry failed or died)'],
  neigh_flush_dev: ['neigh', 'neigh_dead', 'neigh_flush_dev frees the packets queued on entries being flushed'],
  neigh_destroy: ['neigh', 'neigh_dead', 'neigh_destroy frees the packets queued on a dying entry'],
  __udp4_lib_rcv: ['other', 'no_socket', '__udp4_lib_rcv frees a datagram for no socket (or a bad checksum, a short datagram)'],
  __udp6_lib_rcv: ['other', 'no_socket', '__udp6_lib_rcv frees a datagram for no socket (or a bad checksum, a short datagram)'],
  tcp_v4_rcv: ['other', 'no_socket', 'tcp_v4_rcv frees a segment for no socket (or a bad checksum, a socket filter, a full backlog)'],
  tcp_v6_rcv: ['other', 'no_socket', 'tcp_v6_rcv frees a segment for no socket (or a bad checksum, a socket filter, a full backlog)'],
};

/** destinations the input route lookup calls martian: 0/8, 127/8 (route_localnet off) */
function isMartianDestination(ip: string | null): boolean {
  if (ip === null || ip.includes(':')) return false;
  const first = Number(ip.split('.')[0]);
  return first === 0 || first === 127;
}

const NO_REASON = 'this kernel gives no drop reason (before 5.17): classified by the place';

export function classifyByLocation(d: LocationInput): Classification {
  const at = `freed in ${d.location}`;
  const has = (f: number) => (d.martianConf & f) !== 0;

  // every netfilter drop, a rule's or conntrack's, is freed in nf_hook_slow on these kernels
  if (d.location === 'nf_hook_slow') {
    const c = netfilterKind(d.ctFlags);
    const hookSaw = (d.ctFlags & CT_FLAG.ALLOC_FAILED) !== 0;
    return { ...c, certainty: hookSaw ? 'exact' : 'likely', evidence: [`${at}: a netfilter verdict (rule or conntrack)`, ...(c.evidence ?? [ruleEvidence(d.ctFlags)]), NO_REASON] };
  }

  if (d.location === 'ip_rcv_finish_core') return martian(d, at);

  if (NEIGH_OUTPUT.has(d.location)) {
    if (d.neighFailed) {
      return { family: 'neigh', kind: 'neigh_table_full', certainty: 'exact', evidence: [at, 'neigh_create failed just before the drop (neigh:neigh_create created=0)', NO_REASON] };
    }
    return { family: 'neigh', kind: 'neigh_table_full', certainty: 'likely', evidence: [`${at}: no neighbour entry could be created for the next hop`, 'no neighbour hook saw the failure', NO_REASON] };
  }

  if (d.location === 'ip_error' && isMartianDestination(d.dst)) {
    return { family: 'martian', kind: 'martian_destination', certainty: 'likely', evidence: [`${at}: no route`, `destination ${d.dst} is never valid`, NO_REASON] };
  }

  const one = ONE_MEANING[d.location];
  if (one) return { family: one[0], kind: one[1], certainty: 'likely', evidence: [one[2], NO_REASON] };
  const mostly = MOSTLY[d.location];
  if (mostly) return { family: mostly[0], kind: mostly[1], certainty: 'possible', evidence: [mostly[2], NO_REASON] };

  return { family: 'other', kind: 'not_specified', certainty: 'possible', evidence: [`${at}: no classification for this place`, NO_REASON] };

  function martian(x: LocationInput, where: string): Classification {
    const route = `${where}: the input route lookup refused the packet`;
    if (has(MARTIAN_FLAG.ROUTE_EXDEV)) {
      return { family: 'martian', kind: 'rp_filter', certainty: 'exact', evidence: [route, 'ip_route_input_noref returned -EXDEV (reverse-path check failed)', NO_REASON] };
    }
    if (has(MARTIAN_FLAG.SOURCE_SEEN)) {
      // rp_filter failures pass through ip_handle_martian_source too: only the lookup's error rules them out
      const einval = has(MARTIAN_FLAG.ROUTE_EINVAL);
      return {
        family: 'martian',
        kind: 'martian_source',
        certainty: einval ? 'exact' : 'likely',
        evidence: [route, 'ip_handle_martian_source ran just before the drop', ...(einval ? ['ip_route_input_noref returned -EINVAL'] : []), NO_REASON],
      };
    }
    if (isMartianSource(x.src)) {
      return { family: 'martian', kind: 'martian_source', certainty: 'likely', evidence: [route, `source ${x.src} is never valid`, NO_REASON] };
    }
    if (isMartianDestination(x.dst)) {
      const seen = has(MARTIAN_FLAG.ROUTE_EINVAL);
      return {
        family: 'martian',
        kind: 'martian_destination',
        certainty: seen ? 'exact' : 'likely',
        evidence: [route, ...(seen ? ['ip_route_input_noref returned -EINVAL'] : []), `destination ${x.dst} is never valid`, NO_REASON],
      };
    }
    // a plausible source refused: the reverse-path check, if it is on here
    if (has(MARTIAN_FLAG.KNOWN) && x.rpFilter > 0 && !has(MARTIAN_FLAG.ROUTE_EINVAL)) {
      return { family: 'martian', kind: 'rp_filter', certainty: 'possible', evidence: [route, `rp_filter=${x.rpFilter} on the device, and no hook saw the lookup's error`, NO_REASON] };
    }
    return { family: 'martian', kind: 'martian_source', certainty: 'possible', evidence: [route, 'no hook saw why (martian source, or a local address as source)', NO_REASON] };
  }
}

function ruleEvidence(ct: number): string {
  return ct & CT_FLAG.ACTIVE ? "no conntrack counter of this netns rose on this CPU: a rule's DROP" : "conntrack not in use in this netns: a rule's DROP";
}

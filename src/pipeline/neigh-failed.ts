/**
 * Packets that died because neighbour resolution failed but carry no reason that says so.
 *
 * When an entry gives up (NUD_FAILED after its probes), neigh_invalidate() hands each packet
 * queued on it to the protocol's error_report, which sends the ICMP unreachable and frees it:
 * IPv4's arp_error_report() says NEIGH_FAILED, IPv6's ndisc_error_report() calls plain
 * kfree_skb() (NOT_SPECIFIED, still so on 6.18), and kernels before the NEIGH_* reasons (6.1)
 * say NOT_SPECIFIED for both. error_report is a tail call, so the drop's location is
 * neigh_invalidate itself; where it is not (a kernel built without the sibling-call
 * optimisation), the error_report function's own name. __neigh_event_send is left out: on old
 * kernels its NOT_SPECIFIED is a failed entry or an overflowing queue, and only the reason
 * tells them apart.
 */
import type { Classification } from './classify.js';

const RESOLUTION_FAILED_AT = new Set(['neigh_invalidate', 'ndisc_error_report', 'arp_error_report']);

/** A drop freed by a failed neighbour resolution although its reason does not say so. */
export function resolutionFailedWithoutReason(reason: string, location: string): boolean {
  return reason === 'NOT_SPECIFIED' && RESOLUTION_FAILED_AT.has(location);
}

export const RESOLUTION_FAILED_UNREASONED: Classification = {
  family: 'neigh',
  kind: 'neigh_resolution_failed',
  evidence: ['freed where a failed neighbour entry drops the packets queued on it (neigh_invalidate); the kernel gives no reason there'],
};

/**
 * Which kernel mechanism dropped a packet: family and kind (DESIGN.md, "Classification"),
 * from the drop reason's name, the kernel location, the flow and what the kernel program saw
 * next to the drop (conntrack state and counters, a failed neighbour creation). Pure: no I/O.
 */
import { CT_FLAG, MARTIAN_FLAG } from '../gen/record.js';
import { RESOLUTION_FAILED_UNREASONED, resolutionFailedWithoutReason } from './neigh-failed.js';

export type Family = 'neigh' | 'conntrack' | 'netfilter' | 'martian' | 'other';

/**
 * How sure the classification is: `exact` the kernel said it (a drop reason, or a hook that
 * saw the failure); `likely` inferred from signals next to the drop (a counter that rose, a
 * place with one meaning, an address that is never valid); `possible` one of several meanings.
 */
export type Certainty = 'exact' | 'likely' | 'possible';

export interface Classification {
  family: Family;
  kind: string;
  /** absent: exact */
  certainty?: Certainty;
  /** the signals that decided it, in words (conntrack and neigh kinds) */
  evidence?: string[];
}

export interface ClassifyInput {
  reason: string;
  location: string;
  src: string | null;
  dst: string | null;
  /** CT_FLAG (src/gen/record.ts) of a NETFILTER_DROP; 0 otherwise */
  ctFlags?: number;
  /** MARTIAN_FLAG (src/gen/record.ts) */
  martianConf?: number;
}

const DIRECT: Record<string, Classification> = {
  NEIGH_CREATEFAIL: { family: 'neigh', kind: 'neigh_table_full' },
  NEIGH_FAILED: { family: 'neigh', kind: 'neigh_resolution_failed' },
  NEIGH_QUEUEFULL: { family: 'neigh', kind: 'neigh_queue_full' },
  NEIGH_DEAD: { family: 'neigh', kind: 'neigh_dead' },
  IP_INVALID_SOURCE: { family: 'martian', kind: 'martian_source' },
  IP_LOCAL_SOURCE: { family: 'martian', kind: 'martian_source' },
  IP_INVALID_DEST: { family: 'martian', kind: 'martian_destination' },
  IP_RPFILTER: { family: 'martian', kind: 'rp_filter' },
};

const isLoopback = (ip: string | null) => ip !== null && (ip.startsWith('127.') || ip === '::1');
/** sources no IPv4 packet may carry: 0/8, 127/8, multicast, class E, broadcast */
export const isMartianSource = (ip: string | null): boolean => {
  if (ip === null || ip.includes(':')) return false;
  const first = Number(ip.split('.')[0]);
  return first === 0 || first === 127 || first >= 224;
};
const isZeroNet = (ip: string | null) => ip !== null && ip.startsWith('0.');

/**
 * NETFILTER_DROP: a rule's verdict, or conntrack's own? Conntrack bumps a per-CPU counter of
 * the netns in the same call chain just before the drop; the kernel program compares it with
 * its value at the previous NETFILTER_DROP there (see probes/droptrace.bpf.c).
 * - table full: no entry on the packet, and the "drop" counter rose (or a hook saw
 *   __nf_conntrack_alloc fail);
 * - insert failed: an unconfirmed entry on the packet, and "insert_failed" rose (clash on
 *   confirm);
 * - invalid: no entry on the packet, and "invalid" rose (conntrack judged it INVALID, then a
 *   rule or conntrack itself dropped it);
 * - anything else: a rule.
 */
export function netfilterKind(ct: number): Classification {
  const ev: string[] = [];
  const has = (f: number) => (ct & f) !== 0;
  if (has(CT_FLAG.NO_BASELINE) && has(CT_FLAG.DROP_ROSE | CT_FLAG.INSERT_FAILED_ROSE | CT_FLAG.INVALID_ROSE)) {
    ev.push('first drop seen in this netns on this CPU: conntrack counters compared with zero');
  }
  if (has(CT_FLAG.ALLOC_FAILED)) {
    return { family: 'conntrack', kind: 'conntrack_table_full', evidence: ['__nf_conntrack_alloc failed just before the drop', ...ev] };
  }
  if (!has(CT_FLAG.HAS_CT) && has(CT_FLAG.INVALID_ROSE)) {
    return {
      family: 'conntrack',
      kind: 'conntrack_invalid',
      evidence: ['no conntrack entry on the packet', "conntrack's invalid counter rose on this CPU", ...ev],
    };
  }
  if (!has(CT_FLAG.HAS_CT) && has(CT_FLAG.DROP_ROSE)) {
    return {
      family: 'conntrack',
      kind: 'conntrack_table_full',
      evidence: ['no conntrack entry on the packet', "conntrack's drop counter rose on this CPU", ...ev],
    };
  }
  if (has(CT_FLAG.HAS_CT) && !has(CT_FLAG.CONFIRMED) && has(CT_FLAG.INSERT_FAILED_ROSE)) {
    return {
      family: 'conntrack',
      kind: 'conntrack_insert_failed',
      evidence: ['unconfirmed conntrack entry on the packet', "conntrack's insert_failed counter rose on this CPU", ...ev],
    };
  }
  return { family: 'netfilter', kind: 'netfilter_rule' };
}

/**
 * Whether classify() reads the flow (src, dst) for this reason. For every other reason the
 * result depends only on the reason, the location and the flags, so the stream classifies
 * each such combination once (src/pipeline/events.ts); test/classify.test.ts holds classify() to it.
 */
export function classifyReadsFlow(reason: string): boolean {
  return reason === 'NOT_SPECIFIED' || reason === 'IP_LOCALNET' || reason === 'IP_INADDRERRORS';
}

/**
 * classifyReadsFlow() once the place and the martian flags are known as well: NOT_SPECIFIED
 * reads the flow only at ip_rcv_finish_core with no martian hook seen, so the drops a busy
 * node says NOT_SPECIFIED for elsewhere (IPv6 multicast noise) are classified once too.
 */
export function classifyReadsFlowAt(reason: string, location: string, martianConf: number): boolean {
  if (reason === 'NOT_SPECIFIED') return !(martianConf & MARTIAN_FLAG.SOURCE_SEEN) && location === 'ip_rcv_finish_core';
  return classifyReadsFlow(reason);
}

export function classify(d: ClassifyInput): Classification {
  if (d.reason === 'NETFILTER_DROP') {
    // the reason says netfilter; which part of it, only the signals around it
    const c = netfilterKind(d.ctFlags ?? 0);
    return (d.ctFlags ?? 0) & CT_FLAG.ALLOC_FAILED ? c : { ...c, certainty: 'likely' };
  }
  const direct = DIRECT[d.reason];
  if (direct) return direct;
  // Kernels before the IP_* drop reasons (6.1) say NOT_SPECIFIED for martians: a hook on
  // ip_handle_martian_source, or failing that the place and an impossible source, tell.
  if (resolutionFailedWithoutReason(d.reason, d.location)) return RESOLUTION_FAILED_UNREASONED;
  if (d.reason === 'NOT_SPECIFIED') {
    if ((d.martianConf ?? 0) & MARTIAN_FLAG.SOURCE_SEEN) {
      return { family: 'martian', kind: 'martian_source', evidence: ['ip_handle_martian_source ran just before the drop'] };
    }
    if (d.location === 'ip_rcv_finish_core' && isMartianSource(d.src)) {
      return { family: 'martian', kind: 'martian_source', certainty: 'likely', evidence: ['dropped by the input route lookup (ip_rcv_finish_core)', `source ${d.src} is never valid`] };
    }
  }
  switch (d.reason) {
    // IP_LOCALNET is the kernel's "127/8 where it does not belong", on either side.
    case 'IP_LOCALNET':
      if (isLoopback(d.src)) return { family: 'martian', kind: 'martian_source' };
      return { family: 'martian', kind: 'martian_destination' };
    // ip_error() counts 0.0.0.0/8 destinations here, next to unreachable routes.
    case 'IP_INADDRERRORS':
      if (isZeroNet(d.dst)) return { family: 'martian', kind: 'martian_destination' };
      break;
  }
  return { family: 'other', kind: d.reason.toLowerCase() };
}

/**
 * Which kernel mechanism dropped a packet: family and kind (DESIGN.md, "Classification"),
 * from the drop reason's name, the kernel location and the flow. Pure: no I/O.
 */
export type Family = 'neigh' | 'conntrack' | 'netfilter' | 'martian' | 'other';

export interface Classification {
  family: Family;
  kind: string;
}

export interface ClassifyInput {
  reason: string;
  location: string;
  src: string | null;
  dst: string | null;
}

const DIRECT: Record<string, Classification> = {
  NETFILTER_DROP: { family: 'netfilter', kind: 'netfilter_rule' },
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
const isZeroNet = (ip: string | null) => ip !== null && ip.startsWith('0.');

export function classify(d: ClassifyInput): Classification {
  const direct = DIRECT[d.reason];
  if (direct) return direct;
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

/** One sentence an engineer can act on, per kind. */
export const EXPLAIN: Record<string, string> = {
  netfilter_rule: 'a firewall rule (iptables/nftables) returned DROP for this packet',
  neigh_table_full: 'the neighbour (ARP/NDP) table is full: the kernel could not create an entry for the next hop',
  neigh_resolution_failed: 'the next hop did not answer ARP/neighbour solicitation: packets queued for it were dropped',
  neigh_queue_full: 'too many packets were waiting for the next hop to be resolved: the queue overflowed',
  neigh_dead: 'the neighbour entry was being destroyed while packets used it',
  martian_source: 'a packet arrived with a source address that cannot be valid on this interface (a martian)',
  martian_destination: 'a packet arrived for a destination address that cannot be valid (a martian)',
  rp_filter: 'reverse-path filtering: the reply route to the source leaves by another interface',
};

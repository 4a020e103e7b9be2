/**
 * Drops every healthy node makes: marked `benign` with why, never hidden from the record (the
 * NDJSON, the stats and the metrics keep them; the TUI hides them behind a key). Each rule is
 * one (reason, place) the kernel source shows to be routine, so a drop is benign by where and
 * why it died, never by its flow: the stream decides it once per reason and place
 * (src/pipeline/events.ts).
 */

interface Rule {
  reason: string;
  /** the kernel function the drop is reported from; any place when absent */
  at?: string;
  why: string;
}

const RULES: Rule[] = [
  // ip6_mc_input(): ipv6_chk_mcast_addr() finds no member of the group on the device, so the
  // "discard" branch frees it with plain kfree_skb(). Every IPv6 interface hears multicast it
  // did not join: MLD reports to ff02::16, router solicitations to ff02::2 on a host, other
  // hosts' solicited-node groups when the NIC filter is imperfect.
  {
    reason: 'NOT_SPECIFIED',
    at: 'ip6_mc_input',
    why: 'IPv6 multicast to a group no socket on this interface joined (MLD reports, router solicitations): every IPv6 link carries it',
  },
  // skb_queue_purge_reason(): QUEUE_PURGE is the reason of skb_queue_purge(), the bulk free of
  // a queue whose owner is going away: a device being unregistered (its qdisc and backlog), a
  // socket being destroyed (sk_stream_kill_queues, its error and receive queues). Nothing was
  // refused; the packet's path no longer exists.
  {
    reason: 'QUEUE_PURGE',
    why: 'a queue freed in bulk because its owner went away (a device removed, a socket closed): teardown, not a failure',
  },
  // ip_rcv_core()/ipv6_rcv(): pkt_type PACKET_OTHERHOST, a frame addressed to another MAC. The
  // kernel's own comment: "When the interface is in promisc mode, drop all the crap that it
  // receives, do not try to analyse it." Bridge ports and packet captures put NICs there.
  {
    reason: 'OTHERHOST',
    why: 'a frame for another host seen because the interface is promiscuous (bridge port, packet capture): the stack ignores it by design',
  },
  // ndisc_recv_ns(): a neighbour solicitation for a target that is not ours and that we do not
  // proxy. Solicited-node groups share their last 24 bits, so hosts routinely hear each other's.
  {
    reason: 'IPV6_NDISC_NS_OTHERHOST',
    why: "a neighbour solicitation for another host's address (solicited-node groups are shared): not for us, by design",
  },
];

/**
 * Why a drop of this reason at this place is routine on a healthy node, or null. `reason` null
 * (a kernel before drop reasons): only a rule tied to a place can tell, and there the kernel's
 * reason would have been NOT_SPECIFIED.
 */
export function benignWhy(reason: string | null, location: string): string | null {
  for (const r of RULES) {
    if (r.at === undefined ? r.reason === reason : r.at === location && (reason ?? 'NOT_SPECIFIED') === r.reason) return r.why;
  }
  return null;
}

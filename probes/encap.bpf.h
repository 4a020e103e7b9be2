/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The overlay parser of the drop program: what a dropped VXLAN/Geneve datagram carries
 * inside, into the event's inner block (probes/droptrace.h). Included by parse.bpf.h, whose
 * parse_ip it uses for the inner packet. test/pipeline/overlay.e2e.test.ts drives it.
 */
#ifndef DROPTRACE_ENCAP_BPF_H
#define DROPTRACE_ENCAP_BPF_H

/*
 * Overlays. A dropped UDP datagram to a tunnel port carries a whole packet: the pods' flow
 * inside the nodes'. Read only for drops that send detail (never on the counted-only path),
 * every read bounded by the outer packet's end, and the inner IP header parsed by parse_ip,
 * as the outer one is.
 *
 * The inner flow is not in the counter key: Linux's vxlan and geneve devices (flannel's
 * too) take the outer UDP source port from a hash of the inner flow (udp_flow_src_port), so
 * the key's outer flow already tells the inner flows between two nodes apart, and a key the
 * size of two flows would cost every drop, tunnelled or not, a longer hash (docs/ndjson.md,
 * Overlays).
 */
#define DT_VXLAN_PORT 4789
#define DT_VXLAN_LINUX_PORT 8472 /* the Linux vxlan default before IANA's; flannel's */
#define DT_GENEVE_PORT 6081
#define ETH_P_TEB 0x6558         /* Geneve: an Ethernet frame follows */
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define DT_UDP_HLEN 8
#define DT_TUN_HLEN 8            /* the VXLAN header, and Geneve's before its options */
#define DT_ETH_HLEN 14

/* The ethertype of the Ethernet frame at *pos (one VLAN tag skipped), *pos moved past it; 0: cut short. */
static __always_inline __u16 inner_eth(unsigned char *head, __u32 *pos, __u32 end)
{
	__u8 eth[DT_ETH_HLEN + 4];
	__u32 at = *pos;
	if (at + DT_ETH_HLEN > end || bpf_probe_read_kernel(eth, DT_ETH_HLEN, head + at))
		return 0;
	__u16 type = eth[12] << 8 | eth[13];
	at += DT_ETH_HLEN;
	if (type == ETH_P_8021Q || type == ETH_P_8021AD) {
		if (at + 4 > end || bpf_probe_read_kernel(eth + DT_ETH_HLEN, 4, head + at))
			return 0;
		type = eth[DT_ETH_HLEN + 2] << 8 | eth[DT_ETH_HLEN + 3];
		at += 4;
	}
	*pos = at;
	return type;
}

/* The inner headers, parsed by dt_parse_encap for its caller (per CPU: the drop program never runs twice at once on one CPU). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct parsed);
} encap_inner SEC(".maps");

/*
 * The outer IP and UDP headers at `nh_off` again (offsets from `head_addr`, the skb's head as
 * a number; `end` its tail), then the tunnel header and the inner packet's headers, into
 * encap_inner. The drop program's parser keeps no offsets for this: a field it set on some
 * paths and not on others made older verifiers (6.1) tell those paths apart to the end of
 * the program, past their limit. A global function, verified once on its own (inlined, its
 * paths multiplied the outer parser's); scalar arguments only, so 5.10 (which passes no
 * pointers to global functions) verifies it too. Returns encap << 24 | VNI, or 0 when this
 * is no VXLAN/Geneve datagram (encap_inner is then not written).
 */
__noinline int dt_parse_encap(__u64 head_addr, __u32 nh_off, __u32 end, __u32 v6, __u32 geneve)
{
	unsigned char *head = (unsigned char *)head_addr;
	__u32 udp;
	if (v6) {
		struct ipv6hdr ip6;
		if (nh_off + sizeof(ip6) > end || bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh_off))
			return 0;
		/* extension headers before a tunnel's UDP header: not looked through */
		if (ip6.nexthdr != IPPROTO_UDP)
			return 0;
		__u32 plen = bpf_ntohs(ip6.payload_len);
		if (plen && nh_off + sizeof(ip6) + plen < end)
			end = nh_off + sizeof(ip6) + plen;
		udp = nh_off + sizeof(ip6);
	} else {
		struct iphdr ip;
		if (nh_off + sizeof(ip) > end || bpf_probe_read_kernel(&ip, sizeof(ip), head + nh_off))
			return 0;
		__u32 tot = bpf_ntohs(ip.tot_len);
		if (tot && nh_off + tot < end)
			end = nh_off + tot;
		udp = nh_off + ip.ihl * 4;
	}
	__u32 at = udp + DT_UDP_HLEN;
	__u8 tun[DT_TUN_HLEN];
	if (at + DT_TUN_HLEN > end || bpf_probe_read_kernel(tun, DT_TUN_HLEN, head + at))
		return 0;
	__u16 type;
	if (geneve) {
		/* version 0 (2 bits), options length in 4-byte words; protocol; VNI */
		if (tun[0] >> 6)
			return 0;
		at += DT_TUN_HLEN + (tun[0] & 0x3f) * 4;
		type = tun[2] << 8 | tun[3];
	} else {
		/* the I flag: the VNI is valid (RFC 7348); without it this is not VXLAN */
		if (!(tun[0] & 0x08))
			return 0;
		at += DT_TUN_HLEN;
		type = ETH_P_TEB;
	}
	__u32 zero = 0;
	struct parsed *in = bpf_map_lookup_elem(&encap_inner, &zero);
	if (!in)
		return 0;
	__builtin_memset(in, 0, sizeof(*in));
	int tag = (geneve ? DT_ENCAP_GENEVE : DT_ENCAP_VXLAN) << 24 | tun[4] << 16 | tun[5] << 8 | tun[6];
	if (type == ETH_P_TEB)
		type = inner_eth(head, &at, end);
	if (type == ETH_P_IP || type == ETH_P_IPV6)
		parse_ip(in, head, at, end, type);
	else if (!type)
		in->flags = DT_F_TRUNCATED; /* the frame was cut short; an ARP or other frame is no flow */
	return tag;
}

/*
 * The event's inner block, when the drop is a UDP datagram to a tunnel port: written into
 * the reserved record, not the event on the stack, where the tunnel and no-tunnel paths would
 * leave those bytes in states older verifiers (6.1) never prune as one, doubling the rest of
 * the program's paths past their limit. Under tp_btf
 * skb->head is a pointer the verifier will not hand to a global function, so it and the
 * offsets are read once more as numbers (probe reads, tunnel datagrams only).
 */
static __always_inline void parse_encap(struct dt_event *ev, const struct parsed *p, struct sk_buff *skb)
{
	if (!(p->flags & DT_F_L4) || p->k.l4_proto != IPPROTO_UDP)
		return;
	__u16 port = p->k.dport;
	if (port != DT_VXLAN_PORT && port != DT_VXLAN_LINUX_PORT && port != DT_GENEVE_PORT)
		return;
	unsigned char *head = 0;
	__u32 tail = 0;
	__u16 nh_off = 0;
	if (bpf_core_read(&head, sizeof(head), &skb->head) || bpf_core_read(&tail, sizeof(tail), &skb->tail) ||
	    bpf_core_read(&nh_off, sizeof(nh_off), &skb->network_header))
		return;
	int tag = dt_parse_encap((__u64)head, nh_off, tail, p->flags & DT_F_IPV6, port == DT_GENEVE_PORT);
	__u32 zero = 0;
	struct parsed *in = tag ? bpf_map_lookup_elem(&encap_inner, &zero) : 0;
	if (!in)
		return;
	ev->encap = tag >> 24;
	ev->inner_vni = tag & 0xffffff;
	ev->inner_flags = in->flags;
	ev->inner_l4_proto = in->k.l4_proto;
	ev->inner_sport = in->k.sport;
	ev->inner_dport = in->k.dport;
	ev->inner_icmp_type = in->k.icmp_type;
	ev->inner_icmp_code = in->k.icmp_code;
	__builtin_memcpy(ev->inner_saddr, in->k.saddr, 16);
	__builtin_memcpy(ev->inner_daddr, in->k.daddr, 16);
}

#endif

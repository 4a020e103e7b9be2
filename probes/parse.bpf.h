/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The header parsers of the drop program (droptrace.bpf.c): what a dropped packet's IPv4/IPv6
 * and TCP/UDP/ICMP headers say, straight into the counter key, and what a VXLAN/Geneve
 * datagram carries inside (encap.bpf.h, into the event). Every read is bounded by the
 * packet's real end (see parse_headers); test/pipeline/headers.e2e.test.ts drops runt,
 * truncated, fragmented, extension-header and VLAN-tagged packets through it.
 *
 * The includer defines RD(p, f), which reads one field of a kernel object the way its program
 * type allows (a plain load under tp_btf, a probe read under the classic tracepoint).
 */
#ifndef DROPTRACE_PARSE_BPF_H
#define DROPTRACE_PARSE_BPF_H

#ifndef RD
#error "parse.bpf.h needs RD(p, f) defined by its includer"
#endif

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_HOPOPTS 0
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_ICMPV6 58
#define IPPROTO_DSTOPTS 60

/*
 * What the headers say, straight into the per-key counter key: a drop past its key's detail
 * limit never builds the (larger) event.
 */
struct parsed {
	struct dt_key k;
	__u16 l3_proto;
	__u8 flags;
	__u32 payload; /* the drop program's: where the payload to keep starts (parse_headers), or 0 */
};

/*
 * The drop program's struct parsed, per CPU (the drop program never runs twice at once on one
 * CPU). On the stack, every header parser's path left it in its own state (a flag, a protocol
 * a comparison made a constant, a payload offset), which the verifier told apart through the
 * whole rest of the program, walked once per path: past 6.1's limit once three features
 * shared it. Map memory is not tracked: the paths meet again right after the parser.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct parsed);
} parse_scratch SEC(".maps");

/* L4 fields from the first four bytes of the L4 header (ports, or ICMP type and code). */
static __always_inline void l4_fields(struct parsed *e, __u8 proto, const __be16 *w)
{
	e->k.l4_proto = proto;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		e->k.sport = bpf_ntohs(w[0]);
		e->k.dport = bpf_ntohs(w[1]);
		e->flags |= DT_F_L4;
	} else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
		const __u8 *tc = (const __u8 *)w;
		e->k.icmp_type = tc[0];
		e->k.icmp_code = tc[1];
		e->flags |= DT_F_L4;
	}
}

/*
 * Packet positions are offsets from skb->head, not pointers: under tp_btf skb->head is an
 * untrusted pointer the verifier keeps as one through any arithmetic, and a length made from
 * two of them could not be a helper's size.
 *
 * `end` is where the packet's readable bytes stop: skb->tail (the end of the linear area,
 * which is skb->data + skb->len - skb->data_len, so never past skb->len), lowered to the end
 * the IP header gives when that is shorter (link-layer padding before the IP layer trims it).
 * A header not wholly before `end` is in page fragments or not in the packet at all: it is
 * not read (its memory holds another packet's bytes), and the drop says DT_F_TRUNCATED.
 */

/* Where a DNS (port 53) payload starts (offset from head), or 0: only then is it worth a read. */
static __always_inline __u32 dns_payload(struct parsed *e, unsigned char *head, __u32 l4, __u32 end)
{
	if (!(e->flags & DT_F_L4) || (e->k.sport != 53 && e->k.dport != 53))
		return 0;
	if (e->k.l4_proto == IPPROTO_UDP)
		return l4 + 8;
	if (e->k.l4_proto != IPPROTO_TCP)
		return 0;
	__u8 doff;
	if (l4 + 13 > end || bpf_probe_read_kernel(&doff, 1, head + l4 + 12))
		return 0;
	return l4 + (doff >> 4) * 4;
}

/* The L4 header somewhere else than right after a plain IP header: one more read. */
static __always_inline __u32 parse_l4_at(struct parsed *e, unsigned char *head, __u32 l4, __u32 end, __u8 proto)
{
	__be16 w[2];
	e->k.l4_proto = proto;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMP && proto != IPPROTO_ICMPV6)
		return 0;
	if (l4 + sizeof(w) > end || bpf_probe_read_kernel(w, sizeof(w), head + l4)) {
		e->flags |= DT_F_TRUNCATED;
		return 0;
	}
	l4_fields(e, proto, w);
	return dns_payload(e, head, l4, end);
}

/* An IP header and the first L4 bytes after it, read at once (one helper call, not two). */
struct v4_head {
	struct iphdr ip;
	__be16 l4[2];
};
struct v6_head {
	struct ipv6hdr ip;
	__be16 l4[2];
};

#define IPPROTO_AH 51
/* IPv6 extension headers walked to find L4; a longer chain is reported as truncated. */
#define DT_V6_EXT_MAX 8

static __always_inline bool v6_ext(__u8 next)
{
	return next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS ||
	       next == IPPROTO_FRAGMENT || next == IPPROTO_AH;
}

/*
 * The IP header at nh_off (an offset from head; `proto` the ethertype) and its L4 header:
 * fills addresses, ports and flags. Returns where a DNS payload starts, or 0. Used for the
 * packet itself and for a tunnel's inner packet.
 */
static __always_inline __u32 parse_ip(struct parsed *e, unsigned char *head, __u32 nh_off, __u32 end, __u16 proto)
{
	__u32 payload = 0;

	if (!nh_off || nh_off >= end)
		goto truncated;
	__u32 have = end - nh_off;
	unsigned char *nh = head + nh_off;

	if (proto == ETH_P_IP) {
		struct v4_head h;
		if (have >= sizeof(h)) {
			if (bpf_probe_read_kernel(&h, sizeof(h), nh))
				goto truncated;
		} else if (have < sizeof(h.ip) || bpf_probe_read_kernel(&h.ip, sizeof(h.ip), nh)) {
			goto truncated;
		}
		if (h.ip.version != 4 || h.ip.ihl < 5)
			goto truncated;
		e->flags |= DT_F_IPV4;
		__builtin_memcpy(e->k.saddr, &h.ip.saddr, 4);
		__builtin_memcpy(e->k.daddr, &h.ip.daddr, 4);
		__u32 tot = bpf_ntohs(h.ip.tot_len);
		/* 0: a GSO packet past 64 KiB (BIG TCP) says its length only in skb->len */
		if (tot && tot < have)
			end = nh_off + tot;
		e->k.l4_proto = h.ip.protocol;
		/* Only the first fragment carries the L4 header. */
		if (h.ip.frag_off & bpf_htons(0x1fff))
			return 0;
		__u32 l4 = nh_off + h.ip.ihl * 4;
		if (h.ip.ihl == 5 && l4 + sizeof(h.l4) <= end) {
			l4_fields(e, h.ip.protocol, h.l4);
			payload = dns_payload(e, head, l4, end);
		} else {
			payload = parse_l4_at(e, head, l4, end, h.ip.protocol);
		}
	} else {
		struct v6_head h;
		if (have >= sizeof(h)) {
			if (bpf_probe_read_kernel(&h, sizeof(h), nh))
				goto truncated;
		} else if (have < sizeof(h.ip) || bpf_probe_read_kernel(&h.ip, sizeof(h.ip), nh)) {
			goto truncated;
		}
		if (h.ip.version != 6)
			goto truncated;
		e->flags |= DT_F_IPV6;
		__builtin_memcpy(e->k.saddr, &h.ip.saddr, 16);
		__builtin_memcpy(e->k.daddr, &h.ip.daddr, 16);
		__u32 plen = bpf_ntohs(h.ip.payload_len);
		/* 0: a jumbogram or BIG TCP GSO packet, its length only in skb->len */
		if (plen && plen + sizeof(h.ip) < have)
			end = nh_off + sizeof(h.ip) + plen;
		__u8 next = h.ip.nexthdr;
		__u32 p = nh_off + sizeof(h.ip);
		if (!v6_ext(next)) {
			if (p + sizeof(h.l4) <= end) {
				l4_fields(e, next, h.l4);
				return dns_payload(e, head, p, end);
			}
			return parse_l4_at(e, head, p, end, next);
		}
#pragma unroll
		for (int i = 0; i < DT_V6_EXT_MAX; i++) {
			if (!v6_ext(next))
				break;
			/* next header, length, and (fragment header) the offset; every one is >= 8 bytes */
			__u8 ext[4];
			if (p + 8 > end || bpf_probe_read_kernel(ext, sizeof(ext), head + p)) {
				e->k.l4_proto = next;
				goto truncated;
			}
			if (next == IPPROTO_FRAGMENT) {
				if ((ext[2] << 8 | ext[3]) & 0xfff8) {
					e->k.l4_proto = ext[0];
					return 0; /* not the first fragment: no L4 header */
				}
				p += 8;
			} else if (next == IPPROTO_AH) {
				p += (ext[1] + 2) * 4;
			} else {
				p += (ext[1] + 1) * 8;
			}
			if (p > end) {
				e->k.l4_proto = next; /* this header runs past the packet's end */
				goto truncated;
			}
			next = ext[0];
		}
		if (v6_ext(next)) {
			e->k.l4_proto = next;
			goto truncated;
		}
		payload = parse_l4_at(e, head, p, end, next);
	}
	return payload;
truncated:
	e->flags |= DT_F_TRUNCATED;
	return 0;
}

/*
 * Fills addresses and ports; returns where the payload to keep starts (offset from head: a
 * DNS message, or the IP header when `keep_l3`, for --pcap), or 0.
 *
 * IP is parsed only when skb->protocol says IPv4 or IPv6. A VLAN tag is the kernel's to
 * take off: on receive the core moves an in-packet 802.1Q/802.1ad tag into skb->vlan_tci
 * (skb_vlan_untag) before any protocol handler runs and points the network header past it,
 * and on transmit the tag stays there until just before the driver; either way skb->protocol
 * is then the inner one. A drop that still says 0x8100/0x88a8 (a stacked inner tag nobody
 * claimed, a driver drop after the tag went into the data) is one the kernel never treated
 * as IP, and where its network header points differs by path: it gets no flow.
 */
static __always_inline __u32 parse_headers(struct parsed *e, struct sk_buff *skb, unsigned char *head,
					   const bool keep_l3, const bool direct)
{
	__u16 nh_off = RD(skb, network_header);
	__u16 proto = bpf_ntohs(RD(skb, protocol));

	e->l3_proto = proto;
	if (proto != ETH_P_IP && proto != ETH_P_IPV6)
		return 0;
	/* network_header 0: never set (an skb is allocated with it at head) */
	__u32 payload = parse_ip(e, head, nh_off, RD(skb, tail), proto);
	if (keep_l3) {
		e->flags |= DT_F_PAYLOAD_L3;
		return nh_off;
	}
	return payload;
}

#include "encap.bpf.h"

#endif

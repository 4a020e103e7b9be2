// SPDX-License-Identifier: GPL-2.0
/*
 * droptrace kernel side: one program per way of reaching skb:kfree_skb (tp_btf where BTF
 * allows, the classic tracepoint as the floor); the loader keeps exactly one of them.
 * Every drop is counted exactly in per-CPU maps; detail goes through the ring buffer, and a
 * reserve failure is itself counted, never silently lost.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "droptrace.h"

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

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader between open and load. */
const volatile __u32 filter_netns = 0; /* 0: every namespace */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DT_REASON_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} reason_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DT_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += 1;
}

static __always_inline __u32 skb_netns(struct sk_buff *skb, struct net_device *dev, __u8 *flags)
{
	if (dev)
		return BPF_CORE_READ(dev, nd_net.net, ns.inum);
	struct sock *sk = BPF_CORE_READ(skb, sk);
	if (sk) {
		*flags |= DT_F_NETNS_FROM_SK;
		return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	}
	return 0;
}

static __always_inline void parse_l4(struct dt_event *e, unsigned char *l4, __u8 proto)
{
	e->l4_proto = proto;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		__be16 ports[2];
		if (bpf_probe_read_kernel(ports, sizeof(ports), l4)) {
			e->flags |= DT_F_TRUNCATED;
			return;
		}
		e->sport = bpf_ntohs(ports[0]);
		e->dport = bpf_ntohs(ports[1]);
		e->flags |= DT_F_L4;
	} else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
		__u8 tc[2];
		if (bpf_probe_read_kernel(tc, sizeof(tc), l4)) {
			e->flags |= DT_F_TRUNCATED;
			return;
		}
		e->icmp_type = tc[0];
		e->icmp_code = tc[1];
		e->flags |= DT_F_L4;
	}
}

static __always_inline void parse_headers(struct dt_event *e, struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh_off = BPF_CORE_READ(skb, network_header);
	__u16 proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	unsigned char *nh = head + nh_off;
	__u8 first;

	e->l3_proto = proto;
	/* Locally generated packets can be dropped before skb->protocol is set: trust the
	 * version nibble when the network header was set. */
	if (proto != ETH_P_IP && proto != ETH_P_IPV6) {
		if (!nh_off || bpf_probe_read_kernel(&first, 1, nh))
			return;
		if ((first >> 4) == 4)
			proto = ETH_P_IP;
		else if ((first >> 4) == 6)
			proto = ETH_P_IPV6;
		else
			return;
		e->l3_proto = proto;
	}

	if (proto == ETH_P_IP) {
		struct iphdr iph;
		if (bpf_probe_read_kernel(&iph, sizeof(iph), nh) || iph.version != 4 || iph.ihl < 5) {
			e->flags |= DT_F_TRUNCATED;
			return;
		}
		e->flags |= DT_F_IPV4;
		__builtin_memcpy(e->saddr, &iph.saddr, 4);
		__builtin_memcpy(e->daddr, &iph.daddr, 4);
		/* Only the first fragment carries the L4 header. */
		if (iph.frag_off & bpf_htons(0x1fff))
			return;
		parse_l4(e, nh + iph.ihl * 4, iph.protocol);
	} else {
		struct ipv6hdr ip6;
		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), nh) || ip6.version != 6) {
			e->flags |= DT_F_TRUNCATED;
			return;
		}
		e->flags |= DT_F_IPV6;
		__builtin_memcpy(e->saddr, &ip6.saddr, 16);
		__builtin_memcpy(e->daddr, &ip6.daddr, 16);
		__u8 next = ip6.nexthdr;
		unsigned char *p = nh + sizeof(ip6);
#pragma unroll
		for (int i = 0; i < 4; i++) {
			__u8 ext[2];
			if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS &&
			    next != IPPROTO_FRAGMENT)
				break;
			if (bpf_probe_read_kernel(ext, sizeof(ext), p)) {
				e->flags |= DT_F_TRUNCATED;
				return;
			}
			if (next == IPPROTO_FRAGMENT) {
				__be16 off;
				if (bpf_probe_read_kernel(&off, sizeof(off), p + 2) ||
				    (off & bpf_htons(0xfff8)))
					return; /* not the first fragment: no L4 header */
				next = ext[0];
				p += 8;
			} else {
				next = ext[0];
				p += (ext[1] + 1) * 8;
			}
		}
		parse_l4(e, p, next);
	}
}

static __always_inline int handle_drop(struct sk_buff *skb, void *location, __u32 reason, __u8 probe)
{
	/* Kernels that report consumed (not dropped) skbs here: skip them. */
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
		return 0;

	struct net_device *dev = BPF_CORE_READ(skb, dev);
	__u8 flags = 0;
	__u32 netns = skb_netns(skb, dev, &flags);
	if (filter_netns && netns != filter_netns)
		return 0;

	__u32 slot = reason < DT_REASON_SLOTS ? reason : DT_REASON_SLOTS - 1;
	__u64 *cnt = bpf_map_lookup_elem(&reason_counts, &slot);
	if (cnt)
		*cnt += 1;
	stat_inc(DT_STAT_SEEN);

	struct dt_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(DT_STAT_RB_LOST);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->location = (__u64)location;
	e->version = DT_EVENT_VERSION;
	e->reason = reason;
	e->netns = netns;
	e->flags = flags;
	e->probe = probe;
	__u32 len = BPF_CORE_READ(skb, len);
	e->pkt_len = len > 0xffff ? 0xffff : len;
	if (dev) {
		e->ifindex = BPF_CORE_READ(dev, ifindex);
		bpf_probe_read_kernel_str(e->ifname, sizeof(e->ifname), dev->name);
	}
	parse_headers(e, skb);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(dt_kfree_skb_btf, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	return handle_drop(skb, location, reason, 1);
}

SEC("tracepoint/skb/kfree_skb")
int dt_kfree_skb_tp(struct trace_event_raw_kfree_skb *ctx)
{
	return handle_drop(ctx->skbaddr, ctx->location, ctx->reason, 2);
}

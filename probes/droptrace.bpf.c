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
#define NFCT_PTRMASK (~7UL)
/* uapi IPV4_DEVCONF_* (stable ABI) minus one: index into ipv4_devconf.data[] */
#define DEVCONF_RP_FILTER 7
#define DEVCONF_LOG_MARTIANS 10

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader between open and load. */
const volatile __u32 filter_netns = 0; /* 0: every namespace */
const volatile __u8 capture_l3 = 0;   /* keep the first DT_PAYLOAD_MAX bytes from the IP header (--pcap) */
const volatile __u32 key_burst = 0;    /* detail events per key per window per CPU; 0: no limit */
const volatile __u64 key_window_ns = 1000000000ULL;

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

#include "shared_maps.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct dt_key);
	__type(value, struct dt_key_val);
} key_counts SEC(".maps");

struct ct_baseline {
	__u32 netns;
	__u32 drop;
	__u32 insert_failed;
	__u32 invalid;
};

#define CT_BASELINE_SLOTS 4096
/*
 * conntrack counters of a netns at the last NETFILTER_DROP seen there, per CPU, in the slot
 * netns % CT_BASELINE_SLOTS (an array: no hashing or allocation on the drop path). Two netns
 * sharing a slot only cost each other their baseline ("no baseline" is said, not guessed).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CT_BASELINE_SLOTS);
	__type(key, __u32);
	__type(value, struct ct_baseline);
} ct_baselines SEC(".maps");

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += 1;
}

static __always_inline struct net *skb_net(struct sk_buff *skb, struct net_device *dev, __u8 *flags)
{
	if (dev)
		return BPF_CORE_READ(dev, nd_net.net);
	struct sock *sk = BPF_CORE_READ(skb, sk);
	if (sk) {
		*flags |= DT_F_NETNS_FROM_SK;
		return BPF_CORE_READ(sk, __sk_common.skc_net.net);
	}
	return 0;
}

static __always_inline void parse_l4(struct dt_event *e, unsigned char *l4, __u8 proto, unsigned char *end,
				     unsigned char **payload)
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
		if (e->sport != 53 && e->dport != 53)
			return;
		if (proto == IPPROTO_UDP) {
			*payload = l4 + 8;
		} else {
			__u8 doff;
			if (bpf_probe_read_kernel(&doff, 1, l4 + 12))
				return;
			*payload = l4 + (doff >> 4) * 4;
		}
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

/* Fills addresses and ports; returns where a DNS payload starts, or NULL. */
static __always_inline unsigned char *parse_headers(struct dt_event *e, struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh_off = BPF_CORE_READ(skb, network_header);
	__u16 proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	unsigned char *nh = head + nh_off;
	unsigned char *end = head + BPF_CORE_READ(skb, tail);
	unsigned char *payload = 0;
	__u8 first;

	e->l3_proto = proto;
	/* Locally generated packets can be dropped before skb->protocol is set: trust the
	 * version nibble when the network header was set. */
	if (proto != ETH_P_IP && proto != ETH_P_IPV6) {
		if (!nh_off || bpf_probe_read_kernel(&first, 1, nh))
			return 0;
		if ((first >> 4) == 4)
			proto = ETH_P_IP;
		else if ((first >> 4) == 6)
			proto = ETH_P_IPV6;
		else
			return 0;
		e->l3_proto = proto;
	}

	if (proto == ETH_P_IP) {
		struct iphdr iph;
		if (bpf_probe_read_kernel(&iph, sizeof(iph), nh) || iph.version != 4 || iph.ihl < 5) {
			e->flags |= DT_F_TRUNCATED;
			return 0;
		}
		e->flags |= DT_F_IPV4;
		__builtin_memcpy(e->saddr, &iph.saddr, 4);
		__builtin_memcpy(e->daddr, &iph.daddr, 4);
		/* Only the first fragment carries the L4 header. */
		if (iph.frag_off & bpf_htons(0x1fff))
			return 0;
		parse_l4(e, nh + iph.ihl * 4, iph.protocol, end, &payload);
	} else {
		struct ipv6hdr ip6;
		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), nh) || ip6.version != 6) {
			e->flags |= DT_F_TRUNCATED;
			return 0;
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
				return 0;
			}
			if (next == IPPROTO_FRAGMENT) {
				__be16 off;
				if (bpf_probe_read_kernel(&off, sizeof(off), p + 2) ||
				    (off & bpf_htons(0xfff8)))
					return 0; /* not the first fragment: no L4 header */
				next = ext[0];
				p += 8;
			} else {
				next = ext[0];
				p += (ext[1] + 1) * 8;
			}
		}
		parse_l4(e, p, next, end, &payload);
	}
	if (capture_l3) {
		e->flags |= DT_F_PAYLOAD_L3;
		return nh;
	}
	if (payload && payload < end)
		return payload;
	return 0;
}

/*
 * This CPU's per-CPU offset, without kallsyms data symbols or percpu BTF tags (neither is
 * there on every kernel): the difference between this CPU's copy of element 0 of our own
 * per-CPU array (from a lookup) and that element's __percpu address (bpf_array.pptrs[0]).
 * Both pointers go through the stack to become plain numbers.
 */
static __always_inline unsigned long this_cpu_offset(void)
{
	__u32 zero = 0;
	void *mine = bpf_map_lookup_elem(&stats, &zero);
	if (!mine)
		return 0;
	void *map = &stats;
	unsigned long mine_addr = 0, map_addr = 0, pcpu = 0;
	bpf_probe_read_kernel(&mine_addr, sizeof(mine_addr), &mine);
	bpf_probe_read_kernel(&map_addr, sizeof(map_addr), &map);
	if (bpf_probe_read_kernel(&pcpu, sizeof(pcpu),
				  (void *)(map_addr + bpf_core_field_offset(struct bpf_array, pptrs))))
		return 0;
	return mine_addr - pcpu;
}

/*
 * Was it conntrack that dropped this NETFILTER_DROP, and how? The skb's own conntrack
 * entry, and whether this CPU's conntrack counters in this netns rose since the last
 * NETFILTER_DROP here (the counter is bumped in the same call chain, just before the drop).
 */
static __always_inline __u8 ct_flags_of(struct sk_buff *skb, struct net *net, __u32 netns)
{
	__u8 f = 0;
	unsigned long nfct = 0;

	if (bpf_core_field_exists(skb->_nfct))
		nfct = BPF_CORE_READ(skb, _nfct);
	struct nf_conn *ct = (struct nf_conn *)(nfct & NFCT_PTRMASK);
	if (ct) {
		f |= DT_CT_HAS_CT;
		if (BPF_CORE_READ(ct, status) & (1UL << 3 /* IPS_CONFIRMED_BIT */))
			f |= DT_CT_CONFIRMED;
	}
	if (!net || !bpf_core_field_exists(net->ct))
		return f;
	void *pstat = BPF_CORE_READ(net, ct.stat);
	if (!pstat)
		return f;
	f |= DT_CT_ACTIVE;
	unsigned long off = this_cpu_offset();
	if (!off)
		return f;
	struct ip_conntrack_stat *st = (void *)((unsigned long)pstat + off);
	__u32 drop = BPF_CORE_READ(st, drop);
	__u32 insert_failed = BPF_CORE_READ(st, insert_failed);
	__u32 invalid = BPF_CORE_READ(st, invalid);
	__u32 slot = netns % CT_BASELINE_SLOTS;
	struct ct_baseline *old = bpf_map_lookup_elem(&ct_baselines, &slot);
	if (!old)
		return f;
	if (old->netns != netns) {
		/* first drop here on this CPU (or the slot's other netns had it): compare with 0 */
		f |= DT_CT_NO_BASELINE;
		old->netns = netns;
		old->drop = 0;
		old->insert_failed = 0;
		old->invalid = 0;
	}
	if (drop != old->drop)
		f |= DT_CT_DROP_ROSE;
	if (insert_failed != old->insert_failed)
		f |= DT_CT_INSERT_FAILED_ROSE;
	if (invalid != old->invalid)
		f |= DT_CT_INVALID_ROSE;
	old->drop = drop;
	old->insert_failed = insert_failed;
	old->invalid = invalid;
	return f;
}

static __always_inline void martian_conf(struct dt_event *e, struct net_device *dev, struct net *net)
{
	struct in_device *idev = BPF_CORE_READ(dev, ip_ptr);
	struct ipv4_devconf *all = BPF_CORE_READ(net, ipv4.devconf_all);
	if (!idev || !all)
		return;
	int log_dev = BPF_CORE_READ(idev, cnf.data[DEVCONF_LOG_MARTIANS]);
	int log_all = BPF_CORE_READ(all, data[DEVCONF_LOG_MARTIANS]);
	int rp_dev = BPF_CORE_READ(idev, cnf.data[DEVCONF_RP_FILTER]);
	int rp_all = BPF_CORE_READ(all, data[DEVCONF_RP_FILTER]);
	e->martian_conf = DT_M_KNOWN | (log_all ? DT_M_LOG_ALL : 0) | (log_dev ? DT_M_LOG_DEV : 0);
	e->rp_filter = rp_dev > rp_all ? rp_dev : rp_all;
}

static __always_inline int handle_drop(struct sk_buff *skb, void *location, __u32 reason, __u8 probe)
{
	/* Kernels that report consumed (not dropped) skbs here: skip them. */
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
		return 0;

	struct net_device *dev = BPF_CORE_READ(skb, dev);
	__u8 flags = 0;
	struct net *net = skb_net(skb, dev, &flags);
	__u32 netns = net ? BPF_CORE_READ(net, ns.inum) : 0;
	if (filter_netns && netns != filter_netns)
		return 0;

	__u32 slot = reason < DT_REASON_SLOTS ? reason : DT_REASON_SLOTS - 1;
	__u64 *cnt = bpf_map_lookup_elem(&reason_counts, &slot);
	if (cnt)
		*cnt += 1;
	stat_inc(DT_STAT_SEEN);

	/* The conntrack baseline must move with every NETFILTER_DROP, even one whose detail
	 * is lost, so it is read before the reservation. */
	__u8 ct = 0;
	int is_nf = bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_NETFILTER_DROP) &&
		    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NETFILTER_DROP);
	if (is_nf)
		ct = ct_flags_of(skb, net, netns);

	/* Built on the stack, then copied into a record of the right size: drops with a DNS
	 * payload take a larger record, every other drop the plain one. */
	struct dt_event ev;
	__builtin_memset(&ev, 0, sizeof(ev));
	ev.ts_ns = bpf_ktime_get_ns();
	ev.location = (__u64)location;
	ev.version = DT_EVENT_VERSION;
	ev.size = sizeof(ev);
	ev.reason = reason;
	ev.netns = netns;
	ev.flags = flags;
	ev.probe = probe;
	ev.ct_flags = ct;
	if (dev)
		ev.ifindex = BPF_CORE_READ(dev, ifindex);
	unsigned char *payload = parse_headers(&ev, skb);

	/* Exact count per key; past the burst, the drop is counted but sends no detail. */
	struct dt_key k = {
		.reason = reason,
		.netns = netns,
		.ifindex = ev.ifindex,
		.sport = ev.sport,
		.dport = ev.dport,
		.l4_proto = ev.l4_proto,
		.icmp_type = ev.icmp_type,
		.icmp_code = ev.icmp_code,
		.ip_version = (ev.flags & DT_F_IPV4) ? 4 : (ev.flags & DT_F_IPV6) ? 6 : 0,
	};
	__builtin_memcpy(k.saddr, ev.saddr, 16);
	__builtin_memcpy(k.daddr, ev.daddr, 16);
	struct dt_key_val *kv = bpf_map_lookup_elem(&key_counts, &k);
	if (!kv) {
		struct dt_key_val init = { .window_ns = ev.ts_ns };
		bpf_map_update_elem(&key_counts, &k, &init, BPF_NOEXIST);
		kv = bpf_map_lookup_elem(&key_counts, &k);
	}
	if (kv) {
		kv->count += 1;
		if (key_burst) {
			if (ev.ts_ns - kv->window_ns >= key_window_ns) {
				kv->window_ns = ev.ts_ns;
				kv->window_sent = 0;
			}
			if (kv->window_sent >= key_burst) {
				kv->suppressed += 1;
				stat_inc(DT_STAT_SUPPRESSED);
				return 0;
			}
			kv->window_sent += 1;
		}
	}

	/* Only drops that send detail pay for the rest. */
	__u32 len = BPF_CORE_READ(skb, len);
	ev.pkt_len = len > 0xffff ? 0xffff : len;
	if (dev)
		bpf_probe_read_kernel_str(ev.ifname, sizeof(ev.ifname), dev->name);
	__u32 zero = 0;
	struct dt_recent *r = bpf_map_lookup_elem(&recent, &zero);
	if (r) {
		__u64 now = ev.ts_ns;
		if (r->neigh_fail_ns && now - r->neigh_fail_ns < DT_RECENT_NS) {
			ev.neigh_family = r->neigh_family;
			ev.neigh_entries = r->neigh_entries;
			__builtin_memcpy(ev.neigh_key, r->neigh_key, 16);
		}
		if (is_nf && r->ct_alloc_fail_ns && now - r->ct_alloc_fail_ns < DT_RECENT_NS)
			ev.ct_flags |= DT_CT_ALLOC_FAILED;
		if (r->martian_src_ns && now - r->martian_src_ns < DT_RECENT_NS)
			ev.martian_conf |= DT_M_SOURCE_SEEN;
	}
	if (dev && (ev.flags & DT_F_IPV4) && net)
		martian_conf(&ev, dev, net);

	if (!payload) {
		struct dt_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (!e) {
			stat_inc(DT_STAT_RB_LOST);
			if (kv)
				kv->suppressed += 1;
			return 0;
		}
		*e = ev;
		bpf_ringbuf_submit(e, 0);
		return 0;
	}

	struct dt_event_payload *ep = bpf_ringbuf_reserve(&events, sizeof(*ep), 0);
	if (!ep) {
		stat_inc(DT_STAT_RB_LOST);
		if (kv)
			kv->suppressed += 1;
		return 0;
	}
	unsigned char *end = BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, tail);
	long n = end - payload;
	if (n > DT_PAYLOAD_MAX)
		n = DT_PAYLOAD_MAX;
	if (n > 0 && !bpf_probe_read_kernel(ep->payload, n & 0xff, payload)) {
		ev.payload_len = n;
		ev.size = sizeof(ev) + n;
	}
	ep->ev = ev;
	bpf_ringbuf_submit(ep, 0);
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

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

/*
 * Types only userspace reads (the ring-buffer record, the flag and counter enums), kept in
 * this object's BTF for scripts/gen-record.mjs, as bpf2go users keep theirs: never used here.
 */
struct dt_event *const dt_btf_event __attribute__((unused)) = 0;
enum dt_const *const dt_btf_const __attribute__((unused)) = 0;
enum dt_flag *const dt_btf_flag __attribute__((unused)) = 0;
enum dt_ct_flag *const dt_btf_ct_flag __attribute__((unused)) = 0;
enum dt_martian_flag *const dt_btf_martian_flag __attribute__((unused)) = 0;
enum dt_stat *const dt_btf_stat __attribute__((unused)) = 0;

/* Set by the loader between open and load. */
const volatile __u32 filter_netns = 0; /* 0: every namespace */
const volatile __u8 capture_l3 = 0;   /* keep the first DT_PAYLOAD_MAX bytes from the IP header (--pcap) */
const volatile __u32 key_burst = 0;    /* detail events per key per window per CPU; 0: no limit */
const volatile __u64 key_window_ns = 1000000000ULL;
const volatile __u64 wake_bytes = 2 << 20; /* a quarter of the ring: set by the loader from its size */

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

#define DT_KEY_ENTRIES 65536
/*
 * One entry per key shared by every CPU (counts added atomically): its memory is
 * DT_KEY_ENTRIES entries whatever the CPU count, where a per-CPU value would cost
 * entries x value x CPUs (256 MiB at 128 CPUs). src/native/map-memory.ts states the budget.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DT_KEY_ENTRIES);
	__type(key, struct dt_key);
	__type(value, struct dt_key_val);
} key_counts SEC(".maps");

struct ct_baseline {
	__u32 netns;
	__u32 drop;
	__u32 insert_failed;
	__u32 invalid;
	__u64 net;   /* the struct net this slot's netns had ... */
	__u64 pstat; /* ... and its net->ct.stat, which lives as long as the netns */
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

/*
 * This CPU's per-CPU offset, once found (see this_cpu_offset): it never changes while the
 * CPU is up, and finding it takes three probe reads.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cpu_off SEC(".maps");

/*
 * When this CPU last woke the reader. Waking it (an irq_work, then a thread wake-up) costs
 * several times a whole drop's program: in a flood, records are submitted quietly and the
 * reader is woken at most every DT_WAKE_NS, or at once when a quarter of the ring is used;
 * its own 100 ms poll picks up the rest. A lone drop still wakes it at once.
 */
#define DT_WAKE_NS 2000000ULL
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} last_wake SEC(".maps");

static __always_inline __u64 wake_flags(__u64 now)
{
	__u32 zero = 0;
	__u64 *last = bpf_map_lookup_elem(&last_wake, &zero);
	if (!last)
		return 0;
	if (now - *last >= DT_WAKE_NS) {
		*last = now;
		return BPF_RB_FORCE_WAKEUP;
	}
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > wake_bytes) {
		*last = now;
		return BPF_RB_FORCE_WAKEUP;
	}
	return BPF_RB_NO_WAKEUP;
}

/*
 * One field of a kernel object. Under tp_btf (`direct`, a constant after inlining) the
 * arguments are BTF pointers: a plain load, which the verifier turns into a fault-safe one,
 * costs next to nothing; under the classic tracepoint they are bare numbers and each read is
 * a bpf_probe_read_kernel call (~20 ns apiece here, the bulk of a drop's cost before).
 */
#define RD(p, f) (direct ? (p)->f : BPF_CORE_READ(p, f))

/*
 * The clock of the per-key rate-limit windows. A tick of precision is plenty for a one-second
 * window, and jiffies cost next to nothing where bpf_ktime_get_ns costs ~60 ns a call on the
 * VMs measured (a quarter of a drop's program). Jiffies need HZ, which only the kernel's
 * config file says, and a container often cannot read it: so the first half second of drops
 * measures the length of a jiffy against the precise clock, using the precise clock
 * meanwhile. (The switch moves the clock's origin once: every window restarts once.)
 */
#define CAL_NS 500000000ULL
struct clock_cal {
	__u64 j0;
	__u64 t0;
	__u64 ns_per_jiffy; /* 0 while measuring */
};
/* shared by all CPUs: the key windows it times are shared, so every CPU must read one clock */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct clock_cal);
} clock_cal SEC(".maps");

static __always_inline __u64 window_clock(void)
{
	__u32 zero = 0;
	struct clock_cal *c = bpf_map_lookup_elem(&clock_cal, &zero);
	__u64 j = bpf_jiffies64();
	if (c && c->ns_per_jiffy)
		return j * c->ns_per_jiffy;
	__u64 t = bpf_ktime_get_ns();
	if (!c)
		return t;
	if (!c->t0) {
		c->j0 = j;
		c->t0 = t;
	} else if (t - c->t0 >= CAL_NS && j > c->j0) {
		c->ns_per_jiffy = (t - c->t0) / (j - c->j0);
	}
	return t;
}

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += 1;
}

static __always_inline struct net *skb_net(struct sk_buff *skb, struct net_device *dev, __u8 *flags,
					    const bool direct)
{
	if (dev)
		return RD(dev, nd_net.net);
	struct sock *sk = RD(skb, sk);
	if (sk) {
		*flags |= DT_F_NETNS_FROM_SK;
		return RD(sk, __sk_common.skc_net.net);
	}
	return 0;
}

/*
 * What the headers say, straight into the per-key counter key: a drop past its key's detail
 * limit never builds the (larger) event.
 */
struct parsed {
	struct dt_key k;
	__u16 l3_proto;
	__u8 flags;
};

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
 * Fills addresses and ports; returns where the payload to keep starts (offset from head: a
 * DNS message, or the IP header for --pcap), or 0.
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
					   const bool direct)
{
	__u16 nh_off = RD(skb, network_header);
	__u16 proto = bpf_ntohs(RD(skb, protocol));
	__u32 payload = 0;

	e->l3_proto = proto;
	if (proto != ETH_P_IP && proto != ETH_P_IPV6)
		return 0;
	/* network_header 0: never set (an skb is allocated with it at head) */
	__u32 end = RD(skb, tail);
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
			goto out;
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
				payload = dns_payload(e, head, p, end);
			} else {
				payload = parse_l4_at(e, head, p, end, next);
			}
			goto out;
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
					goto out; /* not the first fragment: no L4 header */
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
out:
	if (capture_l3) {
		e->flags |= DT_F_PAYLOAD_L3;
		return nh_off;
	}
	return payload;
truncated:
	e->flags |= DT_F_TRUNCATED;
	goto out;
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
	__u64 *cached = bpf_map_lookup_elem(&cpu_off, &zero);
	if (cached && *cached)
		return *cached;
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
	if (cached)
		*cached = mine_addr - pcpu;
	return mine_addr - pcpu;
}

/* Room for struct ip_conntrack_stat as any kernel lays it out (13-17 __u32 so far). */
#define CT_STAT_BUF 96

/*
 * Was it conntrack that dropped this NETFILTER_DROP, and how? The skb's own conntrack
 * entry, and whether this CPU's conntrack counters in this netns rose since the last
 * NETFILTER_DROP here (the counter is bumped in the same call chain, just before the drop).
 */
static __always_inline __u8 ct_flags_of(struct sk_buff *skb, struct net *net, __u32 netns, const bool direct)
{
	__u8 f = 0;
	unsigned long nfct = 0;

	if (bpf_core_field_exists(skb->_nfct))
		nfct = RD(skb, _nfct);
	struct nf_conn *ct = (struct nf_conn *)(nfct & NFCT_PTRMASK);
	if (ct)
		f |= DT_CT_HAS_CT;
	if (!net || !bpf_core_field_exists(net->ct))
		return f;
	/*
	 * Conntrack at work in a netns (an iptables or nftables state match, NAT, ...) first
	 * enables defragmentation there (nf_ct_netns_get -> nf_defrag_ipv4/6_enable): a netns
	 * with no defrag user has no conntrack hooks, so its counters cannot have moved and this
	 * drop, carrying no conntrack entry, is not conntrack's. It skips reading them (a probe
	 * read, ~35 ns: a sixth of the drop's program) and leaves its baseline as it was.
	 */
	if (!ct && bpf_core_field_exists(net->nf.defrag_ipv4_users) && bpf_core_field_exists(net->nf.defrag_ipv6_users) &&
	    !RD(net, nf.defrag_ipv4_users) && !RD(net, nf.defrag_ipv6_users))
		return f;
	__u32 slot = netns % CT_BASELINE_SLOTS;
	struct ct_baseline *old = bpf_map_lookup_elem(&ct_baselines, &slot);
	if (!old)
		return f;
	/* net->ct.stat of this slot's netns, read once: the same struct net (a reused inode
	 * number comes with another one) keeps the same counters */
	__u64 pstat;
	if (old->netns == netns && old->net == (__u64)net && old->pstat) {
		pstat = old->pstat;
	} else {
		/* a number, not a pointer: the verifier allows no offset math on an untrusted pointer */
		pstat = (__u64)BPF_CORE_READ(net, ct.stat);
		if (!pstat)
			return f;
	}
	f |= DT_CT_ACTIVE;
	unsigned long off = this_cpu_offset();
	if (!off)
		return f;
	/* the three counters in one read of this CPU's copy: the span from the first to the last
	 * of them, at their CO-RE offsets (constants once loaded) */
	__u8 buf[CT_STAT_BUF];
	__u32 o_drop = bpf_core_field_offset(struct ip_conntrack_stat, drop);
	__u32 o_insf = bpf_core_field_offset(struct ip_conntrack_stat, insert_failed);
	__u32 o_inv = bpf_core_field_offset(struct ip_conntrack_stat, invalid);
	__u32 lo = o_drop < o_insf ? o_drop : o_insf;
	lo = lo < o_inv ? lo : o_inv;
	__u32 hi = o_drop > o_insf ? o_drop : o_insf;
	hi = hi > o_inv ? hi : o_inv;
	if (hi - lo > CT_STAT_BUF - 4)
		return f;
	o_drop -= lo;
	o_insf -= lo;
	o_inv -= lo;
	if (bpf_probe_read_kernel(buf, hi - lo + 4, (void *)(pstat + off + lo)))
		return f;
	__u32 drop = *(__u32 *)(buf + o_drop);
	__u32 insert_failed = *(__u32 *)(buf + o_insf);
	__u32 invalid = *(__u32 *)(buf + o_inv);
	if (old->netns != netns || old->net != (__u64)net) {
		/* first drop here on this CPU (or the slot's other netns had it): compare with 0 */
		f |= DT_CT_NO_BASELINE;
		old->netns = netns;
		old->net = (__u64)net;
		old->drop = 0;
		old->insert_failed = 0;
		old->invalid = 0;
	}
	old->pstat = pstat;
	if (drop != old->drop)
		f |= DT_CT_DROP_ROSE;
	if (insert_failed != old->insert_failed)
		f |= DT_CT_INSERT_FAILED_ROSE;
	if (invalid != old->invalid)
		f |= DT_CT_INVALID_ROSE;
	old->drop = drop;
	old->insert_failed = insert_failed;
	old->invalid = invalid;
	/* Whether the entry is confirmed tells only an insert failure (on an unconfirmed one)
	 * from a rule's drop: read (a probe read: the pointer is a number) only then. */
	if (ct && (f & DT_CT_INSERT_FAILED_ROSE) && (BPF_CORE_READ(ct, status) & (1UL << 3 /* IPS_CONFIRMED_BIT */)))
		f |= DT_CT_CONFIRMED;
	return f;
}

static __always_inline void martian_conf(struct dt_event *e, struct net_device *dev, struct net *net,
					 const bool direct)
{
	struct in_device *idev = RD(dev, ip_ptr);
	struct ipv4_devconf *all = RD(net, ipv4.devconf_all);
	if (!idev || !all)
		return;
	int log_dev = RD(idev, cnf.data[DEVCONF_LOG_MARTIANS]);
	int log_all = RD(all, data[DEVCONF_LOG_MARTIANS]);
	int rp_dev = RD(idev, cnf.data[DEVCONF_RP_FILTER]);
	int rp_all = RD(all, data[DEVCONF_RP_FILTER]);
	e->martian_conf = DT_M_KNOWN | (log_all ? DT_M_LOG_ALL : 0) | (log_dev ? DT_M_LOG_DEV : 0);
	e->rp_filter = rp_dev > rp_all ? rp_dev : rp_all;
}

static __always_inline int handle_drop(struct sk_buff *skb, void *location, __u32 reason, __u8 probe,
				       const bool direct)
{
	/* Kernels that report consumed (not dropped) skbs here: skip them. */
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
		return 0;

	struct net_device *dev = RD(skb, dev);
	__u8 flags = 0;
	struct net *net = skb_net(skb, dev, &flags, direct);
	__u32 netns = net ? RD(net, ns.inum) : 0;
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
		ct = ct_flags_of(skb, net, netns, direct);

	struct parsed p;
	__builtin_memset(&p, 0, sizeof(p));
	p.k.reason = reason;
	p.k.netns = netns;
	p.flags = flags;
	if (dev)
		p.k.ifindex = RD(dev, ifindex);
	unsigned char *head = RD(skb, head);
	__u32 payload = parse_headers(&p, skb, head, direct);
	p.k.ip_version = (p.flags & DT_F_IPV4) ? 4 : (p.flags & DT_F_IPV6) ? 6 : 0;

	/* Exact count per key; past the burst, the drop is counted but sends no detail. */
	__u64 now = key_burst ? window_clock() : 0;
	struct dt_key_val *kv = bpf_map_lookup_elem(&key_counts, &p.k);
	if (!kv) {
		struct dt_key_val init = { .window_ns = now };
		bpf_map_update_elem(&key_counts, &p.k, &init, BPF_NOEXIST);
		kv = bpf_map_lookup_elem(&key_counts, &p.k);
	}
	if (kv) {
		/* other CPUs update the same entry: adds are atomic (no fetch: 5.10 has XADD only);
		 * a window restarted by two CPUs at once lets at most one extra burst through */
		__sync_fetch_and_add(&kv->count, 1);
		if (key_burst) {
			if ((__s64)(now - kv->window_ns) >= (__s64)key_window_ns) {
				kv->window_ns = now;
				kv->window_sent = 0;
			}
			if (kv->window_sent >= key_burst) {
				__sync_fetch_and_add(&kv->suppressed, 1);
				stat_inc(DT_STAT_SUPPRESSED);
				return 0;
			}
			__sync_fetch_and_add(&kv->window_sent, 1);
		}
	}

	/* Only drops that send detail pay for the rest. Built on the stack, then copied into a
	 * record of the right size: drops with a DNS payload take a larger record. */
	struct dt_event ev;
	__builtin_memset(&ev, 0, sizeof(ev));
	ev.ts_ns = bpf_ktime_get_ns();
	ev.location = (__u64)location;
	ev.key = p.k;
	ev.version = DT_EVENT_VERSION;
	ev.size = sizeof(ev);
	ev.flags = p.flags;
	ev.probe = probe;
	ev.ct_flags = ct;
	ev.l3_proto = p.l3_proto;
	__u32 len = RD(skb, len);
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
		martian_conf(&ev, dev, net, direct);

	__u32 tail = RD(skb, tail);
	if (payload >= tail)
		payload = 0;
	if (!payload) {
		struct dt_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (!e) {
			stat_inc(DT_STAT_RB_LOST);
			if (kv)
				__sync_fetch_and_add(&kv->suppressed, 1);
			return 0;
		}
		*e = ev;
		bpf_ringbuf_submit(e, wake_flags(ev.ts_ns));
		return 0;
	}

	struct dt_event_payload *ep = bpf_ringbuf_reserve(&events, sizeof(*ep), 0);
	if (!ep) {
		stat_inc(DT_STAT_RB_LOST);
		if (kv)
			__sync_fetch_and_add(&kv->suppressed, 1);
		return 0;
	}
	long n = (long)tail - (long)payload;
	if (n > DT_PAYLOAD_MAX)
		n = DT_PAYLOAD_MAX;
	if (n > 0 && !bpf_probe_read_kernel(ep->payload, n & 0xff, head + payload)) {
		ev.payload_len = n;
		ev.size = sizeof(ev) + n;
	}
	ep->ev = ev;
	bpf_ringbuf_submit(ep, wake_flags(ev.ts_ns));
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(dt_kfree_skb_btf, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	return handle_drop(skb, location, reason, 1, true);
}

SEC("tracepoint/skb/kfree_skb")
int dt_kfree_skb_tp(struct trace_event_raw_kfree_skb *ctx)
{
	return handle_drop(ctx->skbaddr, ctx->location, ctx->reason, 2, false);
}

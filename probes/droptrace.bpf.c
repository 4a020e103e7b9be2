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
enum dt_encap *const dt_btf_encap __attribute__((unused)) = 0;
struct dt_dns *const dt_btf_dns __attribute__((unused)) = 0;
enum dt_dns_dir *const dt_btf_dns_dir __attribute__((unused)) = 0;
enum dt_dns_const *const dt_btf_dns_const __attribute__((unused)) = 0;

/* Set by the loader between open and load. */
const volatile __u32 filter_netns = 0; /* 0: every namespace */
const volatile __u8 capture_l3 = 0;   /* keep the first DT_PAYLOAD_MAX bytes from the IP header (--pcap) */
const volatile __u32 key_burst = 0;    /* detail events per key per window; 0: no limit (and no budget) */
/* detail events per CPU per window over all keys, on top of key_burst; 0: no budget (see budget_allows) */
const volatile __u32 detail_budget = 0;
const volatile __u64 key_window_ns = 1000000000ULL;
const volatile __u64 wake_bytes = 2 << 20; /* a quarter of the ring: set by the loader from its size */
/*
 * nf_hook_slow's text [lo, hi), from kallsyms, set by the loader on kernels whose kfree_skb
 * has no reason: every netfilter drop there (a rule's or conntrack's) is freed in it, so a
 * drop there gets the conntrack state that NETFILTER_DROP gets elsewhere.
 */
const volatile __u64 nf_drop_lo = 0;
const volatile __u64 nf_drop_hi = 0;
/*
 * --stack: the kernel stack of the first stack_per_key detail events of each key (their
 * counter in dt_key_val.stacks). 0: none, and the verifier prunes take_stack as dead code, so
 * a stream without --stack runs the same instructions as before.
 */
const volatile __u32 stack_per_key = 0;

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

/*
 * --stack: stacks by id (bpf_get_stackid). A hash of the stack picks the bucket and there is no
 * chaining: a second stack landing in a taken bucket fails (-EEXIST; no BPF_F_REUSE_STACKID, so
 * an id userspace has cached always names the stack it read) and is counted in
 * DT_STAT_STACK_FAILED. Entries are never deleted: drops take few distinct call paths (200
 * stacks in 8192 buckets: ~2.4 colliding pairs expected, each counted, never wrong).
 * Memory, preallocated: DT_STACK_ENTRIES x (24 B bucket header + DT_STACK_DEPTH x 8 B), the
 * kernel's memlock 1,769,792 B (1.7 MiB) on 6.18, on any CPU count. Without --stack the loader
 * sets max_entries to 1 (536 B).
 */
_Static_assert(DT_STACK_ENTRIES <= 65536, "dt_event.stack_id is 16 bits");
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, DT_STACK_ENTRIES);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, DT_STACK_DEPTH * sizeof(__u64));
} stack_traces SEC(".maps");

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

/*
 * The global detail budget. key_burst bounds one key's detail events, not their sum: a flood
 * of many flows (each its own key) sends key_burst per flow per window, which is most of the
 * flood. So each CPU may also send at most detail_budget events per window over all keys; past
 * it a drop is only counted, like one past its key's burst, and userspace folds it into its
 * key's `count`. Per CPU, so it costs no atomics: this program never runs twice at once on
 * one CPU (the kernel skips a nested run), so the count is exact.
 */
struct cpu_budget {
	__u64 window_ns;
	__u32 sent;
	__u32 _pad;
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_budget);
} budget SEC(".maps");

/*
 * May this drop send detail under this CPU's budget? A key's first drop (`fresh`: its counter
 * was just created) may spend up to a second budget's worth, so a new flow in a flood of old
 * ones still shows its detail; bounded all the same: at most 2 x detail_budget per window.
 */
static __always_inline bool budget_allows(__u64 now, bool fresh)
{
	if (!detail_budget)
		return true;
	__u32 zero = 0;
	struct cpu_budget *b = bpf_map_lookup_elem(&budget, &zero);
	if (!b)
		return true;
	if ((__s64)(now - b->window_ns) >= (__s64)key_window_ns) {
		b->window_ns = now;
		b->sent = 0;
	}
	if (b->sent >= (fresh ? 2 * detail_budget : detail_budget))
		return false;
	b->sent += 1;
	return true;
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

#include "parse.bpf.h"

#include "conntrack.bpf.h"

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
	/* |=: the hooks' flags are set already */
	e->martian_conf |= DT_M_KNOWN | (log_all ? DT_M_LOG_ALL : 0) | (log_dev ? DT_M_LOG_DEV : 0);
	e->rp_filter = rp_dev > rp_all ? rp_dev : rp_all;
}

/*
 * --stack: the stack of this detail event, for the first stack_per_key of its key. Taken once
 * the record is reserved, so every stack counted as taken is in a record the kernel sent.
 * Read and add are not one atomic step (5.10 has no fetch-add): CPUs racing on one key's
 * first drops may each take one more than stack_per_key, never more than one each.
 */
static __always_inline void take_stack(void *ctx, struct dt_event *e, struct dt_key_val *kv)
{
	if (!stack_per_key)
		return;
	if (!kv) {
		/* no counter for this key (the map refused it): no bound either, so no stack */
		stat_inc(DT_STAT_STACK_FAILED);
		return;
	}
	if (kv->stacks >= stack_per_key) {
		stat_inc(DT_STAT_STACK_NOT_TAKEN);
		return;
	}
	__sync_fetch_and_add(&kv->stacks, 1);
	long id = bpf_get_stackid(ctx, &stack_traces, 0);
	if (id < 0) {
		stat_inc(DT_STAT_STACK_FAILED);
		return;
	}
	e->stack_id = id; /* < DT_STACK_ENTRIES: the bucket's index */
	e->flags |= DT_F_STACK;
	stat_inc(DT_STAT_STACK_TAKEN);
}

static __always_inline int handle_drop(void *ctx, struct sk_buff *skb, void *location, __u32 reason, __u8 probe,
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
	if (nf_drop_hi && (__u64)location >= nf_drop_lo && (__u64)location < nf_drop_hi)
		is_nf = 1;
	if (is_nf)
		ct = ct_flags_of(skb, net, netns, direct);

	/* The headers' fields go to a per-CPU scratch map, not the stack: see parse_scratch. */
	__u32 zero = 0;
	struct parsed *p = bpf_map_lookup_elem(&parse_scratch, &zero);
	if (!p)
		return 0; /* never: an array's element 0 */
	__builtin_memset(p, 0, sizeof(*p));
	p->k.reason = reason;
	p->k.netns = netns;
	p->flags = flags;
	if (dev)
		p->k.ifindex = RD(dev, ifindex);
	unsigned char *head = RD(skb, head);
	p->payload = parse_headers(p, skb, head, capture_l3, direct);
	p->k.ip_version = (p->flags & DT_F_IPV4) ? 4 : (p->flags & DT_F_IPV6) ? 6 : 0;

	/* Exact count per key; past the key's burst or the CPU's budget, the drop is counted but
	 * sends no detail. */
	__u64 now = key_burst ? window_clock() : 0;
	struct dt_key_val *kv = bpf_map_lookup_elem(&key_counts, &p->k);
	bool fresh = !kv;
	if (!kv) {
		struct dt_key_val init = { .window_ns = now };
		bpf_map_update_elem(&key_counts, &p->k, &init, BPF_NOEXIST);
		kv = bpf_map_lookup_elem(&key_counts, &p->k);
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
			/* the key's burst first: a drop it holds back spends none of the CPU's budget */
			if (kv->window_sent >= key_burst || !budget_allows(now, fresh)) {
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
	ev.key = p->k;
	ev.version = DT_EVENT_VERSION;
	ev.size = sizeof(ev);
	ev.flags = p->flags;
	ev.probe = probe;
	ev.ct_flags = ct;
	dnat_of(&ev, skb, direct);
	ev.l3_proto = p->l3_proto;
	__u32 len = RD(skb, len);
	ev.pkt_len = len > 0xffff ? 0xffff : len;
	if (dev)
		bpf_probe_read_kernel_str(ev.ifname, sizeof(ev.ifname), dev->name);
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
		if (r->route_fail_ns && now - r->route_fail_ns < DT_RECENT_NS)
			ev.martian_conf |= r->route_err == -18 /* EXDEV */ ? DT_M_ROUTE_EXDEV :
					   r->route_err == -22 /* EINVAL */ ? DT_M_ROUTE_EINVAL : 0;
	}
	if (dev && (ev.flags & DT_F_IPV4) && net)
		martian_conf(&ev, dev, net, direct);

	/* where a DNS message (or --pcap's IP header) starts: read back from parse_scratch */
	__u32 payload = p->payload;
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
		parse_encap(e, p, skb);
		take_stack(ctx, e, kv);
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
	parse_encap(&ep->ev, p, skb);
	take_stack(ctx, &ep->ev, kv);
	bpf_ringbuf_submit(ep, wake_flags(ev.ts_ns));
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(dt_kfree_skb_btf, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	return handle_drop(ctx, skb, location, reason, 1, true);
}

/* Before 5.17 kfree_skb has no reason: the place stands in for it (DT_REASON_LOCATION_BIT). */
static __always_inline __u32 location_key(void *location)
{
	return (__u32)(__u64)location | (1U << DT_REASON_LOCATION_BIT);
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(dt_kfree_skb_btf_noreason, struct sk_buff *skb, void *location)
{
	return handle_drop(ctx, skb, location, location_key(location), 3, true);
}

SEC("tracepoint/skb/kfree_skb")
int dt_kfree_skb_tp(struct trace_event_raw_kfree_skb *ctx)
{
	/* resolved at load: the verifier never sees the read of a field this kernel lacks */
	void *location = ctx->location;
	__u32 reason = bpf_core_field_exists(ctx->reason) ? ctx->reason : location_key(location);
	return handle_drop(ctx, ctx->skbaddr, location, reason, 2, false);
}

/*
 * The fate of DNS queries: every UDP port-53 query leaving a device and every answer arriving
 * on one, in the netns of that device, as one small record on a ring of its own (a flood of
 * DNS must not crowd drops out of theirs). Userspace pairs them (src/pipeline/dns-fate.ts).
 * Two tracepoints every packet passes: their programs attach only with DNS tracing on
 * (probes.cc), and a packet that is not port 53 costs a few loads and one header read.
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} dns_events SEC(".maps");

/* struct parsed of each DNS program (0 out, 1 in): off the stack, as for the drop program */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct parsed);
} dns_scratch SEC(".maps");

static __always_inline int dns_seen(struct sk_buff *skb, __u8 dir)
{
	__u16 proto = bpf_ntohs(skb->protocol);
	if (proto != ETH_P_IP && proto != ETH_P_IPV6)
		return 0;
	struct net_device *dev = skb->dev;
	if (!dev)
		return 0;
	__u32 netns = dev->nd_net.net->ns.inum;
	if (filter_netns && netns != filter_netns)
		return 0;
	/*
	 * Positions as numbers read through the helper (not BTF pointers, whose difference the
	 * verifier refuses). Out: the IP layer set the network header. In: netif_receive_skb runs
	 * before the core resets it, when skb->data is at the IP header (the driver pulled L2).
	 */
	__u64 head = (__u64)BPF_CORE_READ(skb, head);
	__u32 nh, tail = skb->tail;
	if (dir == DT_DNS_QUERY)
		nh = skb->network_header;
	else
		nh = (__u64)BPF_CORE_READ(skb, data) - head;
	__u32 idx = dir == DT_DNS_QUERY ? 0 : 1;
	struct parsed *p = bpf_map_lookup_elem(&dns_scratch, &idx);
	if (!p)
		return 0;
	__builtin_memset(p, 0, sizeof(*p));
	__u32 payload = parse_ip(p, (unsigned char *)head, nh, tail, proto);
	if (!payload || p->k.l4_proto != IPPROTO_UDP)
		return 0;
	if (dir == DT_DNS_QUERY ? p->k.dport != 53 : p->k.sport != 53)
		return 0;
	if (payload + 12 > tail)
		return 0;
	__u8 hdr[4];
	if (bpf_probe_read_kernel(hdr, sizeof(hdr), (void *)(head + payload)))
		return 0;
	/* QR: 0 a query, 1 a response; the other way round is not this direction's message */
	if (((hdr[2] & 0x80) != 0) != (dir == DT_DNS_ANSWER))
		return 0;
	stat_inc(DT_STAT_DNS_SEEN);
	struct dt_dns *r = bpf_ringbuf_reserve(&dns_events, sizeof(*r), 0);
	if (!r) {
		stat_inc(DT_STAT_DNS_RB_LOST);
		return 0;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->ts_ns = bpf_ktime_get_ns();
	r->netns = netns;
	r->ifindex = dev->ifindex;
	r->version = DT_DNS_VERSION;
	r->size = sizeof(*r);
	r->sport = p->k.sport;
	r->dport = p->k.dport;
	r->id = hdr[0] << 8 | hdr[1];
	r->dns_flags = hdr[2] << 8 | hdr[3];
	r->dir = dir;
	r->ip_version = (p->flags & DT_F_IPV4) ? 4 : 6;
	r->l4_proto = IPPROTO_UDP;
	__builtin_memcpy(r->saddr, p->k.saddr, 16);
	__builtin_memcpy(r->daddr, p->k.daddr, 16);
	__u32 n = tail - payload;
	r->msg_len = n > 0xffff ? 0xffff : n;
	if (n > DT_DNS_MSG_MAX)
		n = DT_DNS_MSG_MAX;
	/* bounds the verifier can follow through clang's rewrite of the clamp */
	barrier_var(n);
	n &= 0x7f;
	if (n >= 12 && n <= DT_DNS_MSG_MAX && !bpf_probe_read_kernel(r->msg, n, (void *)(head + payload)))
		r->msg_kept = n;
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(dt_dns_out, struct sk_buff *skb)
{
	return dns_seen(skb, DT_DNS_QUERY);
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(dt_dns_in, struct sk_buff *skb)
{
	return dns_seen(skb, DT_DNS_ANSWER);
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Was it conntrack that dropped a NETFILTER_DROP, and how (droptrace.bpf.c's ct_flags_of):
 * the skb's conntrack entry and whether this CPU's conntrack counters in the netns rose since
 * the last NETFILTER_DROP there; and a Service's address before DNAT (dnat_of). Needs RD(p, f)
 * and the shared `stats` map from its includer.
 */
#ifndef DROPTRACE_CONNTRACK_BPF_H
#define DROPTRACE_CONNTRACK_BPF_H

#define NFCT_PTRMASK (~7UL)

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

/* enum ip_conntrack_status (uapi): the entry's destination was translated */
#define DT_IPS_DST_NAT (1UL << 5)

/*
 * Services: the destination the packet had before DNAT (a ClusterIP and port), when the skb's
 * conntrack entry says its destination was translated (IPS_DST_NAT): the original
 * direction's tuple, which keeps it for the entry's life. Only drops that send detail pay for
 * it: one probe read for a drop with conntrack, four with a DNAT. struct nf_conn is read
 * through CO-RE from vmlinux BTF (where the kernel's own code keeps the type even with
 * nf_conntrack a module, as on 5.10, 6.1, 6.12 here) or the module's; a kernel whose BTF
 * lacks it leaves the fields zero: the existence checks are constants at load, and the
 * verifier never walks the dead reads.
 */
static __always_inline void dnat_of(struct dt_event *e, struct sk_buff *skb, const bool direct)
{
	if (!bpf_core_field_exists(skb->_nfct) || !bpf_core_field_exists(struct nf_conn, status) ||
	    !bpf_core_field_exists(struct nf_conn, tuplehash))
		return;
	unsigned long nfct = RD(skb, _nfct);
	struct nf_conn *ct = (struct nf_conn *)(nfct & NFCT_PTRMASK);
	if (!ct)
		return;
	unsigned long status = BPF_CORE_READ(ct, status);
	if (!(status & DT_IPS_DST_NAT))
		return;
	__u16 family = BPF_CORE_READ(ct, tuplehash[0].tuple.src.l3num);
	if (family != 2 && family != 10)
		return;
	if (bpf_core_read(e->dnat_daddr, sizeof(e->dnat_daddr), &ct->tuplehash[0].tuple.dst.u3))
		return;
	e->dnat_dport = bpf_ntohs(BPF_CORE_READ(ct, tuplehash[0].tuple.dst.u.all));
	e->dnat_family = family;
	e->dnat_ctinfo = nfct & ~NFCT_PTRMASK;
	e->dnat_status = status;
}

#endif

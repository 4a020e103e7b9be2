// SPDX-License-Identifier: GPL-2.0
/*
 * Optional hooks that sharpen the classification of drops: where a neighbour entry or a
 * conntrack entry could not be created. Each program is loaded and attached on its own and
 * reports attached or unavailable; drops are still traced (probes/droptrace.bpf.c) when
 * none of these can attach. They share the "recent" and "stats" maps with the drop program.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "droptrace.h"

char LICENSE[] SEC("license") = "GPL";

#define IS_ERR_PTR(p) ((unsigned long)(p) >= (unsigned long)-4095)

#include "shared_maps.bpf.h"

static __always_inline struct dt_recent *mine(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&recent, &zero);
}

/* A failed neigh_create: the address it was for, the table's fill, counted per family. */
static __always_inline void neigh_create_failed(__u32 family, __u32 entries, const void *key)
{
	struct dt_recent *r = mine();
	if (!r)
		return;
	r->neigh_fail_ns = bpf_ktime_get_ns();
	r->neigh_family = family;
	r->neigh_entries = entries;
	__builtin_memset(r->neigh_key, 0, 16);
	bpf_probe_read_kernel(r->neigh_key, family == 2 /* AF_INET */ ? 4 : 16, key);
	__u32 idx = family == 2 ? DT_STAT_NEIGH_FAIL4 : DT_STAT_NEIGH_FAIL6;
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += 1;
}

/* neigh:neigh_create fires for every attempt; created=0 is a failure (table full). */
SEC("tracepoint/neigh/neigh_create")
int dt_neigh_create_tp(struct trace_event_raw_neigh_create *ctx)
{
	if (ctx->created)
		return 0;
	/* the verifier allows no byte-wise copies out of the context: read it like memory */
	neigh_create_failed(ctx->family, ctx->entries, ctx->family == 2 ? (const void *)ctx->primary_key4 : (const void *)ctx->primary_key6);
	return 0;
}

/*
 * The same tracepoint through BTF, tried first: it attaches without perf_event_open(), which
 * the podman/CRI-O default seccomp profile refuses (README, "Seccomp"). Arguments: tbl, dev,
 * pkey, n (NULL: nothing was created), exempt_from_gc. The verifiers of 6.1 refuse a direct
 * read of a "const void *" argument (pkey), so it is read out of the context like memory.
 */
SEC("tp_btf/neigh_create")
int dt_neigh_create_btf(__u64 *ctx)
{
	if (ctx[3])
		return 0;
	struct neigh_table *tbl = (struct neigh_table *)ctx[0];
	__u64 pkey = 0;
	bpf_probe_read_kernel(&pkey, sizeof(pkey), &ctx[2]);
	/* entries as the classic tracepoint reports them: the entries subject to GC */
	neigh_create_failed(BPF_CORE_READ(tbl, family), BPF_CORE_READ(tbl, gc_entries.counter), (const void *)pkey);
	return 0;
}

static __always_inline void neigh_failed(struct neigh_table *tbl, const void *pkey)
{
	struct dt_recent *r = mine();
	if (!r)
		return;
	r->neigh_fail_ns = bpf_ktime_get_ns();
	if (tbl) {
		r->neigh_family = BPF_CORE_READ(tbl, family);
		r->neigh_entries = BPF_CORE_READ(tbl, entries.counter);
	}
	__builtin_memset(r->neigh_key, 0, 16);
	if (pkey)
		bpf_probe_read_kernel(r->neigh_key, r->neigh_family == 2 ? 4 : 16, pkey);
}

SEC("fexit/__neigh_create")
int BPF_PROG(dt_neigh_fexit, struct neigh_table *tbl)
{
	/* Older verifiers refuse direct context reads of a "const void *" argument (pkey):
	 * fetch it and the return value through the helpers (5.17+). */
	__u64 pkey = 0, ret = 0;
	if (bpf_get_func_ret(ctx, &ret) || !IS_ERR_PTR(ret))
		return 0;
	bpf_get_func_arg(ctx, 1, &pkey);
	neigh_failed(tbl, (const void *)pkey);
	return 0;
}

SEC("kretprobe/__neigh_create")
int BPF_KRETPROBE(dt_neigh_kretprobe, struct neighbour *ret)
{
	/* The arguments are gone at return: the neigh_create tracepoint (or fexit) names the
	 * address; this only marks the failure in time. */
	if (IS_ERR_PTR(ret)) {
		struct dt_recent *r = mine();
		if (r)
			r->neigh_fail_ns = bpf_ktime_get_ns();
	}
	return 0;
}

/* __nf_conntrack_alloc returns ERR_PTR(-ENOMEM) when the table is at nf_conntrack_max. */
SEC("fexit/__nf_conntrack_alloc")
int BPF_PROG(dt_ct_alloc_fexit, struct net *net, const struct nf_conntrack_zone *zone,
	     const struct nf_conntrack_tuple *orig, const struct nf_conntrack_tuple *repl, gfp_t gfp, __u32 hash,
	     struct nf_conn *ret)
{
	if (IS_ERR_PTR(ret)) {
		struct dt_recent *r = mine();
		if (r)
			r->ct_alloc_fail_ns = bpf_ktime_get_ns();
	}
	return 0;
}

SEC("kretprobe/__nf_conntrack_alloc")
int BPF_KRETPROBE(dt_ct_alloc_kretprobe, struct nf_conn *ret)
{
	if (IS_ERR_PTR(ret)) {
		struct dt_recent *r = mine();
		if (r)
			r->ct_alloc_fail_ns = bpf_ktime_get_ns();
	}
	return 0;
}

static __always_inline void martian_seen(void)
{
	struct dt_recent *r = mine();
	if (r)
		r->martian_src_ns = bpf_ktime_get_ns();
}

/* Called for every source martian the route lookup finds (and rp_filter failures), logged or
 * not: it names drops that older kernels report as NOT_SPECIFIED. */
SEC("fentry/ip_handle_martian_source")
int BPF_PROG(dt_martian_fentry)
{
	martian_seen();
	return 0;
}

SEC("kprobe/ip_handle_martian_source")
int BPF_KPROBE(dt_martian_kprobe)
{
	martian_seen();
	return 0;
}

/*
 * Kernels without drop reasons (5.10-5.16) drop rp_filter failures and martians alike in
 * ip_rcv_finish_core; the input route lookup's error tells them apart: -EXDEV is rp_filter
 * (fib_validate_source), -EINVAL a martian. Attached only there (the probe table).
 */
static __always_inline void route_failed(long err)
{
	if (err >= 0)
		return;
	struct dt_recent *r = mine();
	if (!r)
		return;
	r->route_fail_ns = bpf_ktime_get_ns();
	r->route_err = err;
}

SEC("fexit/ip_route_input_noref")
int BPF_PROG(dt_route_fexit, struct sk_buff *skb, __be32 daddr, __be32 saddr, __u8 tos, struct net_device *dev,
	     int ret)
{
	route_failed(ret);
	return 0;
}

SEC("kretprobe/ip_route_input_noref")
int BPF_KRETPROBE(dt_route_kretprobe, int ret)
{
	route_failed(ret);
	return 0;
}

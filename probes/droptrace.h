/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one event layout shared by the BPF programs (probes/droptrace.bpf.c), the native addon
 * (native/) and — through the addon's layout() export, checked by test/layout.test.ts —
 * the TypeScript decoder (src/decode.ts). Fixed-width fields only, largest first, no holes.
 * Bump DT_EVENT_VERSION on any change.
 */
#ifndef DROPTRACE_H
#define DROPTRACE_H

#define DT_EVENT_VERSION 1
#define DT_IFNAMSIZ 16
/* Counter slots for exact per-reason counts; reasons past the last slot share it. */
#define DT_REASON_SLOTS 1024

/* flags */
#define DT_F_IPV4 0x01
#define DT_F_IPV6 0x02
#define DT_F_L4 0x04          /* sport/dport or icmp type/code are valid */
#define DT_F_NETNS_FROM_SK 0x08 /* no skb->dev: netns taken from the socket */
#define DT_F_TRUNCATED 0x10   /* headers could not be read completely */

/* kernel-side counters (index into the per-CPU "stats" array) */
#define DT_STAT_SEEN 0        /* kfree_skb runs that were drops */
#define DT_STAT_RB_LOST 1     /* ring-buffer reserve failures: detail lost, count kept */
#define DT_STAT_MAX 4

struct dt_event {
	__u64 ts_ns;        /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 location;     /* kernel text address that freed the skb */
	__u32 version;      /* DT_EVENT_VERSION */
	__u32 reason;       /* enum skb_drop_reason, numbered as on the running kernel */
	__u32 netns;        /* network namespace inode */
	__u32 ifindex;      /* skb->dev->ifindex, 0 without a device */
	__u16 l3_proto;     /* skb->protocol, host order (0x0800, 0x86dd, ...) */
	__u16 sport;        /* host order */
	__u16 dport;        /* host order */
	__u16 pkt_len;      /* skb->len, saturated at 65535 */
	__u8 l4_proto;      /* IPPROTO_* */
	__u8 flags;         /* DT_F_* */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 probe;         /* which program produced it: 1 tp_btf, 2 tracepoint */
	__u8 _pad[3];
	__u8 saddr[16];     /* IPv4 in the first 4 bytes, network order */
	__u8 daddr[16];
	char ifname[DT_IFNAMSIZ];
};

#endif

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one hand-written record layout, included by the BPF programs (droptrace.bpf.c,
 * hooks.bpf.c) and the native addon (native/). The TypeScript layout, src/gen/record.ts, is
 * generated from the compiled object's BTF (scripts/gen-record.mjs). Fixed-width fields only, aligned, no holes:
 * after the key, largest first. Bump DT_EVENT_VERSION on any change.
 */
#ifndef DROPTRACE_H
#define DROPTRACE_H

/*
 * Numbers userspace needs too. Enums, not #defines: the compiler keeps enums in the BPF
 * object's BTF (droptrace.bpf.c references each one), and scripts/gen-record.mjs writes them
 * into src/gen/record.ts from there.
 */
enum dt_const {
	DT_EVENT_VERSION = 5,
	DT_IFNAMSIZ = 16,
	/* Counter slots for exact per-reason counts; reasons past the last slot share it. */
	DT_REASON_SLOTS = 1024,
	/* Payload bytes kept for DNS (port 53) drops, to name the query. */
	DT_PAYLOAD_MAX = 192,
	/*
	 * Kernels whose kfree_skb has no reason (before 5.17): dt_key.reason is then the drop
	 * location's low 32 bits with this bit set, so drops at different places keep apart
	 * (kernel text and modules share their high 32 bits; real reasons stay far below).
	 */
	DT_REASON_LOCATION_BIT = 31,
	/*
	 * --stack: frames the kernel keeps per stack (the stack map's value is this many u64s).
	 * The first few are the tracing path itself (the program, bpf_trace_run, the tracepoint),
	 * which userspace strips (src/pipeline/stacks.ts), so this leaves room for 16 real frames.
	 */
	DT_STACK_DEPTH = 24,
	/* --stack: stacks the kernel map holds (see stack_traces in droptrace.bpf.c for its memory) */
	DT_STACK_ENTRIES = 8192,
};

/* dt_event.flags */
enum dt_flag {
	DT_F_IPV4 = 0x01,
	DT_F_IPV6 = 0x02,
	DT_F_L4 = 0x04,            /* sport/dport or icmp type/code are valid */
	DT_F_NETNS_FROM_SK = 0x08, /* no skb->dev: netns taken from the socket */
	DT_F_TRUNCATED = 0x10,     /* headers could not be read completely */
	DT_F_PAYLOAD_L3 = 0x20,    /* the payload starts at the network header (--pcap), not at L4 data */
	DT_F_STACK = 0x40,         /* --stack: stack_id names this drop's kernel stack in stack_traces */
};

/* dt_event.encap: the tunnel a dropped UDP datagram carries (by its destination port) */
enum dt_encap {
	DT_ENCAP_NONE = 0,
	DT_ENCAP_VXLAN = 1,  /* UDP 4789 (IANA), 8472 (the Linux default, flannel) */
	DT_ENCAP_GENEVE = 2, /* UDP 6081 */
};

/* dt_event.ct_flags: conntrack state of a NETFILTER_DROP, read in the kernel at the drop */
enum dt_ct_flag {
	DT_CT_HAS_CT = 0x01,             /* skb carries a conntrack entry (skb->_nfct) */
	DT_CT_CONFIRMED = 0x02,          /* ... and it is confirmed (in the table); read only when INSERT_FAILED_ROSE */
	DT_CT_ACTIVE = 0x04,             /* conntrack counters of this netns were read (conntrack in use there) */
	DT_CT_DROP_ROSE = 0x08,          /* this CPU's conntrack "drop" counter rose since the last drop here */
	DT_CT_INSERT_FAILED_ROSE = 0x10,
	DT_CT_INVALID_ROSE = 0x20,
	DT_CT_NO_BASELINE = 0x40,        /* first drop seen in this netns on this CPU: "rose" means "nonzero" */
	DT_CT_ALLOC_FAILED = 0x80,       /* fexit/kretprobe saw __nf_conntrack_alloc fail just before */
};

/* dt_event.martian_conf */
enum dt_martian_flag {
	DT_M_LOG_ALL = 0x01,     /* net.ipv4.conf.all.log_martians */
	DT_M_LOG_DEV = 0x02,     /* net.ipv4.conf.<dev>.log_martians */
	DT_M_SOURCE_SEEN = 0x04, /* a hook saw ip_handle_martian_source just before the drop */
	DT_M_ROUTE_EXDEV = 0x08, /* ... the input route lookup failing with -EXDEV (rp_filter) */
	DT_M_ROUTE_EINVAL = 0x10, /* ... failing with -EINVAL (a martian source or destination) */
	DT_M_KNOWN = 0x80,       /* the values above were read */
};

/* kernel-side counters (index into the per-CPU "stats" array) */
enum dt_stat {
	DT_STAT_SEEN = 0,        /* kfree_skb runs that were drops */
	DT_STAT_RB_LOST = 1,     /* ring-buffer reserve failures: detail lost, count kept */
	DT_STAT_NEIGH_FAIL4 = 2, /* neigh:neigh_create with created=0, IPv4 */
	DT_STAT_NEIGH_FAIL6 = 3, /* ... IPv6 */
	DT_STAT_SUPPRESSED = 4,  /* detail held back by the per-key limit or the per-CPU budget (counted in key_counts) */
	/* --stack, per detail event sent: taken + not taken + failed = detail events sent */
	DT_STAT_STACK_TAKEN = 5,     /* its stack is in stack_traces (DT_F_STACK) */
	DT_STAT_STACK_NOT_TAKEN = 6, /* its key had had its stack_per_key stacks already */
	DT_STAT_STACK_FAILED = 7,    /* bpf_get_stackid failed (a hash collision with another stack: -EEXIST), or no key counter */
	DT_STAT_DNS_SEEN = 8,    /* DNS messages seen by the DNS programs (queries out, answers in) */
	DT_STAT_DNS_RB_LOST = 9, /* ... whose record found no room in the dns_events ring: counted, never sent */
	DT_STAT_MAX = 10,
};

/*
 * Exact per-key counts (key: reason, netns, device, flow) in an LRU hash shared by all CPUs;
 * detail events are limited per key (key_burst per window) and per CPU over all keys
 * (detail_budget per window), the rest are only counted and userspace folds them into `count`
 * from this map. The same
 * bytes head every detail event, so userspace hashes and compares one byte span for both.
 * No padding: every byte is a field, zeroed before it is filled.
 */
struct dt_key {
	__u32 reason;       /* enum skb_drop_reason, numbered as on the running kernel; see DT_REASON_LOCATION_BIT */
	__u32 netns;        /* network namespace inode */
	__u32 ifindex;      /* skb->dev->ifindex, 0 without a device */
	__u16 sport;        /* host order */
	__u16 dport;        /* host order */
	__u8 l4_proto;      /* IPPROTO_* */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 ip_version;    /* 4, 6, 0 without an IP header */
	__u8 saddr[16];     /* IPv4 in the first 4 bytes, network order */
	__u8 daddr[16];
};

/*
 * One detail event: its counter key, then what the key does not say (a u32 first to reach
 * 8-byte alignment, then largest first).
 */
struct dt_event {
	struct dt_key key;
	__u32 neigh_entries; /* NEIGH_CREATEFAIL: table entries at the failed neigh_create */
	__u64 ts_ns;        /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 location;     /* kernel text address that freed the skb */
	__u16 version;      /* DT_EVENT_VERSION */
	__u16 size;         /* bytes in this record: sizeof(struct dt_event) + payload_len */
	__u16 l3_proto;     /* skb->protocol, host order (0x0800, 0x86dd, ...) */
	__u16 pkt_len;      /* skb->len, saturated at 65535 */
	__u16 payload_len;  /* L4 payload bytes that follow the struct (DNS only) */
	__u8 flags;         /* enum dt_flag */
	__u8 probe;         /* which program produced it: 1 tp_btf, 2 tracepoint, 3 tp_btf without a reason */
	__u8 ct_flags;      /* enum dt_ct_flag, NETFILTER_DROP only */
	__u8 martian_conf;  /* enum dt_martian_flag, IPv4 drops on a device only */
	__u8 neigh_family;  /* NEIGH_CREATEFAIL: family of the failed neigh_create (2, 10), 0 unknown */
	__u8 rp_filter;     /* max(conf.all, conf.<dev>) rp_filter, as the kernel applies it */
	char ifname[DT_IFNAMSIZ];
	__u8 neigh_key[16]; /* NEIGH_CREATEFAIL: the address being resolved */
	/*
	 * Overlay: the packet inside a dropped VXLAN/Geneve datagram (the pods; the key's flow is
	 * the nodes'), filled by parse_encap (probes/parse.bpf.h) when encap != 0. Not in the key:
	 * the tunnel's source port is already a hash of this flow (see parse_encap).
	 */
	__u32 inner_vni;       /* 24-bit VXLAN/Geneve network identifier */
	__u16 inner_sport;     /* host order */
	__u16 inner_dport;
	__u8 encap;            /* enum dt_encap; 0: not a tunnel datagram, the rest of the block is 0 */
	__u8 inner_flags;      /* enum dt_flag: DT_F_IPV4/IPV6, DT_F_L4, DT_F_TRUNCATED of the inner headers */
	__u8 inner_l4_proto;   /* IPPROTO_* */
	__u8 inner_icmp_type;
	__u8 inner_icmp_code;
	__u8 _inner_pad;
	/*
	 * Not of the overlay block: --stack, with DT_F_STACK, bpf_get_stackid's id (a key of
	 * stack_traces, below DT_STACK_ENTRIES <= 65536), in bytes that were padding, so the
	 * record stays 192 bytes with or without --stack.
	 */
	__u16 stack_id;
	__u8 inner_saddr[16];  /* IPv4 in the first 4 bytes, network order */
	__u8 inner_daddr[16];
	/*
	 * Services: the skb's conntrack entry had its destination NATed (IPS_DST_NAT: kube-proxy's
	 * ClusterIP DNAT, any DNAT rule): the original direction's destination, before translation
	 * (conntrack.bpf.h's dnat_of). All zero when not.
	 */
	__u8 dnat_daddr[16]; /* tuplehash[IP_CT_DIR_ORIGINAL].tuple.dst.u3, IPv4 in the first 4 bytes */
	__u16 dnat_dport;    /* ... tuple.dst.u.all, host order; 0 for protocols without ports */
	__u8 dnat_family;    /* ... tuple.src.l3num (2, 10); 0: no DNAT on the skb (or not readable here) */
	__u8 dnat_ctinfo;    /* enum ip_conntrack_info of the skb (>= 3: a reply-direction packet) */
	__u32 dnat_status;   /* the entry's status bits (IPS_*), low 32 */
};

/*
 * What the hook programs (probes/hooks.bpf.c) saw last on this CPU, shared with the drop
 * program through a per-CPU map: the failure that precedes a drop happens on the same CPU,
 * in the same call chain, just before it.
 */
struct dt_recent {
	__u64 neigh_fail_ns;   /* a neighbour entry could not be created */
	__u64 ct_alloc_fail_ns; /* a conntrack entry could not be allocated (table full) */
	__u64 martian_src_ns;  /* the route lookup called a source martian (ip_handle_martian_source) */
	__u64 route_fail_ns;   /* the input route lookup failed (ip_route_input_noref, kernels without reasons) */
	__u32 neigh_entries;
	__u8 neigh_family;
	__u8 _pad[3];
	__u8 neigh_key[16];
	__s32 route_err;       /* ... with this error */
	__u32 _pad2;
};

struct dt_key_val {
	__u64 count;        /* every drop of this key on this CPU */
	__u64 suppressed;   /* ... of which no detail event was sent (rate limit, ring buffer full) */
	__u64 window_ns;    /* start of the current rate-limit window */
	__u32 window_sent;  /* detail events sent in this window */
	__u32 stacks;       /* --stack: detail events of this key that tried to take a stack (at most stack_per_key) */
};

/* A failure this long before a drop on the same CPU belongs to it. */
#define DT_RECENT_NS 1000000ULL

/* dt_dns.dir: where a DNS message was seen */
enum dt_dns_dir {
	DT_DNS_QUERY = 1,  /* leaving a device of its netns (net_dev_queue), to port 53 */
	DT_DNS_ANSWER = 2, /* arriving on a device of its netns (netif_receive_skb), from port 53 */
};

enum dt_dns_const {
	DT_DNS_VERSION = 1,
	/* bytes of the DNS message kept (header and question: the name for userspace) */
	DT_DNS_MSG_MAX = 96,
};

/*
 * One DNS message (UDP port 53) seen by the DNS programs (probes/droptrace.bpf.c, dns_seen),
 * on their own ring buffer (dns_events): a query leaving, an answer arriving, in its netns.
 * Userspace matches them by netns, 5-tuple and id (src/pipeline/dns-fate.ts). Largest first.
 */
struct dt_dns {
	__u64 ts_ns;        /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 netns;        /* network namespace inode of the device */
	__u32 ifindex;
	__u16 version;      /* DT_DNS_VERSION */
	__u16 size;         /* sizeof(struct dt_dns) */
	__u16 sport;        /* host order */
	__u16 dport;
	__u16 id;           /* DNS header: query id */
	__u16 dns_flags;    /* DNS header: QR, opcode, AA, TC, RD, RA, Z, rcode (low 4 bits) */
	__u16 msg_len;      /* bytes of the DNS message in the packet */
	__u8 dir;           /* enum dt_dns_dir */
	__u8 ip_version;    /* 4 or 6 */
	__u8 l4_proto;      /* IPPROTO_UDP */
	__u8 msg_kept;      /* bytes of msg[] filled */
	__u8 _pad[6];
	__u8 saddr[16];     /* IPv4 in the first 4 bytes, network order */
	__u8 daddr[16];
	__u8 msg[DT_DNS_MSG_MAX];
};

/* A drop with the first bytes of its L4 payload (for DNS names). */
struct dt_event_payload {
	struct dt_event ev;
	__u8 payload[DT_PAYLOAD_MAX];
};

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Maps both BPF objects declare: the loader creates them with the drop program
 * (droptrace.bpf.c) and hands the same maps to each optional hook (hooks.bpf.c) with
 * bpf_map__reuse_fd, which needs identical definitions — hence one copy, here.
 */
#ifndef DROPTRACE_SHARED_MAPS_BPF_H
#define DROPTRACE_SHARED_MAPS_BPF_H

/* DT_STAT_* counters, per CPU */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DT_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* what the hooks saw last on this CPU */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_recent);
} recent SEC(".maps");

#endif

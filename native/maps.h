// SPDX-License-Identifier: GPL-2.0
// Map readers: the kernel's exact counters, the per-key counts, and what each map costs.
#pragma once

#include <bpf/libbpf.h>
#include <napi.h>

#include <vector>

namespace droptrace {

class ProbeSet;
class RingReader;

Napi::Object ReadCounters(Napi::Env env, const ProbeSet &probes, const RingReader &reader, const RingReader &dns_reader);
Napi::Buffer<uint8_t> ReadKeys(Napi::Env env, bpf_map *key_counts);
// readStack(id): the stack map's entry, DT_STACK_DEPTH u64 addresses (0 past the last frame),
// or null when there is none (not loaded, no such id)
Napi::Value ReadStack(Napi::Env env, bpf_map *stack_traces, uint32_t id);
// [{name, type, maxEntries, keySize, valueSize, flags, memlock}] as the kernel reports them
Napi::Array MapInfo(Napi::Env env, const std::vector<bpf_map *> &maps);

}  // namespace droptrace

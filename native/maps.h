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
// [{name, type, maxEntries, keySize, valueSize, flags, memlock}] as the kernel reports them
Napi::Array MapInfo(Napi::Env env, const std::vector<bpf_map *> &maps);

}  // namespace droptrace

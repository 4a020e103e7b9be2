// SPDX-License-Identifier: GPL-2.0
#include "maps.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <string.h>

#include <cstdio>
#include <string>

#include "droptrace.h"
#include "probes.h"
#include "ring_reader.h"

namespace droptrace {
namespace {

int possible_cpus() {
  int n = libbpf_num_possible_cpus();
  return n > 0 ? n : 1;
}

bool is_percpu(bpf_map *m) {
  switch (bpf_map__type(m)) {
    case BPF_MAP_TYPE_PERCPU_ARRAY:
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
      return true;
    default:
      return false;
  }
}

// The kernel's own account of a map's memory (fdinfo "memlock", from map_mem_usage).
uint64_t memlock_of(int fd) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char line[256];
  unsigned long long v = 0;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "memlock: %llu", &v) == 1) break;
  fclose(f);
  return v;
}

}  // namespace

Napi::Object ReadCounters(Napi::Env env, const ProbeSet &probes, const RingReader &reader, const RingReader &dns_reader) {
  Napi::Object out = Napi::Object::New(env);
  if (!probes.loaded()) return out;
  std::vector<uint64_t> vals(possible_cpus());
  Napi::Object reasons = Napi::Object::New(env);
  int rfd = bpf_map__fd(probes.reason_counts());
  for (uint32_t k = 0; k < DT_REASON_SLOTS; k++) {
    if (bpf_map_lookup_elem(rfd, &k, vals.data())) continue;
    uint64_t sum = 0;
    for (uint64_t v : vals) sum += v;
    if (sum) reasons.Set(std::to_string(k), Napi::BigInt::New(env, sum));
  }
  out.Set("reasons", reasons);
  int sfd = bpf_map__fd(probes.stats());
  auto stat = [&](uint32_t k) -> uint64_t {
    if (bpf_map_lookup_elem(sfd, &k, vals.data())) return 0;
    uint64_t sum = 0;
    for (uint64_t v : vals) sum += v;
    return sum;
  };
  out.Set("seen", Napi::BigInt::New(env, stat(DT_STAT_SEEN)));
  out.Set("suppressed", Napi::BigInt::New(env, stat(DT_STAT_SUPPRESSED)));
  out.Set("neighFail4", Napi::BigInt::New(env, stat(DT_STAT_NEIGH_FAIL4)));
  out.Set("neighFail6", Napi::BigInt::New(env, stat(DT_STAT_NEIGH_FAIL6)));
  out.Set("stackTaken", Napi::BigInt::New(env, stat(DT_STAT_STACK_TAKEN)));
  out.Set("stackNotTaken", Napi::BigInt::New(env, stat(DT_STAT_STACK_NOT_TAKEN)));
  out.Set("stackFailed", Napi::BigInt::New(env, stat(DT_STAT_STACK_FAILED)));
  out.Set("ringLost", Napi::BigInt::New(env, stat(DT_STAT_RB_LOST)));
  out.Set("userLost", Napi::BigInt::New(env, reader.user_lost()));
  out.Set("userLostUnkeyed", Napi::BigInt::New(env, reader.user_lost_unkeyed()));
  out.Set("shortRecords", Napi::BigInt::New(env, reader.short_records()));
  out.Set("pollErrors", Napi::BigInt::New(env, reader.poll_errors()));
  Napi::Object dns = Napi::Object::New(env);
  dns.Set("seen", Napi::BigInt::New(env, stat(DT_STAT_DNS_SEEN)));
  dns.Set("ringLost", Napi::BigInt::New(env, stat(DT_STAT_DNS_RB_LOST)));
  dns.Set("userLost", Napi::BigInt::New(env, dns_reader.user_lost()));
  dns.Set("shortRecords", Napi::BigInt::New(env, dns_reader.short_records()));
  out.Set("dns", dns);
  return out;
}

// readKeys(): every key of the per-key counter map with its count and suppressed count (summed
// over CPUs when the map is per-CPU), as one Buffer of [struct dt_key][u64 count][u64 suppressed].
Napi::Buffer<uint8_t> ReadKeys(Napi::Env env, bpf_map *key_counts) {
  std::vector<uint8_t> out;
  if (!key_counts) return Napi::Buffer<uint8_t>::Copy(env, out.data(), 0);
  int fd = bpf_map__fd(key_counts);
  const int ncpu = is_percpu(key_counts) ? possible_cpus() : 1;
  const size_t vsz = ncpu > 1 ? (sizeof(dt_key_val) + 7) & ~size_t(7) : sizeof(dt_key_val);
  const uint32_t chunk = 4096;
  std::vector<dt_key> keys(chunk);
  std::vector<uint8_t> vals(chunk * ncpu * vsz);
  const size_t entry = sizeof(dt_key) + 16;
  auto emit = [&](const dt_key &k, const uint8_t *v) {
    uint64_t count = 0, suppressed = 0;
    for (int c = 0; c < ncpu; c++) {
      const dt_key_val *kv = reinterpret_cast<const dt_key_val *>(v + c * vsz);
      count += kv->count;
      suppressed += kv->suppressed;
    }
    size_t at = out.size();
    out.resize(at + entry);
    memcpy(out.data() + at, &k, sizeof(k));
    memcpy(out.data() + at + sizeof(k), &count, 8);
    memcpy(out.data() + at + sizeof(k) + 8, &suppressed, 8);
  };
  uint64_t in_batch = 0, out_batch = 0;
  bool first = true;
  for (;;) {
    uint32_t n = chunk;
    int err = bpf_map_lookup_batch(fd, first ? nullptr : &in_batch, &out_batch, keys.data(), vals.data(), &n, nullptr);
    int e = errno;
    for (uint32_t i = 0; i < n; i++) emit(keys[i], vals.data() + i * ncpu * vsz);
    if (err) {
      if (e == ENOENT) break;  // the last batch
      // Kernels without batch ops for this map: walk it key by key.
      out.clear();
      dt_key cur, next;
      bool have = false;
      while (bpf_map_get_next_key(fd, have ? &cur : nullptr, &next) == 0) {
        if (bpf_map_lookup_elem(fd, &next, vals.data()) == 0) emit(next, vals.data());
        cur = next;
        have = true;
      }
      break;
    }
    in_batch = out_batch;
    first = false;
  }
  return Napi::Buffer<uint8_t>::Copy(env, out.data(), out.size());
}

Napi::Value ReadStack(Napi::Env env, bpf_map *stack_traces, uint32_t id) {
  if (!stack_traces) return env.Null();
  uint64_t frames[DT_STACK_DEPTH];
  if (bpf_map_lookup_elem(bpf_map__fd(stack_traces), &id, frames)) return env.Null();
  return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t *>(frames), sizeof(frames));
}

Napi::Array MapInfo(Napi::Env env, const std::vector<bpf_map *> &maps) {
  Napi::Array arr = Napi::Array::New(env);
  uint32_t i = 0;
  for (bpf_map *m : maps) {
    int fd = bpf_map__fd(m);
    if (fd < 0) continue;
    bpf_map_info info;
    memset(&info, 0, sizeof(info));
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len)) continue;
    Napi::Object o = Napi::Object::New(env);
    const char *type = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(info.type));
    o.Set("name", bpf_map__name(m));
    o.Set("type", type ? type : std::to_string(info.type).c_str());
    o.Set("maxEntries", Napi::Number::New(env, info.max_entries));
    o.Set("keySize", Napi::Number::New(env, info.key_size));
    o.Set("valueSize", Napi::Number::New(env, info.value_size));
    o.Set("flags", Napi::Number::New(env, info.map_flags));
    o.Set("memlock", Napi::Number::New(env, static_cast<double>(memlock_of(fd))));
    arr.Set(i++, o);
  }
  return arr;
}

}  // namespace droptrace

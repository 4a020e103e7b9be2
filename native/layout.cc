// SPDX-License-Identifier: GPL-2.0
// The record layout as the C compiler sees it, for the TypeScript decoder.
#include <napi.h>

#include <linux/types.h>

#include <cstddef>

#include "droptrace.h"
#include "addon.h"

namespace droptrace {

// layout(): the C compiler's view of struct dt_event, so the TypeScript decoder can be
// checked against it (test/layout.test.ts) and refuses to run on a mismatch.
Napi::Value Layout(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  Napi::Object f = Napi::Object::New(env);
#define FIELD(name)                                                 \
  do {                                                              \
    Napi::Array a = Napi::Array::New(env, 2);                       \
    a.Set(0u, Napi::Number::New(env, offsetof(dt_event, name)));    \
    a.Set(1u, Napi::Number::New(env, sizeof(((dt_event *)0)->name))); \
    f.Set(#name, a);                                                \
  } while (0)
  FIELD(ts_ns);
  FIELD(location);
  FIELD(version);
  FIELD(reason);
  FIELD(netns);
  FIELD(ifindex);
  FIELD(l3_proto);
  FIELD(sport);
  FIELD(dport);
  FIELD(pkt_len);
  FIELD(l4_proto);
  FIELD(flags);
  FIELD(icmp_type);
  FIELD(icmp_code);
  FIELD(probe);
  FIELD(size);
  FIELD(ct_flags);
  FIELD(martian_conf);
  FIELD(neigh_family);
  FIELD(neigh_entries);
  FIELD(rp_filter);
  FIELD(payload_len);
  FIELD(neigh_key);
  FIELD(saddr);
  FIELD(daddr);
  FIELD(ifname);
#undef FIELD
  o.Set("fields", f);
  Napi::Object kf = Napi::Object::New(env);
#define KFIELD(name)                                              \
  do {                                                            \
    Napi::Array a = Napi::Array::New(env, 2);                     \
    a.Set(0u, Napi::Number::New(env, offsetof(dt_key, name)));    \
    a.Set(1u, Napi::Number::New(env, sizeof(((dt_key *)0)->name))); \
    kf.Set(#name, a);                                             \
  } while (0)
  KFIELD(reason);
  KFIELD(netns);
  KFIELD(ifindex);
  KFIELD(sport);
  KFIELD(dport);
  KFIELD(l4_proto);
  KFIELD(icmp_type);
  KFIELD(icmp_code);
  KFIELD(ip_version);
  KFIELD(saddr);
  KFIELD(daddr);
#undef KFIELD
  o.Set("keyFields", kf);
  o.Set("keySize", Napi::Number::New(env, sizeof(dt_key)));
  o.Set("size", Napi::Number::New(env, sizeof(dt_event)));
  o.Set("version", Napi::Number::New(env, DT_EVENT_VERSION));
  o.Set("reasonSlots", Napi::Number::New(env, DT_REASON_SLOTS));
  o.Set("payloadMax", Napi::Number::New(env, DT_PAYLOAD_MAX));
  Napi::Object flags = Napi::Object::New(env);
  flags.Set("IPV4", DT_F_IPV4);
  flags.Set("IPV6", DT_F_IPV6);
  flags.Set("L4", DT_F_L4);
  flags.Set("NETNS_FROM_SK", DT_F_NETNS_FROM_SK);
  flags.Set("TRUNCATED", DT_F_TRUNCATED);
  flags.Set("PAYLOAD_L3", DT_F_PAYLOAD_L3);
  flags.Set("CT_HAS_CT", DT_CT_HAS_CT);
  flags.Set("CT_CONFIRMED", DT_CT_CONFIRMED);
  flags.Set("CT_ACTIVE", DT_CT_ACTIVE);
  flags.Set("CT_DROP_ROSE", DT_CT_DROP_ROSE);
  flags.Set("CT_INSERT_FAILED_ROSE", DT_CT_INSERT_FAILED_ROSE);
  flags.Set("CT_INVALID_ROSE", DT_CT_INVALID_ROSE);
  flags.Set("CT_NO_BASELINE", DT_CT_NO_BASELINE);
  flags.Set("CT_ALLOC_FAILED", DT_CT_ALLOC_FAILED);
  flags.Set("M_LOG_ALL", DT_M_LOG_ALL);
  flags.Set("M_LOG_DEV", DT_M_LOG_DEV);
  flags.Set("M_SOURCE_SEEN", DT_M_SOURCE_SEEN);
  flags.Set("M_KNOWN", DT_M_KNOWN);
  o.Set("flags", flags);
  return o;
}

}  // namespace droptrace

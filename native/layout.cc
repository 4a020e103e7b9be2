// SPDX-License-Identifier: GPL-2.0
// The record layout as the C compiler sees it, for the TypeScript decoder.
#include <napi.h>

#include <linux/types.h>

#include <cstddef>

#include "droptrace.h"
#include "addon.h"

namespace droptrace {

// layout(): the C compiler's sizes and version of the record, compared at start with
// src/gen/record.ts (generated from the BPF object's BTF): an addon built from another header
// than the TypeScript is refused.
Napi::Value Layout(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("size", Napi::Number::New(env, sizeof(dt_event)));
  o.Set("keySize", Napi::Number::New(env, sizeof(dt_key)));
  o.Set("version", Napi::Number::New(env, DT_EVENT_VERSION));
  return o;
}

}  // namespace droptrace

// SPDX-License-Identifier: GPL-2.0
// Free functions the addon exports next to the Tracer class.
#pragma once

#include <napi.h>

namespace droptrace {

Napi::Value Layout(const Napi::CallbackInfo &info);

}  // namespace droptrace

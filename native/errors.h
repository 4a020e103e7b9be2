// SPDX-License-Identifier: GPL-2.0
// Errors the addon raises: each carries a code (E_*) and the stage that failed; src/errors.ts
// turns them into the one line a user reads. libbpf's own explanation is kept for the message.
#pragma once

#include <napi.h>

#include <string>

namespace droptrace {

// Installed once at load: keeps libbpf's warnings so a failure can say why in its words.
void InstallLibbpfLog();
// Forget warnings of earlier attempts.
void ClearWarnings();
// "<stage> failed: <strerror> (errno N); libbpf: <first warnings>"
std::string Describe(const std::string &stage, int err);

// An Error with .code, .stage and (when known) .errno.
Napi::Error CodedError(Napi::Env env, const char *code, const char *stage, const std::string &message, int err = 0);
// Plain object of the same shape, for callbacks that report a failure instead of throwing.
Napi::Object CodedErrorObject(Napi::Env env, const char *code, const char *stage, const std::string &message, int err = 0);

}  // namespace droptrace

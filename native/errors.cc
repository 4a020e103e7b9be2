// SPDX-License-Identifier: GPL-2.0
#include "errors.h"

#include <bpf/libbpf.h>
#include <stdarg.h>
#include <string.h>

#include <mutex>
#include <vector>

namespace droptrace {
namespace {

std::mutex g_log_mu;
std::vector<std::string> g_warnings;  // since the last ClearWarnings()/Describe()

// A verifier log is hundreds of lines; its verdict is the last line before the statistics.
std::string summarize_verifier_log(const std::string &msg) {
  size_t begin = msg.find("-- BEGIN PROG LOAD LOG --");
  if (begin == std::string::npos) return msg;
  size_t end = msg.find("-- END PROG LOAD LOG --", begin);
  std::string log = msg.substr(begin + 25, end == std::string::npos ? std::string::npos : end - begin - 25);
  std::string verdict;
  size_t pos = 0;
  while (pos < log.size()) {
    size_t nl = log.find('\n', pos);
    std::string l = log.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? log.size() : nl + 1;
    if (l.empty() || l.rfind("processed ", 0) == 0 || l.rfind("verification time", 0) == 0 ||
        l.rfind("stack depth", 0) == 0 || l.rfind("-- ", 0) == 0)
      continue;
    verdict = l;
  }
  return msg.substr(0, begin) + "verifier: " + verdict;
}

int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args) {
  if (level != LIBBPF_WARN) return 0;
  std::vector<char> buf(64 * 1024);
  vsnprintf(buf.data(), buf.size(), fmt, args);
  std::string line = summarize_verifier_log(buf.data());
  while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
  if (line.rfind("libbpf: ", 0) == 0) line = line.substr(8);
  std::lock_guard<std::mutex> lk(g_log_mu);
  if (g_warnings.size() < 16) g_warnings.push_back(line);
  return 0;
}

// The first warnings say what went wrong; the last ones only that loading failed.
std::string take_warning() {
  std::lock_guard<std::mutex> lk(g_log_mu);
  std::string w;
  size_t n = 0;
  for (const std::string &line : g_warnings) {
    if (line.rfind("failed to load BPF skeleton", 0) == 0 || line.rfind("failed to load object", 0) == 0) continue;
    if (n++ == 2) break;
    if (!w.empty()) w += "; ";
    w += line;
  }
  g_warnings.clear();
  return w;
}

}  // namespace

void InstallLibbpfLog() { libbpf_set_print(libbpf_print); }

void ClearWarnings() { take_warning(); }

std::string Describe(const std::string &stage, int err) {
  if (err < 0) err = -err;
  std::string s = stage + " failed: " + strerror(err) + " (errno " + std::to_string(err) + ")";
  std::string w = take_warning();
  if (!w.empty()) s += "; libbpf: " + w;
  return s;
}

Napi::Object CodedErrorObject(Napi::Env env, const char *code, const char *stage, const std::string &message, int err) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("code", code);
  o.Set("stage", stage);
  o.Set("message", message);
  if (err) o.Set("errno", Napi::Number::New(env, err < 0 ? -err : err));
  return o;
}

Napi::Error CodedError(Napi::Env env, const char *code, const char *stage, const std::string &message, int err) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", code);
  e.Set("stage", stage);
  if (err) e.Set("errno", Napi::Number::New(env, err < 0 ? -err : err));
  return e;
}

}  // namespace droptrace

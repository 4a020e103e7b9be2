// SPDX-License-Identifier: GPL-2.0
// droptrace native addon: the thin layer between libbpf and TypeScript. Lifetime, attach,
// polling and errno live here; naming, parsing and policy live in src/. This file is the
// entry: the Tracer handle JS holds (probes.cc attaches, ring_reader.cc polls, maps.cc reads).
#include <napi.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <time.h>

#include <memory>
#include <string>

#include "addon.h"
#include "errors.h"
#include "maps.h"
#include "owners.h"
#include "probes.h"
#include "ring_reader.h"

namespace droptrace {
namespace {

ProbeOptions probe_options(const Napi::CallbackInfo &info, size_t *backlog) {
  ProbeOptions p;
  // JS validates options (src/native/binding.ts); here they are only read.
  if (info.Length() == 0 || !info[0].IsObject()) return p;
  Napi::Object o = info[0].As<Napi::Object>();
  if (o.Has("filterNetns")) p.filter_netns = o.Get("filterNetns").As<Napi::Number>().Uint32Value();
  if (o.Has("ringBytes")) p.ring_bytes = o.Get("ringBytes").As<Napi::Number>().Uint32Value();
  if (o.Has("captureHeaders")) p.capture_l3 = o.Get("captureHeaders").As<Napi::Boolean>().Value();
  if (o.Has("keyBurst")) p.key_burst = o.Get("keyBurst").As<Napi::Number>().Uint32Value();
  if (o.Has("detailBudget")) p.detail_budget = o.Get("detailBudget").As<Napi::Number>().Uint32Value();
  if (o.Has("stackPerKey")) p.stack_per_key = o.Get("stackPerKey").As<Napi::Number>().Uint32Value();
  if (o.Has("only")) p.only = o.Get("only").As<Napi::String>().Utf8Value();
  if (o.Has("extras")) p.extras = o.Get("extras").As<Napi::Boolean>().Value();
  if (o.Has("dns")) p.dns = o.Get("dns").As<Napi::Boolean>().Value();
  if (o.Has("backlogBytes")) *backlog = static_cast<size_t>(o.Get("backlogBytes").As<Napi::Number>().Int64Value());
  if (o.Has("targets")) {
    Napi::Object t = o.Get("targets").As<Napi::Object>();
    Napi::Array keys = t.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); i++) {
      std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
      p.targets.push_back({k, t.Get(k).As<Napi::String>().Utf8Value()});
    }
  }
  return p;
}

Napi::Array report_array(Napi::Env env, const std::vector<ProbeReport> &reports) {
  Napi::Array arr = Napi::Array::New(env, reports.size());
  for (size_t i = 0; i < reports.size(); i++) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("probe", reports[i].probe);
    r.Set("hook", reports[i].hook);
    r.Set("state", reports[i].state);
    if (!reports[i].why.empty()) r.Set("why", reports[i].why);
    if (!reports[i].code.empty()) r.Set("code", reports[i].code);
    if (reports[i].err) r.Set("errno", reports[i].err);
    if (!reports[i].module.empty()) r.Set("module", reports[i].module);
    arr.Set(i, r);
  }
  return arr;
}

class Tracer : public Napi::ObjectWrap<Tracer> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(env, "Tracer",
                                    {
                                        InstanceMethod("attach", &Tracer::Attach),
                                        InstanceMethod("retry", &Tracer::Retry),
                                        InstanceMethod("start", &Tracer::Start),
                                        InstanceMethod("stop", &Tracer::Stop),
                                        InstanceMethod("readCounters", &Tracer::ReadCounters),
                                        InstanceMethod("readKeys", &Tracer::ReadKeys),
                                        InstanceMethod("readLostKeys", &Tracer::ReadLostKeys),
                                        InstanceMethod("readStack", &Tracer::ReadStack),
                                        InstanceMethod("mapInfo", &Tracer::MapInfo),
                                        InstanceMethod("breakPoll", &Tracer::BreakPoll),
                                        InstanceMethod("close", &Tracer::Close),
                                    });
    exports.Set("Tracer", fn);
    return exports;
  }

  explicit Tracer(const Napi::CallbackInfo &info)
      : Napi::ObjectWrap<Tracer>(info),
        probes_(probe_options(info, &backlog_)),
        reader_(backlog_),
        dns_reader_(backlog_ / 4, RingReader::kDns) {
    env_ = info.Env();
    napi_add_env_cleanup_hook(env_, &Tracer::AtExit, this);
  }

  ~Tracer() override {
    Teardown();
    if (!exited_) napi_remove_env_cleanup_hook(env_, &Tracer::AtExit, this);
  }

  // Environment teardown (process exit): nothing may stay attached, and no JS runs.
  static void AtExit(void *arg) {
    Tracer *self = static_cast<Tracer *>(arg);
    self->exited_ = true;
    self->Teardown();
  }

 private:
  Napi::Value Refuse(Napi::Env env, const char *code, const std::string &why) {
    CodedError(env, code, "state", why).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  // Once per tracer: a second attach would load every hook a second time.
  Napi::Value Attach(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (closed_) return Refuse(env, "E_CLOSED", "attach after close");
    if (attach_tried_) return Refuse(env, "E_ALREADY_ATTACHED", "attach called twice on one tracer");
    attach_tried_ = true;
    return report_array(env, probes_.Attach());
  }

  // retry([probe, ...]): the optional probes named, tried again (a module they wait for came);
  // every probe's report, or [] once stopped. JS validates the names.
  Napi::Value Retry(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (closed_) return Refuse(env, "E_CLOSED", "retry after close");
    std::vector<std::string> names;
    if (info.Length() > 0 && info[0].IsArray()) {
      Napi::Array a = info[0].As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); i++) names.push_back(a.Get(i).As<Napi::String>().Utf8Value());
    }
    return report_array(env, probes_.Retry(names));
  }

  // start(onBatch, onEnd[, onDns]): onBatch gets one Buffer of raw records per wake-up; onEnd
  // runs once after the last batch, with an {code, stage, message, errno} object if polling
  // failed. onDns, when the DNS programs are attached, gets the DNS ring's records (struct
  // dt_dns) the same way; what it has not taken at the stop is counted as lost.
  Napi::Value Start(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (closed_) return Refuse(env, "E_CLOSED", "start after close");
    if (!probes_.loaded()) return Refuse(env, "E_NOT_ATTACHED", "start before a successful attach");
    if (started_) return Refuse(env, "E_ALREADY_STARTED", "start called twice on one tracer");
    if (info.Length() < 2 || !info[0].IsFunction() || !info[1].IsFunction())
      return Refuse(env, "E_ARGUMENT", "start(onBatch, onEnd) needs two functions");
    std::string why;
    int err = 0;
    const char *code = reader_.Start(env, bpf_map__fd(probes_.events()), info[0], &Tracer::OnEnd, this, &why, &err);
    if (code) {
      CodedError(env, code, "ringbuf", why, err).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    started_ = true;
    on_end_ = Napi::Persistent(info[1].As<Napi::Function>());
    // The poller's finalizer calls back into this object: it must outlive the poller.
    Ref();
    if (info.Length() > 2 && info[2].IsFunction() && probes_.dns_events()) {
      code = dns_reader_.Start(env, bpf_map__fd(probes_.dns_events()), info[2], &Tracer::OnDnsEnd, this, &why, &err);
      if (code) {
        CodedError(env, code, "ringbuf", why, err).ThrowAsJavaScriptException();
        return env.Undefined();
      }
      Ref();  // the same, for the DNS poller's finalizer
    }
    return env.Undefined();
  }

  static void OnDnsEnd(napi_env, void *hint) { static_cast<Tracer *>(hint)->Unref(); }

  static void OnEnd(napi_env raw, void *hint) {
    Tracer *self = static_cast<Tracer *>(hint);
    Napi::Env env(raw);
    Napi::HandleScope scope(env);
    if (!self->exited_ && !self->on_end_.IsEmpty()) {
      napi_value fn = self->on_end_.Value();
      napi_value undefined = env.Undefined();
      int e = self->reader_.poll_errno();
      napi_value arg = e ? static_cast<napi_value>(CodedErrorObject(env, "E_POLL", "poll", Describe("ring_buffer__poll", e), e))
                         : undefined;
      napi_call_function(raw, undefined, fn, e ? 1 : 0, &arg, nullptr);
    }
    self->on_end_.Reset();
    self->Unref();
  }

  // stop(): detach first (no new drops are traced), then let the poller drain and end;
  // onEnd fires when the last batch is in JS. Counters stay readable.
  Napi::Value Stop(const Napi::CallbackInfo &info) {
    probes_.Detach();
    reader_.RequestStop();
    dns_reader_.RequestStop();
    return info.Env().Undefined();
  }

  Napi::Value ReadCounters(const Napi::CallbackInfo &info) { return droptrace::ReadCounters(info.Env(), probes_, reader_, dns_reader_); }
  Napi::Value ReadKeys(const Napi::CallbackInfo &info) { return droptrace::ReadKeys(info.Env(), probes_.key_counts()); }
  Napi::Value ReadLostKeys(const Napi::CallbackInfo &info) { return reader_.ReadLostKeys(info.Env()); }
  // readStack(id): JS checked id is a u32
  Napi::Value ReadStack(const Napi::CallbackInfo &info) {
    return droptrace::ReadStack(info.Env(), probes_.stack_traces(), info[0].As<Napi::Number>().Uint32Value());
  }
  Napi::Value MapInfo(const Napi::CallbackInfo &info) { return droptrace::MapInfo(info.Env(), probes_.maps()); }

  // Fault injection for tests: the next ring_buffer__poll fails with EINVAL from the kernel.
  Napi::Value BreakPoll(const Napi::CallbackInfo &info) {
    return Napi::Boolean::New(info.Env(), reader_.BreakPoll());
  }

  Napi::Value Close(const Napi::CallbackInfo &info) {
    closed_ = true;
    Teardown();
    return info.Env().Undefined();
  }

  // Safe from any state, more than once: on close(), on GC and at environment exit.
  void Teardown() {
    probes_.Detach();
    reader_.Shutdown();
    dns_reader_.Shutdown();
    probes_.Reset();
  }

  size_t backlog_ = 0;
  ProbeSet probes_;
  RingReader reader_;  // after probes_: stopped before the maps it reads go
  RingReader dns_reader_;
  napi_env env_ = nullptr;
  bool exited_ = false;
  bool closed_ = false;
  bool attach_tried_ = false;
  bool started_ = false;
  Napi::FunctionReference on_end_;
};

void free_btf(btf *b) { btf__free(b); }
using BtfPtr = std::unique_ptr<btf, Deleter<btf, free_btf>>;

// btfEnum(name, [file]): an enum's values from kernel BTF, e.g. skb_drop_reason. The names
// of drop reasons always come from here, never from a table in the code.
Napi::Value BtfEnum(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  BtfPtr b(info.Length() > 1 && info[1].IsString() ? btf__parse(info[1].As<Napi::String>().Utf8Value().c_str(), nullptr)
                                                  : btf__load_vmlinux_btf());
  if (!b) {
    int e = errno;
    CodedError(env, "E_BTF", "btf", Describe("reading kernel BTF", e), e).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  __s32 id = btf__find_by_name_kind(b.get(), name.c_str(), BTF_KIND_ENUM);
  if (id <= 0) return env.Null();
  const struct btf_type *t = btf__type_by_id(b.get(), id);
  const struct btf_enum *e = btf_enum(t);
  uint16_t n = btf_vlen(t);
  Napi::Array arr = Napi::Array::New(env, n);
  for (uint16_t i = 0; i < n; i++) {
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, Napi::String::New(env, btf__name_by_offset(b.get(), e[i].name_off)));
    pair.Set(1u, Napi::Number::New(env, static_cast<uint32_t>(e[i].val)));
    arr.Set(i, pair);
  }
  return arr;
}

// kernelFeatures(): what droptrace cannot work without, probed by loading (libbpf's probes),
// never guessed from the version: {ringbuf: true | false | null (the probe failed: errno)}.
Napi::Value KernelFeatures(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  int r = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr);
  if (r < 0) {
    o.Set("ringbuf", env.Null());
    o.Set("ringbufErrno", -r);
  } else {
    o.Set("ringbuf", r == 1);
  }
  return o;
}

// clocks(): CLOCK_MONOTONIC (what bpf_ktime_get_ns returns) and CLOCK_REALTIME read back to
// back, so event times can be turned into wall-clock time.
Napi::Value Clocks(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct timespec m1, r, m2;
  clock_gettime(CLOCK_MONOTONIC, &m1);
  clock_gettime(CLOCK_REALTIME, &r);
  clock_gettime(CLOCK_MONOTONIC, &m2);
  uint64_t mono = ((uint64_t)m1.tv_sec * 1000000000ull + m1.tv_nsec + (uint64_t)m2.tv_sec * 1000000000ull + m2.tv_nsec) / 2;
  Napi::Object o = Napi::Object::New(env);
  o.Set("monotonicNs", Napi::BigInt::New(env, static_cast<uint64_t>(mono)));
  o.Set("realtimeNs", Napi::BigInt::New(env, static_cast<uint64_t>((uint64_t)r.tv_sec * 1000000000ull + r.tv_nsec)));
  return o;
}

Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  InstallLibbpfLog();
  Tracer::Init(env, exports);
  exports.Set("layout", Napi::Function::New(env, Layout));
  exports.Set("btfEnum", Napi::Function::New(env, BtfEnum));
  exports.Set("clocks", Napi::Function::New(env, Clocks));
  exports.Set("kernelFeatures", Napi::Function::New(env, KernelFeatures));
  return exports;
}

}  // namespace
}  // namespace droptrace

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return droptrace::InitAll(env, exports); }

NODE_API_MODULE(droptrace, InitAddon)

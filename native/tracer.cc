// SPDX-License-Identifier: GPL-2.0
// droptrace native addon: the thin layer between libbpf and TypeScript. Lifetime, attach,
// polling and errno live here; naming, parsing and policy live in src/.
#include <napi.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/types.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "droptrace.h"
#include "droptrace.skel.h"
#include "hooks.skel.h"

namespace {

// libbpf explains failures through its print callback; keep the last warning so an
// "unavailable" probe can say why in the kernel's own words.
std::mutex g_log_mu;
std::vector<std::string> g_warnings;  // since the last take_warning()

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

std::string describe(const char *stage, int err) {
  if (err < 0) err = -err;
  std::string s = std::string(stage) + " failed: " + strerror(err) + " (errno " + std::to_string(err) + ")";
  std::string w = take_warning();
  if (!w.empty()) s += "; libbpf: " + w;
  return s;
}

struct Candidate {
  const char *hook;  // what the user sees
  bool btf;          // tp_btf program, else the classic tracepoint
};
const Candidate kCandidates[] = {
    {"tp_btf/kfree_skb", true},
    {"tracepoint/skb/kfree_skb", false},
};

// Optional hooks (probes/hooks.bpf.c): each group keeps the first candidate that attaches.
enum class ExtraType { Tracepoint, Fexit, Kretprobe, Kprobe };
struct Extra {
  const char *probe;  // group name the user sees
  const char *hook;
  const char *prog;   // program name in hooks.bpf.c
  ExtraType type;
  const char *target;  // kernel function (fexit, kretprobe)
};
const Extra kExtras[] = {
    {"neigh_create", "tracepoint/neigh/neigh_create", "dt_neigh_create_tp", ExtraType::Tracepoint, ""},
    {"neigh_alloc", "fexit/__neigh_create", "dt_neigh_fexit", ExtraType::Fexit, "__neigh_create"},
    {"neigh_alloc", "kretprobe/__neigh_create", "dt_neigh_kretprobe", ExtraType::Kretprobe, "__neigh_create"},
    {"ct_alloc", "fexit/__nf_conntrack_alloc", "dt_ct_alloc_fexit", ExtraType::Fexit, "__nf_conntrack_alloc"},
    {"ct_alloc", "kretprobe/__nf_conntrack_alloc", "dt_ct_alloc_kretprobe", ExtraType::Kretprobe,
     "__nf_conntrack_alloc"},
    {"martian", "fentry/ip_handle_martian_source", "dt_martian_fentry", ExtraType::Fexit, "ip_handle_martian_source"},
    {"martian", "kprobe/ip_handle_martian_source", "dt_martian_kprobe", ExtraType::Kprobe, "ip_handle_martian_source"},
};

// Which of `names` are kernel text symbols now (/proc/kallsyms, modules included): a probe on
// a function that is not there (module not loaded, renamed, inlined) says so in those words.
std::vector<std::string> missing_ksyms(const std::vector<std::string> &names) {
  std::vector<bool> found(names.size(), false);
  FILE *f = fopen("/proc/kallsyms", "r");
  if (!f) return {};
  char line[512];
  while (fgets(line, sizeof(line), f)) {
    char *sp = strchr(line, ' ');
    if (!sp || (sp[1] != 't' && sp[1] != 'T')) continue;
    char *name = sp + 3;
    name[strcspn(name, "\t\n")] = 0;
    for (size_t i = 0; i < names.size(); i++)
      if (!found[i] && names[i] == name) found[i] = true;
  }
  fclose(f);
  std::vector<std::string> out;
  for (size_t i = 0; i < names.size(); i++)
    if (!found[i]) out.push_back(names[i]);
  return out;
}

struct ProbeReport {
  std::string probe;
  std::string hook;
  std::string state;  // attached | unavailable | standby
  std::string why;
};

struct Batch {
  std::vector<uint8_t> data;
};

class Tracer : public Napi::ObjectWrap<Tracer> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(env, "Tracer",
                                    {
                                        InstanceMethod("attach", &Tracer::Attach),
                                        InstanceMethod("start", &Tracer::Start),
                                        InstanceMethod("stop", &Tracer::Stop),
                                        InstanceMethod("readCounters", &Tracer::ReadCounters),
                                        InstanceMethod("readKeys", &Tracer::ReadKeys),
                                        InstanceMethod("readLostKeys", &Tracer::ReadLostKeys),
                                        InstanceMethod("close", &Tracer::Close),
                                    });
    exports.Set("Tracer", fn);
    return exports;
  }

  explicit Tracer(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Tracer>(info) {
    Napi::Env env = info.Env();
    // JS validates options (src/native.ts); here they are only read.
    if (info.Length() > 0 && info[0].IsObject()) {
      Napi::Object o = info[0].As<Napi::Object>();
      if (o.Has("filterNetns")) filter_netns_ = o.Get("filterNetns").As<Napi::Number>().Uint32Value();
      if (o.Has("ringBytes")) ring_bytes_ = o.Get("ringBytes").As<Napi::Number>().Uint32Value();
      if (o.Has("captureHeaders")) capture_l3_ = o.Get("captureHeaders").As<Napi::Boolean>().Value();
      if (o.Has("keyBurst")) key_burst_ = o.Get("keyBurst").As<Napi::Number>().Uint32Value();
      if (o.Has("only")) only_ = o.Get("only").As<Napi::String>().Utf8Value();
      if (o.Has("extras")) extras_ = o.Get("extras").As<Napi::Boolean>().Value();
      if (o.Has("targets")) {
        Napi::Object t = o.Get("targets").As<Napi::Object>();
        Napi::Array keys = t.GetPropertyNames();
        for (uint32_t i = 0; i < keys.Length(); i++) {
          std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
          targets_.push_back({k, t.Get(k).As<Napi::String>().Utf8Value()});
        }
      }
    }
    env_ = env;
    napi_add_env_cleanup_hook(env, &Tracer::AtExit, this);
  }

  ~Tracer() override {
    Teardown();
    if (!exited_) napi_remove_env_cleanup_hook(env_, &Tracer::AtExit, this);
  }

  // Environment teardown (process exit): nothing may stay attached.
  static void AtExit(void *arg) {
    Tracer *self = static_cast<Tracer *>(arg);
    self->exited_ = true;
    self->Teardown();
  }

 private:
  // open -> configure -> load -> attach, trying each way of reaching the hook in order of
  // preference; the first that attaches is kept, the rest report why they were not used.
  Napi::Value Attach(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    std::vector<ProbeReport> reports;
    for (const Candidate &c : kCandidates) {
      if (!only_.empty() && only_ != c.hook) continue;
      if (skel_) {
        reports.push_back({"kfree_skb", c.hook, "standby", std::string("not needed: ") + attached_hook_ + " is attached"});
        continue;
      }
      std::string why;
      if (TryCandidate(c, &why)) {
        attached_hook_ = c.hook;
        reports.push_back({"kfree_skb", c.hook, "attached", ""});
      } else {
        reports.push_back({"kfree_skb", c.hook, "unavailable", why});
      }
    }
    if (skel_ && extras_) {
      std::string group, winner;
      for (const Extra &x : kExtras) {
        if (group != x.probe) {
          group = x.probe;
          winner.clear();
        }
        if (!winner.empty()) {
          reports.push_back({x.probe, x.hook, "standby", "not needed: " + winner + " is attached"});
          continue;
        }
        std::string why;
        if (TryExtra(x, &why)) {
          winner = x.hook;
          reports.push_back({x.probe, x.hook, "attached", ""});
        } else {
          reports.push_back({x.probe, x.hook, "unavailable", why});
        }
      }
    }
    Napi::Array arr = Napi::Array::New(env, reports.size());
    for (size_t i = 0; i < reports.size(); i++) {
      Napi::Object r = Napi::Object::New(env);
      r.Set("probe", reports[i].probe);
      r.Set("hook", reports[i].hook);
      r.Set("state", reports[i].state);
      if (!reports[i].why.empty()) r.Set("why", reports[i].why);
      arr.Set(i, r);
    }
    return arr;
  }

  bool TryCandidate(const Candidate &c, std::string *why) {
    take_warning();
    droptrace_bpf *skel = droptrace_bpf__open();
    if (!skel) {
      *why = describe("open", errno);
      return false;
    }
    skel->rodata->filter_netns = filter_netns_;
    skel->rodata->key_burst = key_burst_;
    skel->rodata->capture_l3 = capture_l3_ ? 1 : 0;
    if (ring_bytes_) bpf_map__set_max_entries(skel->maps.events, ring_bytes_);
    // the drop program wakes the reader at once past a quarter of the ring (wake_flags)
    skel->rodata->wake_bytes = bpf_map__max_entries(skel->maps.events) / 4;
    bpf_program__set_autoload(skel->progs.dt_kfree_skb_btf, c.btf);
    bpf_program__set_autoload(skel->progs.dt_kfree_skb_tp, !c.btf);
    int err = droptrace_bpf__load(skel);
    if (err) {
      *why = describe("load", err);
      droptrace_bpf__destroy(skel);
      return false;
    }
    bpf_program *prog = c.btf ? skel->progs.dt_kfree_skb_btf : skel->progs.dt_kfree_skb_tp;
    bpf_link *link = bpf_program__attach(prog);
    if (!link) {
      *why = describe("attach", errno);
      droptrace_bpf__destroy(skel);
      return false;
    }
    skel_ = skel;
    link_ = link;
    return true;
  }

  // targets: {hook or kernel function: replacement function} (DROPTRACE_RENAME, tests)
  std::string TargetOf(const Extra &x) {
    for (auto &kv : targets_)
      if (kv.first == x.hook || (x.target[0] && kv.first == x.target)) return kv.second;
    return x.target;
  }

  bool TryExtra(const Extra &x, std::string *why) {
    take_warning();
    std::string target = TargetOf(x);
    if (!target.empty()) {
      if (!ksyms_checked_) {
        std::vector<std::string> names;
        for (const Extra &e : kExtras)
          if (e.target[0]) names.push_back(TargetOf(e));
        missing_ = missing_ksyms(names);
        ksyms_checked_ = true;
      }
      for (const std::string &m : missing_) {
        if (m == target) {
          *why = "kernel function " + target + " not found in /proc/kallsyms (module not loaded, renamed or inlined on this kernel)";
          return false;
        }
      }
    }
    bool kprobe = x.type == ExtraType::Kretprobe || x.type == ExtraType::Kprobe;
    if (kprobe && access("/sys/bus/event_source/devices/kprobe", F_OK) != 0) {
      *why = "this kernel has no kprobes (CONFIG_KPROBES off)";
      return false;
    }
    hooks_bpf *h = hooks_bpf__open();
    if (!h) {
      *why = describe("open", errno);
      return false;
    }
    bpf_program *prog = nullptr, *p = nullptr;
    bpf_object__for_each_program(p, h->obj) {
      bool me = strcmp(bpf_program__name(p), x.prog) == 0;
      bpf_program__set_autoload(p, me);
      if (me) prog = p;
    }
    int err = 0;
    if (!prog) err = -ENOENT;
    if (!err) err = bpf_map__reuse_fd(h->maps.stats, bpf_map__fd(skel_->maps.stats));
    if (!err) err = bpf_map__reuse_fd(h->maps.recent, bpf_map__fd(skel_->maps.recent));
    if (!err && x.type == ExtraType::Fexit && target != x.target)
      err = bpf_program__set_attach_target(prog, 0, target.c_str());
    if (err) {
      *why = describe("configure", err);
      hooks_bpf__destroy(h);
      return false;
    }
    err = hooks_bpf__load(h);
    if (err && x.type == ExtraType::Fexit && (err == -EPERM || errno == EPERM)) {
      take_warning();  // libbpf's "raise ulimit -l" guess does not apply here
      *why = "this kernel refuses fentry/fexit programs (EPERM on load of " + std::string(x.hook) + ")";
      hooks_bpf__destroy(h);
      return false;
    }
    if (err) {
      *why = describe(target.empty() ? "load" : ("load (" + target + ")").c_str(), err);
      hooks_bpf__destroy(h);
      return false;
    }
    bpf_link *link = kprobe ? bpf_program__attach_kprobe(prog, x.type == ExtraType::Kretprobe, target.c_str())
                            : bpf_program__attach(prog);
    if (!link) {
      *why = describe(("attach (" + target + ")").c_str(), errno);
      hooks_bpf__destroy(h);
      return false;
    }
    extras_loaded_.push_back({h, link});
    return true;
  }

  // start(onBatch, onEnd): a thread polls the ring buffer and hands JS one Buffer of raw
  // records per wake-up. onEnd runs once, after the last batch has been delivered.
  Napi::Value Start(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!skel_) {
      Napi::Error::New(env, "start before attach").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (thread_.joinable()) {
      Napi::Error::New(env, "already started").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    rb_ = ring_buffer__new(bpf_map__fd(skel_->maps.events), &Tracer::OnRecord, this, nullptr);
    if (!rb_) {
      Napi::Error::New(env, describe("ring_buffer__new", errno)).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    on_end_ = Napi::Persistent(info[1].As<Napi::Function>());
    // A bounded queue: when JS falls behind, batches are dropped and counted, and the
    // poller never waits (the kernel side must never be slowed by userspace).
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "droptrace-poll", 256, 1, this,
                                          [](Napi::Env env, Tracer *self) { self->Finished(env); });
    stopping_ = false;
    thread_ = std::thread([this]() { Poll(); });
    return env.Undefined();
  }

  static int OnRecord(void *ctx, void *data, size_t size) {
    Tracer *self = static_cast<Tracer *>(ctx);
    const dt_event *e = static_cast<const dt_event *>(data);
    // Records are framed by their own size field; a record that disagrees with the ring
    // buffer's length is counted, never guessed at.
    if (size < sizeof(dt_event) || e->size < sizeof(dt_event) || e->size > size) {
      self->short_records_++;
      return 0;
    }
    const uint8_t *p = static_cast<const uint8_t *>(data);
    self->pending_.insert(self->pending_.end(), p, p + e->size);
    return 0;
  }

  // When JS is behind (its queue is full) the records wait here and later ones join them, up
  // to kPendingMax bytes; only past that are they dropped, and then counted per key so the
  // stream can still fold their drops back into exact counts.
  static constexpr size_t kPendingMax = 64u << 20;

  void Flush(bool final) {
    if (pending_.empty()) return;
    Batch *b = new Batch();
    b->data.swap(pending_);
    auto cb = [](Napi::Env env, Napi::Function fn, Batch *b) {
      Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::Copy(env, b->data.data(), b->data.size());
      delete b;
      fn.Call({buf});
    };
    napi_status st = final && !abandon_.load() ? tsfn_.BlockingCall(b, cb) : tsfn_.NonBlockingCall(b, cb);
    if (st == napi_ok) return;
    if (!final && st == napi_queue_full && b->data.size() < kPendingMax) {
      pending_.swap(b->data);  // keep them; the next wake-up tries again with more
      delete b;
      return;
    }
    CountLost(b->data);
    delete b;
  }

  void CountLost(const std::vector<uint8_t> &buf) {
    std::lock_guard<std::mutex> lk(lost_mu_);
    for (size_t off = 0; off + sizeof(dt_event) <= buf.size();) {
      const dt_event *e = reinterpret_cast<const dt_event *>(buf.data() + off);
      off += e->size;
      user_lost_++;
      static_assert(offsetof(dt_event, key) == 0, "a record starts with its counter key");
      std::string key(reinterpret_cast<const char *>(&e->key), sizeof(dt_key));
      auto it = lost_keys_.find(key);
      if (it != lost_keys_.end())
        it->second++;
      else if (lost_keys_.size() < 65536)
        lost_keys_.emplace(key, 1);
    }
  }

  // readLostKeys(): detail events userspace could not take, per key, in readKeys()' format
  // ([struct dt_key][u64 count][u64 suppressed], both the lost count); cumulative.
  Napi::Value ReadLostKeys(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    std::lock_guard<std::mutex> lk(lost_mu_);
    std::vector<uint8_t> out(lost_keys_.size() * (sizeof(dt_key) + 16));
    size_t at = 0;
    for (auto &kv : lost_keys_) {
      memcpy(out.data() + at, kv.first.data(), sizeof(dt_key));
      memcpy(out.data() + at + sizeof(dt_key), &kv.second, 8);
      memcpy(out.data() + at + sizeof(dt_key) + 8, &kv.second, 8);
      at += sizeof(dt_key) + 16;
    }
    return Napi::Buffer<uint8_t>::Copy(env, out.data(), out.size());
  }

  void Poll() {
    while (!stopping_.load()) {
      int n = ring_buffer__poll(rb_, 100);
      if (n < 0 && n != -EINTR) {
        poll_errors_++;
        break;
      }
      // In a flood the kernel side submits without waking us (probes/droptrace.bpf.c,
      // wake_flags): a quiet poll still takes what is there.
      if (n == 0) ring_buffer__consume(rb_);
      Flush(false);
    }
    // The link is gone by now: drain what the kernel already wrote, then end.
    ring_buffer__consume(rb_);
    Flush(true);
    tsfn_.Release();
  }

  void Finished(Napi::Env env) {
    if (thread_.joinable()) thread_.join();
    if (rb_) {
      ring_buffer__free(rb_);
      rb_ = nullptr;
    }
    if (!on_end_.IsEmpty()) {
      Napi::Function fn = on_end_.Value();
      on_end_.Reset();
      fn.Call({});
    }
  }

  static size_t records_in(const std::vector<uint8_t> &buf) {
    size_t n = 0;
    for (size_t off = 0; off + sizeof(dt_event) <= buf.size(); n++) {
      const dt_event *e = reinterpret_cast<const dt_event *>(buf.data() + off);
      off += e->size;
    }
    return n;
  }

  void Detach() {
    for (auto &x : extras_loaded_) {
      if (x.second) bpf_link__destroy(x.second);
      x.second = nullptr;
    }
    if (link_) {
      bpf_link__destroy(link_);
      link_ = nullptr;
    }
  }

  // stop(): detach first (no new drops are traced), then let the poller drain and end;
  // onEnd from start() fires when the last batch is in JS. Counters stay readable.
  Napi::Value Stop(const Napi::CallbackInfo &info) {
    Detach();
    stopping_ = true;
    return info.Env().Undefined();
  }

  Napi::Value ReadCounters(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    if (!skel_) return out;
    int ncpu = libbpf_num_possible_cpus();
    std::vector<uint64_t> vals(ncpu > 0 ? ncpu : 1);
    Napi::Object reasons = Napi::Object::New(env);
    int rfd = bpf_map__fd(skel_->maps.reason_counts);
    for (uint32_t k = 0; k < DT_REASON_SLOTS; k++) {
      if (bpf_map_lookup_elem(rfd, &k, vals.data())) continue;
      uint64_t sum = 0;
      for (uint64_t v : vals) sum += v;
      if (sum) reasons.Set(std::to_string(k), Napi::BigInt::New(env, sum));
    }
    out.Set("reasons", reasons);
    int sfd = bpf_map__fd(skel_->maps.stats);
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
    out.Set("ringLost", Napi::BigInt::New(env, stat(DT_STAT_RB_LOST)));
    out.Set("userLost", Napi::BigInt::New(env, static_cast<uint64_t>(user_lost_.load())));
    out.Set("shortRecords", Napi::BigInt::New(env, static_cast<uint64_t>(short_records_.load())));
    out.Set("pollErrors", Napi::BigInt::New(env, static_cast<uint64_t>(poll_errors_.load())));
    return out;
  }

  // readKeys(): every key of the per-key counter map with its count and suppressed count
  // summed over CPUs, as one Buffer of [struct dt_key][u64 count][u64 suppressed] entries.
  Napi::Value ReadKeys(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    std::vector<uint8_t> out;
    if (!skel_) return Napi::Buffer<uint8_t>::Copy(env, out.data(), 0);
    int fd = bpf_map__fd(skel_->maps.key_counts);
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu < 1) ncpu = 1;
    const size_t vsz = (sizeof(dt_key_val) + 7) & ~size_t(7);
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

  Napi::Value Close(const Napi::CallbackInfo &info) {
    Teardown();
    return info.Env().Undefined();
  }

  // Safe from any state, more than once: on close(), on GC and at environment exit.
  void Teardown() {
    Detach();
    // The JS thread is about to wait for the poller: it must not wait for JS in turn.
    abandon_ = true;
    stopping_ = true;
    if (thread_.joinable()) {
      // At exit the JS side may no longer run the finaliser; the poller ends by itself.
      thread_.join();
    }
    if (rb_) {
      ring_buffer__free(rb_);
      rb_ = nullptr;
    }
    for (auto &x : extras_loaded_) hooks_bpf__destroy(x.first);
    extras_loaded_.clear();
    if (skel_) {
      droptrace_bpf__destroy(skel_);
      skel_ = nullptr;
    }
  }

  uint32_t filter_netns_ = 0;
  uint32_t ring_bytes_ = 0;
  std::string only_;
  uint32_t key_burst_ = 0;
  bool capture_l3_ = false;
  bool extras_ = true;
  std::vector<std::pair<std::string, std::string>> targets_;
  std::vector<std::pair<hooks_bpf *, bpf_link *>> extras_loaded_;
  bool ksyms_checked_ = false;
  std::vector<std::string> missing_;
  std::string attached_hook_;
  droptrace_bpf *skel_ = nullptr;
  bpf_link *link_ = nullptr;
  ring_buffer *rb_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> abandon_{false};
  napi_env env_ = nullptr;
  bool exited_ = false;
  std::vector<uint8_t> pending_;
  Napi::ThreadSafeFunction tsfn_;
  Napi::FunctionReference on_end_;
  std::atomic<uint64_t> user_lost_{0};
  std::mutex lost_mu_;
  std::unordered_map<std::string, uint64_t> lost_keys_;
  std::atomic<uint64_t> short_records_{0};
  std::atomic<uint64_t> poll_errors_{0};
};

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

// btfEnum(name, [file]): an enum's values from kernel BTF, e.g. skb_drop_reason. The names
// of drop reasons always come from here, never from a table in the code.
Napi::Value BtfEnum(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  struct btf *btf = nullptr;
  if (info.Length() > 1 && info[1].IsString())
    btf = btf__parse(info[1].As<Napi::String>().Utf8Value().c_str(), nullptr);
  else
    btf = btf__load_vmlinux_btf();
  if (!btf) {
    Napi::Error::New(env, describe("reading kernel BTF", errno)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Value result = env.Null();
  __s32 id = btf__find_by_name_kind(btf, name.c_str(), BTF_KIND_ENUM);
  if (id > 0) {
    const struct btf_type *t = btf__type_by_id(btf, id);
    const struct btf_enum *e = btf_enum(t);
    uint16_t n = btf_vlen(t);
    Napi::Array arr = Napi::Array::New(env, n);
    for (uint16_t i = 0; i < n; i++) {
      Napi::Array pair = Napi::Array::New(env, 2);
      pair.Set(0u, Napi::String::New(env, btf__name_by_offset(btf, e[i].name_off)));
      pair.Set(1u, Napi::Number::New(env, static_cast<uint32_t>(e[i].val)));
      arr.Set(i, pair);
    }
    result = arr;
  }
  btf__free(btf);
  return result;
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
  libbpf_set_print(libbpf_print);
  Tracer::Init(env, exports);
  exports.Set("layout", Napi::Function::New(env, Layout));
  exports.Set("btfEnum", Napi::Function::New(env, BtfEnum));
  exports.Set("clocks", Napi::Function::New(env, Clocks));
  return exports;
}

}  // namespace

NODE_API_MODULE(droptrace, InitAll)

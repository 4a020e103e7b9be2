// SPDX-License-Identifier: GPL-2.0
#include "probes.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <cstdio>

#include <bpf/btf.h>

// the skeleton names the header's enums in its rodata
#include "droptrace.h"
#include "droptrace.skel.h"
#include "errors.h"
#include "hooks.skel.h"

namespace droptrace {

void SkelFree::operator()(droptrace_bpf *s) const { droptrace_bpf__destroy(s); }
void SkelFree::operator()(hooks_bpf *s) const { hooks_bpf__destroy(s); }

struct ProbeSet::Candidate {
  const char *hook;  // what the user sees
  bool btf;          // tp_btf program, else the classic tracepoint
};

namespace {


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

// Does this kernel's kfree_skb tracepoint carry a drop reason (5.17+)? Its BTF prototype
// says: btf_trace_kfree_skb -> (void *, skb, location[, reason]). Read once per process.
bool kfree_skb_has_reason() {
  static int known = -1;
  if (known >= 0) return known;
  known = 1;  // unreadable BTF: the reasoned programs' load says why
  btf *vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return known;
  __s32 id = btf__find_by_name_kind(vmlinux, "btf_trace_kfree_skb", BTF_KIND_TYPEDEF);
  const btf_type *t = id > 0 ? btf__type_by_id(vmlinux, id) : nullptr;
  if (t) t = btf__type_by_id(vmlinux, t->type);
  if (t && btf_is_ptr(t)) t = btf__type_by_id(vmlinux, t->type);
  if (t && btf_is_func_proto(t)) known = btf_vlen(t) >= 4;
  btf__free(vmlinux);
  return known;
}

// [start, next symbol) of a kernel text symbol, from /proc/kallsyms; {0, 0} when not there.
std::pair<uint64_t, uint64_t> ksym_range(const char *name) {
  FILE *f = fopen("/proc/kallsyms", "r");
  if (!f) return {0, 0};
  uint64_t lo = 0, hi = 0;
  char line[512];
  std::vector<uint64_t> text;
  while (fgets(line, sizeof(line), f)) {
    unsigned long long a = 0;
    char type = 0, sym[256];
    if (sscanf(line, "%llx %c %255s", &a, &type, sym) != 3 || (type != 't' && type != 'T')) continue;
    if (!lo && strcmp(sym, name) == 0) lo = a;
    text.push_back(a);
  }
  fclose(f);
  for (uint64_t a : text)
    if (a > lo && (!hi || a < hi)) hi = a;
  return lo ? std::make_pair(lo, hi) : std::make_pair<uint64_t, uint64_t>(0, 0);
}

bool fail(ProbeReport *r, const char *code, const std::string &why, int err = 0) {
  r->state = "unavailable";
  r->code = code;
  r->why = why;
  r->err = err < 0 ? -err : err;
  return false;
}

}  // namespace

// Optional hooks (probes/hooks.bpf.c): each group keeps the first candidate that attaches.
enum class ExtraType { Tracepoint, Fexit, Kretprobe, Kprobe };
struct ProbeSet::Extra {
  const char *probe;  // group name the user sees
  const char *hook;
  const char *prog;   // program name in hooks.bpf.c
  ExtraType type;
  const char *target;  // kernel function (fexit, kretprobe)
  // The loadable module `target` is in, when it may be loaded after droptrace started (e.g.
  // nf_conntrack, loaded by kube-proxy): such a probe reports E_MODULE_NOT_LOADED, and the
  // stream tries it again when the module appears (src/pipeline/late-probes.ts).
  const char *module = "";
  bool without_reasons = false;  // only where kfree_skb has no reason: a reason says it elsewhere
};

namespace {

const ProbeSet::Candidate kCandidates[] = {
    {"tp_btf/kfree_skb", true},
    {"tracepoint/skb/kfree_skb", false},
};

const ProbeSet::Extra kExtras[] = {
    // tp_btf first: a classic tracepoint needs perf_event_open(), which container runtimes'
    // default seccomp profiles may refuse
    {"neigh_create", "tp_btf/neigh_create", "dt_neigh_create_btf", ExtraType::Tracepoint, ""},
    {"neigh_create", "tracepoint/neigh/neigh_create", "dt_neigh_create_tp", ExtraType::Tracepoint, ""},
    {"neigh_alloc", "fexit/__neigh_create", "dt_neigh_fexit", ExtraType::Fexit, "__neigh_create"},
    {"neigh_alloc", "kretprobe/__neigh_create", "dt_neigh_kretprobe", ExtraType::Kretprobe, "__neigh_create"},
    {"ct_alloc", "fexit/__nf_conntrack_alloc", "dt_ct_alloc_fexit", ExtraType::Fexit, "__nf_conntrack_alloc", "nf_conntrack"},
    {"ct_alloc", "kretprobe/__nf_conntrack_alloc", "dt_ct_alloc_kretprobe", ExtraType::Kretprobe,
     "__nf_conntrack_alloc", "nf_conntrack"},
    {"martian", "fentry/ip_handle_martian_source", "dt_martian_fentry", ExtraType::Fexit, "ip_handle_martian_source"},
    {"martian", "kprobe/ip_handle_martian_source", "dt_martian_kprobe", ExtraType::Kprobe, "ip_handle_martian_source"},
    {"route_err", "fexit/ip_route_input_noref", "dt_route_fexit", ExtraType::Fexit, "ip_route_input_noref", "", true},
    {"route_err", "kretprobe/ip_route_input_noref", "dt_route_kretprobe", ExtraType::Kretprobe, "ip_route_input_noref",
     "", true},
};

}  // namespace

std::vector<ProbeReport> ProbeSet::Attach() {
  reports_.clear();
  for (const Candidate &c : kCandidates) {
    if (!o_.only.empty() && o_.only != c.hook) continue;
    ProbeReport r{"kfree_skb", c.hook, "attached", "", "", 0, ""};
    if (skel_) {
      r.state = "standby";
      r.why = "not needed: " + attached_hook_ + " is attached";
    } else if (TryCandidate(c, &r)) {
      attached_hook_ = c.hook;
    }
    reports_.push_back(r);
  }
  if (skel_ && o_.dns) AttachDns();
  if (skel_ && o_.extras) AttachExtras([](const char *) { return true; });
  return reports_;
}

// The DNS programs are in the drop object (they share its parser and stats): loaded with it,
// attached here, each reporting on its own as the probe "dns".
void ProbeSet::AttachDns() {
  struct {
    const char *hook;
    bpf_program *prog;
    Link *link;
  } progs[] = {
      {"tp_btf/net_dev_queue", skel_->progs.dt_dns_out, &dns_out_},
      {"tp_btf/netif_receive_skb", skel_->progs.dt_dns_in, &dns_in_},
  };
  bool all = true;
  for (auto &x : progs) {
    ProbeReport r{"dns", x.hook, "attached", "", "", 0, ""};
    if (!dns_load_) {
      fail(&r, "E_BPF_LOAD", dns_why_);
    } else {
      Link link(bpf_program__attach(x.prog));
      if (!link) {
        int e = errno;
        fail(&r, "E_ATTACH", Describe("attach", e), e);
      } else {
        *x.link = std::move(link);
      }
    }
    all = all && r.state == "attached";
    reports_.push_back(r);
  }
  // half a pair would report every query unanswered (or every answer unasked)
  if (!all) {
    dns_load_ = false;
    dns_out_.reset();
    dns_in_.reset();
    for (ProbeReport &r : reports_)
      if (r.probe == "dns" && r.state == "attached") {
        r.state = "unavailable";
        r.code = "E_ATTACH";
        r.why = "its pair could not attach";
      }
  }
}

std::vector<ProbeReport> ProbeSet::Retry(const std::vector<std::string> &probes) {
  if (!skel_ || detached_) return {};
  ksyms_checked_ = false;  // modules came (or went) since: read kallsyms again
  AttachExtras([&](const char *probe) {
    bool named = false, live = false;
    for (const std::string &p : probes) named = named || p == probe;
    for (const ProbeReport &r : reports_) live = live || (r.probe == probe && r.state == "attached");
    return named && !live;
  });
  return reports_;
}

template <typename Want>
void ProbeSet::AttachExtras(Want want) {
  std::string group, winner;
  bool wanted = false;
  for (const Extra &x : kExtras) {
    if (group != x.probe) {
      group = x.probe;
      winner.clear();
      wanted = want(x.probe);  // once per group: its own reports change below
    }
    if (!wanted) continue;
    ProbeReport r{x.probe, x.hook, "attached", "", "", 0, ""};
    if (!winner.empty()) {
      r.state = "standby";
      r.why = "not needed: " + winner + " is attached";
    } else if (TryExtra(x, &r)) {
      winner = x.hook;
    }
    // a retried hook replaces its earlier report, in place
    bool replaced = false;
    for (ProbeReport &old : reports_) {
      if (old.hook == r.hook) {
        old = r;
        replaced = true;
      }
    }
    if (!replaced) reports_.push_back(r);
  }
}

bool ProbeSet::TryCandidate(const Candidate &c, ProbeReport *r) {
  ClearWarnings();
  DropSkel skel(droptrace_bpf__open());
  if (!skel) {
    int e = errno;
    return fail(r, "E_BPF_OPEN", Describe("open", e), e);
  }
  skel->rodata->filter_netns = o_.filter_netns;
  skel->rodata->key_burst = o_.key_burst;
  skel->rodata->detail_budget = o_.detail_budget;
  skel->rodata->capture_l3 = o_.capture_l3 ? 1 : 0;
  skel->rodata->stack_per_key = o_.stack_per_key;
  // without --stack nothing reads the stack map: one entry instead of ~1.8 MiB
  if (!o_.stack_per_key) bpf_map__set_max_entries(skel->maps.stack_traces, 1);
  if (o_.ring_bytes) bpf_map__set_max_entries(skel->maps.events, o_.ring_bytes);
  // the drop program wakes the reader at once past a quarter of the ring (wake_flags)
  skel->rodata->wake_bytes = bpf_map__max_entries(skel->maps.events) / 4;
  // Before 5.17 kfree_skb has no reason: tp_btf takes two arguments, and netfilter drops are
  // known by their place (nf_hook_slow) instead of NETFILTER_DROP.
  bool reasons = kfree_skb_has_reason();
  if (!reasons) {
    // read once per process: a fallback to the next candidate needs the same range
    static const std::pair<uint64_t, uint64_t> nf = ksym_range("nf_hook_slow");
    skel->rodata->nf_drop_lo = nf.first;
    skel->rodata->nf_drop_hi = nf.second;
    r->why = "without drop reasons: this kernel's kfree_skb has none (5.17+), drops are classified by place";
  }
  bpf_program *prog = !c.btf ? skel->progs.dt_kfree_skb_tp
                      : reasons ? skel->progs.dt_kfree_skb_btf
                                : skel->progs.dt_kfree_skb_btf_noreason;
  bpf_program__set_autoload(skel->progs.dt_kfree_skb_btf, prog == skel->progs.dt_kfree_skb_btf);
  bpf_program__set_autoload(skel->progs.dt_kfree_skb_btf_noreason, prog == skel->progs.dt_kfree_skb_btf_noreason);
  bpf_program__set_autoload(skel->progs.dt_kfree_skb_tp, prog == skel->progs.dt_kfree_skb_tp);
  bool dns = o_.dns && dns_why_.empty();
  bpf_program__set_autoload(skel->progs.dt_dns_out, dns);
  bpf_program__set_autoload(skel->progs.dt_dns_in, dns);
  int err = droptrace_bpf__load(skel.get());
  if (err && dns) {
    // the DNS programs must never cost the drop program: load again without them
    dns_why_ = Describe("load of the DNS programs", err);
    return TryCandidate(c, r);
  }
  if (err) return fail(r, "E_BPF_LOAD", Describe("load", err), err);
  dns_load_ = dns;
  Link link(bpf_program__attach(prog));
  if (!link) {
    int e = errno;
    return fail(r, "E_ATTACH", Describe("attach", e), e);
  }
  skel_ = std::move(skel);
  link_ = std::move(link);
  return true;
}

// targets: {hook or kernel function: replacement function} (DROPTRACE_RENAME, tests)
std::string ProbeSet::TargetOf(const Extra &x) const {
  for (auto &kv : o_.targets)
    if (kv.first == x.hook || (x.target[0] && kv.first == x.target)) return kv.second;
  return x.target;
}

bool ProbeSet::TryExtra(const Extra &x, ProbeReport *r) {
  ClearWarnings();
  if (x.without_reasons && kfree_skb_has_reason()) {
    r->state = "standby";
    r->why = "not needed: this kernel's drop reasons say it";
    return false;
  }
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
      if (m != target) continue;
      // a renamed target (tests) is not the module's function
      std::string module = target == x.target ? x.module : "";
      if (!module.empty() && access(("/sys/module/" + module).c_str(), F_OK) != 0) {
        r->module = module;
        return fail(r, "E_MODULE_NOT_LOADED", "kernel function " + target + " is in module " + module + ", which is not loaded");
      }
      return fail(r, "E_KSYM_MISSING",
                    "kernel function " + target + " not found in /proc/kallsyms (module not loaded, renamed or inlined on this kernel)");
    }
  }
  bool kprobe = x.type == ExtraType::Kretprobe || x.type == ExtraType::Kprobe;
  if (kprobe && access("/sys/bus/event_source/devices/kprobe", F_OK) != 0)
    return fail(r, "E_NO_KPROBES", "this kernel has no kprobes (CONFIG_KPROBES off)");
  HooksSkel h(hooks_bpf__open());
  if (!h) {
    int e = errno;
    return fail(r, "E_BPF_OPEN", Describe("open", e), e);
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
  if (err) return fail(r, "E_BPF_CONFIGURE", Describe("configure", err), err);
  err = hooks_bpf__load(h.get());
  if (err && x.type == ExtraType::Fexit && (err == -EPERM || errno == EPERM)) {
    ClearWarnings();  // libbpf's "raise ulimit -l" guess does not apply here
    return fail(r, "E_FEXIT_REFUSED", "this kernel refuses fentry/fexit programs (EPERM on load of " + std::string(x.hook) + ")", EPERM);
  }
  if (err) return fail(r, "E_BPF_LOAD", Describe(target.empty() ? "load" : "load (" + target + ")", err), err);
  Link link(kprobe ? bpf_program__attach_kprobe(prog, x.type == ExtraType::Kretprobe, target.c_str())
                   : bpf_program__attach(prog));
  if (!link) {
    int e = errno;
    return fail(r, "E_ATTACH", Describe("attach (" + target + ")", e), e);
  }
  extras_loaded_.push_back({std::move(h), std::move(link)});
  return true;
}

void ProbeSet::Detach() {
  detached_ = true;
  for (LoadedExtra &x : extras_loaded_) x.link.reset();
  dns_out_.reset();
  dns_in_.reset();
  link_.reset();
}

void ProbeSet::Reset() {
  Detach();
  extras_loaded_.clear();
  skel_.reset();
}

bpf_map *ProbeSet::events() const { return skel_ ? skel_->maps.events : nullptr; }
bpf_map *ProbeSet::stats() const { return skel_ ? skel_->maps.stats : nullptr; }
bpf_map *ProbeSet::reason_counts() const { return skel_ ? skel_->maps.reason_counts : nullptr; }
bpf_map *ProbeSet::key_counts() const { return skel_ ? skel_->maps.key_counts : nullptr; }
bpf_map *ProbeSet::stack_traces() const { return skel_ ? skel_->maps.stack_traces : nullptr; }
bpf_map *ProbeSet::dns_events() const { return skel_ && dns_load_ ? skel_->maps.dns_events : nullptr; }

std::vector<bpf_map *> ProbeSet::maps() const {
  std::vector<bpf_map *> out;
  if (!skel_) return out;
  bpf_map *m = nullptr;
  bpf_object__for_each_map(m, skel_->obj) out.push_back(m);
  return out;
}

}  // namespace droptrace

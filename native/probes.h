// SPDX-License-Identifier: GPL-2.0
// The probe table and attach: open -> configure -> load -> attach, each way of reaching a hook
// tried in order of preference; the first that attaches is kept, the others say why not.
#pragma once

#include <bpf/libbpf.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "owners.h"

namespace droptrace {

struct ProbeOptions {
  uint32_t filter_netns = 0;
  uint32_t ring_bytes = 0;  // 0: the object's default
  uint32_t key_burst = 0;
  uint32_t detail_budget = 0;  // per CPU per window; 0: none
  uint32_t stack_per_key = 0;  // --stack: stacks per key; 0: none (the stack map shrinks to one entry)
  bool capture_l3 = false;
  bool extras = true;
  bool dns = false;  // the DNS programs (net_dev_queue, netif_receive_skb) and their ring
  std::string only;  // try only this drop hook
  std::vector<std::pair<std::string, std::string>> targets;  // hook or function -> replacement
};

struct ProbeReport {
  std::string probe;
  std::string hook;
  std::string state;  // attached | unavailable | standby
  std::string why;
  std::string code;   // E_* when unavailable
  int err = 0;
  std::string module;  // E_MODULE_NOT_LOADED: the module the hooked function is in
};

class ProbeSet {
 public:
  struct Candidate;  // the drop hook's ways, in probes.cc
  struct Extra;      // optional hooks, in probes.cc

  explicit ProbeSet(ProbeOptions o) : o_(std::move(o)) {}

  std::vector<ProbeReport> Attach();
  // Tries again the optional probes named (those with no hook attached yet), e.g. once the
  // module their function is in was loaded; returns every probe's report, as Attach does.
  // Empty once detached: nothing is attached after a stop.
  std::vector<ProbeReport> Retry(const std::vector<std::string> &probes);
  bool loaded() const { return skel_ != nullptr; }
  // No new drops are traced; the maps stay readable.
  void Detach();
  // Links, then programs and maps: nothing of this set remains in the kernel.
  void Reset();

  // The drop object's maps (null before a successful attach).
  bpf_map *events() const;
  bpf_map *stats() const;
  bpf_map *reason_counts() const;
  bpf_map *key_counts() const;
  bpf_map *stack_traces() const;
  // null when the DNS programs are not attached
  bpf_map *dns_events() const;
  std::vector<bpf_map *> maps() const;

 private:
  struct LoadedExtra {
    HooksSkel skel;
    Link link;  // after skel: destroyed first
  };

  // Each group of optional hooks that `want` accepts: its first hook that attaches is kept.
  template <typename Want>
  void AttachExtras(Want want);
  bool TryCandidate(const Candidate &c, ProbeReport *r);
  void AttachDns();
  bool TryExtra(const Extra &x, ProbeReport *r);
  std::string TargetOf(const Extra &x) const;

  ProbeOptions o_;
  bool ksyms_checked_ = false;
  std::vector<std::string> missing_;
  std::string attached_hook_;
  DropSkel skel_;
  Link link_;  // after skel_: destroyed first
  Link dns_out_, dns_in_;
  bool dns_load_ = false;  // the DNS programs go into the drop object's load
  std::string dns_why_;    // why they did not load, when they did not
  std::vector<LoadedExtra> extras_loaded_;
  std::vector<ProbeReport> reports_;  // the latest report of every hook tried, in table order
  bool detached_ = false;
};

}  // namespace droptrace

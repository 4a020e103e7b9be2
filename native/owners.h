// SPDX-License-Identifier: GPL-2.0
// One owner per libbpf object, link, ring buffer and fd: each is freed by its destructor, once,
// on every path, so no error branch repeats cleanup.
#pragma once

#include <bpf/libbpf.h>
#include <unistd.h>

#include <memory>

struct droptrace_bpf;
struct hooks_bpf;

namespace droptrace {

template <typename T, void (*Free)(T *)>
struct Deleter {
  void operator()(T *p) const {
    if (p) Free(p);
  }
};

inline void destroy_link(bpf_link *l) { bpf_link__destroy(l); }

// The skeletons' destroy functions live where the skeletons are included (probes.cc): the
// embedded BPF objects are compiled into one translation unit only.
struct SkelFree {
  void operator()(droptrace_bpf *s) const;
  void operator()(hooks_bpf *s) const;
};
using DropSkel = std::unique_ptr<droptrace_bpf, SkelFree>;
using HooksSkel = std::unique_ptr<hooks_bpf, SkelFree>;
using Link = std::unique_ptr<bpf_link, Deleter<bpf_link, destroy_link>>;
using RingBuffer = std::unique_ptr<ring_buffer, Deleter<ring_buffer, ring_buffer__free>>;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd &&o) noexcept : fd_(o.release()) {}
  Fd &operator=(Fd &&o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.release();
    }
    return *this;
  }
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

}  // namespace droptrace

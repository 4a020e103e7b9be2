// SPDX-License-Identifier: GPL-2.0
// The ring reader: a thread polls the BPF ring buffer and hands JS one Buffer of raw records per
// wake-up through a thread-safe function. What waits for JS is capped in bytes; records past
// the cap are dropped and counted per key (readLostKeys), never queued on a growing heap.
#pragma once

#include <napi.h>

#include <string.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "owners.h"

namespace droptrace {

class RingReader {
 public:
  static constexpr size_t kDefaultBacklog = 64u << 20;

  // How records are framed: a u16 size field at size_offset, at least min_size bytes. Keyed
  // records (drops) start with their counter key, and a lost one is counted per key.
  struct Framing {
    size_t size_offset;
    size_t min_size;
    bool keyed;
  };
  static const Framing kDrops;  // struct dt_event
  static const Framing kDns;    // struct dt_dns

  explicit RingReader(size_t backlog_bytes, Framing f = kDrops)
      : backlog_(backlog_bytes ? backlog_bytes : kDefaultBacklog), framing_(f) {}
  ~RingReader() { Shutdown(); }

  bool running() const { return tsfn_ != nullptr || thread_.joinable(); }
  // Starts the poller. `on_end(env)` runs on the JS thread once the last batch was handed over
  // (env is null when the environment is being torn down). Returns an error code or nullptr.
  using EndFn = void (*)(napi_env env, void *hint);
  const char *Start(napi_env env, int ring_fd, napi_value on_batch, EndFn on_end, void *hint, std::string *why, int *err);
  // The poller ends; what the kernel already wrote and every batch still queued for JS is
  // counted as lost per key (readLostKeys: the final fold puts it back as counts), never handed
  // to JS: a full backlog would otherwise hold the stop for seconds of JS work. on_end runs
  // after the last of them is counted.
  void RequestStop() {
    discard_ = true;
    stopping_ = true;
  }
  // From any state, any number of times: no JS call is awaited, the thread is joined, the ring
  // freed. Batches still queued for JS are counted as lost.
  void Shutdown();
  // Make the next poll fail for real (epoll_wait on an fd that is no epoll instance): tests.
  bool BreakPoll();
  // errno of the poll failure that ended the poller, 0 if none
  int poll_errno() const { return poll_errno_.load(); }

  uint64_t user_lost() const { return user_lost_.load(); }
  // lost records that found no place in the per-key table (full): they cannot be folded
  uint64_t user_lost_unkeyed() const { return user_lost_unkeyed_.load(); }
  uint64_t short_records() const { return short_records_.load(); }
  uint64_t poll_errors() const { return poll_errors_.load(); }
  size_t backlog() const { return backlog_; }
  size_t queued_bytes() const { return queued_.load(); }
  // [struct dt_key][u64 lost][u64 lost] per key, lost since the last call (read and reset, so
  // each loss is folded once, and the table holds one fold interval's keys at most)
  Napi::Value ReadLostKeys(Napi::Env env);
  static constexpr size_t kLostKeys = 65536;

 private:
  struct Batch {
    std::vector<uint8_t> data;
  };
  static int OnRecord(void *ctx, void *data, size_t size);
  static void CallJs(napi_env env, napi_value fn, void *ctx, void *data);
  static void Finalize(napi_env env, void *data, void *hint);
  void Poll(napi_threadsafe_function tsfn);
  void Flush(napi_threadsafe_function tsfn);
  void CountLost(const std::vector<uint8_t> &buf);

  const size_t backlog_;
  const Framing framing_;
  uint16_t SizeOf(const uint8_t *rec) const {
    uint16_t s;
    memcpy(&s, rec + framing_.size_offset, sizeof(s));
    return s;
  }
  RingBuffer rb_;
  std::thread thread_;
  napi_threadsafe_function tsfn_ = nullptr;
  EndFn on_end_ = nullptr;
  void *end_hint_ = nullptr;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> discard_{false};  // stopped: batches are counted, not delivered
  bool aborted_ = false;  // JS thread only
  std::atomic<int> poll_errno_{0};
  // poller thread only
  std::vector<uint8_t> pending_;
  std::vector<uint8_t> overflow_;  // past the cap, waiting to be counted
  // bytes handed to the TSFN and not yet delivered to (or discarded by) JS
  std::atomic<size_t> queued_{0};

  std::atomic<uint64_t> user_lost_{0};
  std::atomic<uint64_t> user_lost_unkeyed_{0};
  std::mutex lost_mu_;
  std::unordered_map<std::string, uint64_t> lost_keys_;
  std::atomic<uint64_t> short_records_{0};
  std::atomic<uint64_t> poll_errors_{0};
};

}  // namespace droptrace

// SPDX-License-Identifier: GPL-2.0
#include "ring_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "droptrace.h"
#include "errors.h"

namespace droptrace {

const RingReader::Framing RingReader::kDrops{offsetof(dt_event, size), sizeof(dt_event), true};
const RingReader::Framing RingReader::kDns{offsetof(dt_dns, size), sizeof(dt_dns), false};

const char *RingReader::Start(napi_env env, int ring_fd, napi_value on_batch, EndFn on_end, void *hint, std::string *why,
                              int *err) {
  if (running()) return "E_ALREADY_STARTED";
  RingBuffer rb(ring_buffer__new(ring_fd, &RingReader::OnRecord, this, nullptr));
  if (!rb) {
    *err = errno;
    *why = Describe("ring_buffer__new", *err);
    return "E_RINGBUF";
  }
  napi_value name;
  napi_create_string_utf8(env, "droptrace-poll", NAPI_AUTO_LENGTH, &name);
  napi_threadsafe_function tsfn = nullptr;
  // No limit on queued batches: the byte cap (backlog_) bounds them, and the poller never
  // blocks on JS, so nothing can deadlock on a join.
  napi_status st = napi_create_threadsafe_function(env, on_batch, nullptr, name, 0, 1, this, &RingReader::Finalize, this,
                                                   &RingReader::CallJs, &tsfn);
  if (st != napi_ok) {
    *why = "napi_create_threadsafe_function failed (status " + std::to_string(st) + ")";
    return "E_TSFN";
  }
  rb_ = std::move(rb);
  tsfn_ = tsfn;
  on_end_ = on_end;
  end_hint_ = hint;
  stopping_ = false;
  discard_ = false;
  thread_ = std::thread([this, tsfn]() { Poll(tsfn); });
  return nullptr;
}

int RingReader::OnRecord(void *ctx, void *data, size_t size) {
  RingReader *self = static_cast<RingReader *>(ctx);
  const uint8_t *p = static_cast<const uint8_t *>(data);
  const size_t min = self->framing_.min_size;
  // Records are framed by their own size field; a record that disagrees with the ring
  // buffer's length is counted, never guessed at.
  if (size < min || self->SizeOf(p) < min || self->SizeOf(p) > size) {
    self->short_records_++;
    return 0;
  }
  const uint16_t rec_size = self->SizeOf(p);
  if (self->queued_.load(std::memory_order_relaxed) + self->pending_.size() + rec_size > self->backlog_) {
    // past the cap: counted per key at the next flush (in bounded steps), never kept
    self->overflow_.insert(self->overflow_.end(), p, p + rec_size);
    if (self->overflow_.size() >= (1u << 20)) {
      self->CountLost(self->overflow_);
      self->overflow_.clear();
    }
    return 0;
  }
  self->pending_.insert(self->pending_.end(), p, p + rec_size);
  return 0;
}

void RingReader::Poll(napi_threadsafe_function tsfn) {
  while (!stopping_.load()) {
    int n = ring_buffer__poll(rb_.get(), 100);
    if (n < 0 && n != -EINTR) {
      poll_errno_ = -n;
      poll_errors_++;
      break;
    }
    // In a flood the kernel side submits without waking us (probes/droptrace.bpf.c,
    // wake_flags): a quiet poll still takes what is there.
    if (n == 0) ring_buffer__consume(rb_.get());
    Flush(tsfn);
  }
  // Stopped: the links are gone; what the kernel already wrote is taken (and counted as lost).
  if (!poll_errno_.load()) ring_buffer__consume(rb_.get());
  Flush(tsfn);
  // The last use of the TSFN by this thread; JS finalizes it once the queue is empty.
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
}

void RingReader::Flush(napi_threadsafe_function tsfn) {
  if (!overflow_.empty()) {
    CountLost(overflow_);
    overflow_.clear();
  }
  if (pending_.empty()) return;
  if (discard_.load()) {
    CountLost(pending_);
    pending_.clear();
    return;
  }
  Batch *b = new Batch();
  b->data.swap(pending_);
  size_t n = b->data.size();
  queued_ += n;
  napi_status st = napi_call_threadsafe_function(tsfn, b, napi_tsfn_nonblocking);
  if (st == napi_ok) return;
  // closing (aborted by teardown): JS takes nothing more
  queued_ -= n;
  CountLost(b->data);
  delete b;
  stopping_ = true;
}

void RingReader::CallJs(napi_env env, napi_value fn, void *ctx, void *data) {
  RingReader *self = static_cast<RingReader *>(ctx);
  Batch *b = static_cast<Batch *>(data);
  size_t n = b->data.size();
  if (env == nullptr || fn == nullptr || self->discard_.load()) {
    // discarded by an aborted TSFN, or queued when the stream stopped: nothing lost silently
    self->CountLost(b->data);
    delete b;
    self->queued_ -= n;
    return;
  }
  napi_value buf, undefined;
  void *copy = nullptr;
  napi_status st = napi_create_buffer_copy(env, n, b->data.data(), &copy, &buf);
  if (st != napi_ok) self->CountLost(b->data);
  delete b;
  if (st == napi_ok) {
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, fn, 1, &buf, nullptr);
  }
  // counted until JS returns from the batch: a stalled JS holds its bytes against the cap
  self->queued_ -= n;
}

void RingReader::Finalize(napi_env env, void *data, void * /*hint*/) {
  RingReader *self = static_cast<RingReader *>(data);
  // Node frees the TSFN after this returns: the poller must be gone by then. It never waits
  // on JS, so the join ends within one poll timeout.
  self->stopping_ = true;
  if (self->thread_.joinable()) self->thread_.join();
  self->rb_.reset();
  self->tsfn_ = nullptr;
  EndFn fn = self->on_end_;
  self->on_end_ = nullptr;
  if (fn) fn(env, self->end_hint_);
}

void RingReader::Shutdown() {
  stopping_ = true;
  // JS must not be waited for while this thread waits for the poller: abort first, so every
  // later hand-over fails at once (and what is queued is counted as lost on finalize).
  if (tsfn_ && !aborted_) {
    aborted_ = true;
    napi_release_threadsafe_function(tsfn_, napi_tsfn_abort);
  }
  if (thread_.joinable()) thread_.join();
  rb_.reset();
}

bool RingReader::BreakPoll() {
  if (!rb_) return false;
  int efd = ring_buffer__epoll_fd(rb_.get());
  Fd null_fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (efd < 0 || null_fd.get() < 0) return false;
  // the ring keeps its fd number; the file behind it is no epoll instance any more
  return dup2(null_fd.get(), efd) == efd;
}

void RingReader::CountLost(const std::vector<uint8_t> &buf) {
  std::lock_guard<std::mutex> lk(lost_mu_);
  for (size_t off = 0; off + framing_.min_size <= buf.size();) {
    const uint8_t *rec = buf.data() + off;
    off += SizeOf(rec);
    user_lost_++;
    if (!framing_.keyed) continue;
    const dt_event *e = reinterpret_cast<const dt_event *>(rec);
    static_assert(offsetof(dt_event, key) == 0, "a record starts with its counter key");
    std::string key(reinterpret_cast<const char *>(&e->key), sizeof(dt_key));
    auto it = lost_keys_.find(key);
    if (it != lost_keys_.end())
      it->second++;
    else if (lost_keys_.size() < kLostKeys)
      lost_keys_.emplace(key, 1);
    else
      user_lost_unkeyed_++;  // counted, never folded: the stats line's `unfolded`
  }
}

// readLostKeys(): detail events userspace could not take, per key, in readKeys()' format
// ([struct dt_key][u64 count][u64 suppressed], both the lost count), since the last call: the
// table is taken whole and a new one starts, so a loss is handed out once and a key the
// kernel's LRU map evicted cannot bring its past losses back.
Napi::Value RingReader::ReadLostKeys(Napi::Env env) {
  std::unordered_map<std::string, uint64_t> taken;
  {
    std::lock_guard<std::mutex> lk(lost_mu_);
    taken.swap(lost_keys_);
  }
  std::vector<uint8_t> out(taken.size() * (sizeof(dt_key) + 16));
  size_t at = 0;
  for (auto &kv : taken) {
    memcpy(out.data() + at, kv.first.data(), sizeof(dt_key));
    memcpy(out.data() + at + sizeof(dt_key), &kv.second, 8);
    memcpy(out.data() + at + sizeof(dt_key) + 8, &kv.second, 8);
    at += sizeof(dt_key) + 16;
  }
  return Napi::Buffer<uint8_t>::Copy(env, out.data(), out.size());
}

}  // namespace droptrace

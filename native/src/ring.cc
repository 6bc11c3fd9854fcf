// Ring consumer, poll-thread side: the sleep/wake loop and batch building. The JS-thread
// side (start, stop, delivery) is in ring_api.cc.
//
// Batch wire format (see patrol_native.d.ts): records back to back, each
// [u32 LE length][u32 0][bytes][zero padding to a multiple of 8].
#include "ring.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "batch lengths are written little-endian");

namespace patrol {

RingConsumer::~RingConsumer() { Stop(); }

void RingConsumer::SetSleeping(uint32_t v) {
  // Pairs with the producers' re-check after commit (wake_if_sleeping in lifecycle.bpf.c):
  // the flag must be globally visible before our last drain reads producer_pos.
  __atomic_store_n(flag_, v, __ATOMIC_SEQ_CST);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void RingConsumer::Run() {
  int epfd = ring_buffer__epoll_fd(rb_);
  epoll_event evs[4];
  bool busy = false;
  while (!stopReq_.load(std::memory_order_acquire)) {
    if (Consume() > 0) {
      busy = true;
      continue;
    }
    // Linger after a burst before announcing sleep: producers keep submitting without
    // wakeups (each forced wakeup costs the producer ~18 us), and the next few records are
    // picked up by this timed wait instead. Records wait at most lingerUs.
    // The linger polls in short steps: a record arriving during it waits at most one step,
    // and a burst (fork, exec, exit, reap of one process span ~1 ms) costs one wakeup.
    if (busy && flag_ && opts_.lingerUs > 0 && opts_.pollIntervalUs < 0) {
      busy = false;
      int64_t step = opts_.lingerStepUs > 0 && opts_.lingerStepUs < opts_.lingerUs ? opts_.lingerStepUs : opts_.lingerUs;
      for (int64_t waited = 0; waited < opts_.lingerUs && !stopReq_.load(std::memory_order_acquire); waited += step) {
        timespec ts{0, static_cast<long>(step) * 1000};
        epoll_pwait2(epfd, evs, 4, &ts, nullptr);
        int n = Consume();
        if (n > 0) {
          lingerRecords_.fetch_add(n, std::memory_order_relaxed);
          busy = true;
          break;
        }
      }
      continue;
    }
    busy = false;
    int r;
    if (opts_.pollIntervalUs >= 0) {
      timespec ts{static_cast<time_t>(opts_.pollIntervalUs / 1000000),
                  static_cast<long>(opts_.pollIntervalUs % 1000000) * 1000};
      r = epoll_pwait2(epfd, evs, 4, &ts, nullptr);
    } else {
      if (flag_) {
        SetSleeping(1);
        if (Consume() > 0) {  // a producer committed before it could see the flag
          SetSleeping(0);
          continue;
        }
        sleeps_.fetch_add(1, std::memory_order_relaxed);
      }
      r = epoll_wait(epfd, evs, 4, opts_.idleTimeoutMs);
      if (flag_) SetSleeping(0);
    }
    // Consume whatever woke us (ring, stop, timeout, signal): records submitted with
    // BPF_RB_NO_WAKEUP never make the fd ready, and ring_buffer__poll would skip them.
    int n = Consume();
    if (r == 0) {
      timedConsumes_.fetch_add(1, std::memory_order_relaxed);
      if (n > 0) timedRecords_.fetch_add(n, std::memory_order_relaxed);
    } else {
      for (int i = 0; i < r; i++)
        if (evs[i].data.u64 != kStopKey) {
          wakeups_.fetch_add(1, std::memory_order_relaxed);
          break;
        }
    }
  }
  final_ = true;
  Consume();
}

int RingConsumer::Consume() {
  int n = ring_buffer__consume(rb_);  // fails only if OnSample does, which it never does
  Handoff();  // latency matters more than full batches
  return n;
}

int RingConsumer::OnSample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<RingConsumer*>(ctx);
  self->records_.fetch_add(1, std::memory_order_relaxed);
  size_t need = 8 + Pad8(size);
  if (self->cur_ && self->cur_->len + need > self->cur_->cap) self->Handoff();
  if (!self->cur_) {
    size_t cap = need > self->opts_.batchBytes ? need : self->opts_.batchBytes;  // big record: own batch
    auto* b = static_cast<Batch*>(malloc(sizeof(Batch) + cap));
    if (!b) {  // out of memory: the record is lost, and counted
      self->droppedRecords_.fetch_add(1, std::memory_order_relaxed);
      self->CountTag(static_cast<const uint8_t*>(data), size);
      return 0;
    }
    *b = Batch{0, cap, 0};
    self->cur_ = b;
  }
  Batch* b = self->cur_;
  uint8_t* p = b->data() + b->len;
  uint32_t hdr[2] = {static_cast<uint32_t>(size), 0};
  memcpy(p, hdr, 8);
  memcpy(p + 8, data, size);
  memset(p + 8 + size, 0, need - 8 - size);
  b->len += need;
  b->records++;
  return 0;
}

void RingConsumer::Handoff() {
  Batch* b = cur_;
  if (!b || b->records == 0) return;  // keep an empty batch for the next pass
  cur_ = nullptr;
  if (b->cap - b->len >= 4096) {  // JS may hold small batches a while: give back the tail
    if (auto* s = static_cast<Batch*>(realloc(b, sizeof(Batch) + b->len))) {
      b = s;
      b->cap = b->len;
    }
  }
  if (!final_ && inFlight_.load(std::memory_order_acquire) >= opts_.queueDepth) {
    Drop(b);  // JS is behind: this is the user-space loss the counters must account for
    return;
  }
  inFlight_.fetch_add(1, std::memory_order_acq_rel);
  if (tsfn_.NonBlockingCall(b) != napi_ok) {  // napi_closing: environment teardown
    inFlight_.fetch_sub(1, std::memory_order_acq_rel);
    Drop(b);
    return;
  }
  batches_.fetch_add(1, std::memory_order_relaxed);
}

void RingConsumer::CountTag(const uint8_t* rec, size_t size) {
  if (opts_.tagOffset >= 0 && static_cast<size_t>(opts_.tagOffset) < size)
    droppedByTag_[rec[opts_.tagOffset]].fetch_add(1, std::memory_order_relaxed);
}

// Counts every record of an undelivered batch, per tag byte too, and frees it.
void RingConsumer::Drop(Batch* b) {
  droppedBatches_.fetch_add(1, std::memory_order_relaxed);
  droppedRecords_.fetch_add(b->records, std::memory_order_relaxed);
  for (size_t off = 0; off + 8 <= b->len;) {
    uint32_t len;
    memcpy(&len, b->data() + off, 4);
    CountTag(b->data() + off + 8, len);
    off += 8 + Pad8(len);
  }
  free(b);
}

}  // namespace patrol

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
#include <ctime>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "batch lengths are written little-endian");

namespace patrol {

// CLOCK_BOOTTIME: the clock of the records' own timestamps (timeOffset), monotonic too.
static int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

RingConsumer::~RingConsumer() { Stop(); }

void RingConsumer::SetSleeping(uint32_t v) {
  // Pairs with the producers' re-read after commit (rb_wake_if_sleeping in ringbuf.bpf.h):
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
    // Hold (batchDelayUs): records already read wait in the batch until it is batchDelayUs
    // old, in one timed wait, so that at low rates the records of one process (fork, exec,
    // exit, reap: ~0.1-1 ms apart) reach JS as one batch instead of one each. JS pays a fixed
    // cost per batch (thread wakeup, uv async, cold caches, a write for `trace`) that dwarfs
    // the per-record work there. The sleep flag stays clear meanwhile: producers submit
    // without waking us, and a single wait replaces the linger's steps for that time.
    if (int64_t hold = HoldLeftUs(); hold > 0) {
      timespec ts{static_cast<time_t>(hold / 1000000), static_cast<long>(hold % 1000000) * 1000};
      epoll_pwait2(epfd, evs, 4, &ts, nullptr);
      holdWaits_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    // Linger after a burst before announcing sleep: producers keep submitting without
    // wakeups (each forced wakeup costs the producer ~17 us), and the next records are picked
    // up by this timed wait instead. It polls in short steps: a record arriving during it waits
    // at most one step. Each step is a timeslice of this thread (~10-17 us on a VM), so the
    // linger only pays while records are dense. Its length adapts: a catch at the first step
    // doubles it (up to lingerUs), a linger that caught nothing halves it (down to one step).
    // A dense stream then costs no wakeups at all, and a sparse one (200 exec/s: fork, exec,
    // exit, reap ~0.3-1 ms apart) costs a wakeup per record instead of ~10 idle steps each.
    // No linger after a held batch: the hold already waited for the burst's stragglers, and a
    // sparse stream (the only one held) would mostly pay a step for nothing.
    if (busy && lastWasHeld_) busy = false;
    if (busy && flag_ && opts_.lingerUs > 0 && opts_.pollIntervalUs < 0) {
      busy = false;
      int64_t step = opts_.lingerStepUs > 0 && opts_.lingerStepUs < opts_.lingerUs ? opts_.lingerStepUs : opts_.lingerUs;
      if (lingerBudgetUs_ <= 0) lingerBudgetUs_ = opts_.lingerUs;
      int64_t waited = 0;
      while (waited < lingerBudgetUs_ && !stopReq_.load(std::memory_order_acquire)) {
        timespec ts{0, static_cast<long>(step) * 1000};
        epoll_pwait2(epfd, evs, 4, &ts, nullptr);
        lingerSteps_.fetch_add(1, std::memory_order_relaxed);
        int n = Consume();
        if (n > 0) {
          lingerRecords_.fetch_add(n, std::memory_order_relaxed);
          busy = true;
          break;
        }
        waited += step;
      }
      if (!busy)
        lingerBudgetUs_ = lingerBudgetUs_ / 2 > step ? lingerBudgetUs_ / 2 : step;
      else if (waited == 0)
        lingerBudgetUs_ = lingerBudgetUs_ * 2 < opts_.lingerUs ? lingerBudgetUs_ * 2 : opts_.lingerUs;
      continue;
    }
    busy = false;
    // Never block holding records, even if JS is busy. (While lingering, each step's
    // Consume() hands them over as soon as JS has caught up: at most one step late.)
    Handoff();
    int r;
    if (opts_.pollIntervalUs >= 0) {
      timespec ts{static_cast<time_t>(opts_.pollIntervalUs / 1000000),
                  static_cast<long>(opts_.pollIntervalUs % 1000000) * 1000};
      r = epoll_pwait2(epfd, evs, 4, &ts, nullptr);
    } else {
      if (flag_) {
        // Announce sleep, then drain once more. Block only if that drain found no record
        // and no producer claimed the flag meanwhile. A claim seen here may mean the
        // claimer's wakeup carrier (an empty discarded record, which ring_buffer__consume
        // does not count) was just drained: blocking would leave the flag clear with nobody
        // left to wake us. A claim made after this check is safe: its carrier is still in
        // the ring, so epoll finds the ring readable when the wakeup lands.
        SetSleeping(1);
        int n = Consume();
        if (n > 0 || __atomic_load_n(flag_, __ATOMIC_SEQ_CST) == 0) {
          SetSleeping(0);
          busy = n > 0;
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
    // Records a wakeup brought start a burst like any other: the linger follows them, else
    // every record of a slow burst (fork, exec, exit, reap) would cost its own wakeup.
    busy = n > 0;
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
  Consume();  // the final drain hands over whatever it holds, ignoring the queue bounds
}

int RingConsumer::Consume() {
  int n = ring_buffer__consume(rb_);  // fails only if OnSample does, which it never does
  // Hand over at once only when JS has nothing queued (latency first). While JS is still busy
  // with earlier batches, keep filling this one (OnSample hands it over when full; the loop
  // before any wait): batches then grow with the backlog instead of holding a few records
  // each, and JS pays its per-batch cost once per backlog, not once per ring pass.
  if (final_ || (inFlight_.load(std::memory_order_acquire) == 0 && HoldLeftUs() == 0)) Handoff();
  return n;
}

// How much longer the current batch may be held (batchDelayUs); 0 when it is due or empty.
int64_t RingConsumer::HoldLeftUs() const {
  if (opts_.batchDelayUs <= 0 || !holdCur_ || !cur_ || cur_->records == 0) return 0;
  int64_t left = opts_.batchDelayUs - (MonotonicNs() - heldSinceNs_) / 1000;
  return left > 0 ? left : 0;
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
  if (b->records == 0 && self->opts_.batchDelayUs > 0) {
    // Only a batch that starts after an idle gap (two delays without a hand-off: under
    // ~500 records/s for 1 ms) is held. A steady stream then keeps its latency: its batches
    // go out as before, and grow on their own while JS is busy.
    int64_t now = MonotonicNs();
    self->heldSinceNs_ = now;
    // Anchored on when the record was made, when it says so: the wakeup's latency then counts
    // towards the hold instead of adding to it.
    int64_t off = self->opts_.timeOffset;
    if (off >= 0 && static_cast<size_t>(off) + 8 <= size) {
      uint64_t made;
      memcpy(&made, static_cast<const uint8_t*>(data) + off, 8);
      if (made > 0 && static_cast<int64_t>(made) < now) self->heldSinceNs_ = static_cast<int64_t>(made);
    }
    self->holdCur_ = self->heldSinceNs_ - self->lastHandoffNs_ >= 2 * self->opts_.batchDelayUs * 1000;
  }
  WriteFrame(b->data() + b->len, data, size);
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
  // The queue is bounded in bytes (what JS holds in memory, records included) and in batches.
  // The first batch always passes: a big record must not be dropped by an idle JS.
  size_t cost = QueueCost(b);
  size_t pending = inFlightBytes_.load(std::memory_order_acquire);
  if (!final_ && (inFlight_.load(std::memory_order_acquire) >= opts_.queueDepth ||
                  (pending > 0 && pending + cost > opts_.queueBytes))) {
    Drop(b);  // JS is behind: this is the user-space loss the counters must account for
    return;
  }
  inFlight_.fetch_add(1, std::memory_order_acq_rel);
  inFlightBytes_.fetch_add(cost, std::memory_order_acq_rel);
  if (tsfn_.NonBlockingCall(b) != napi_ok) {  // napi_closing: environment teardown
    inFlight_.fetch_sub(1, std::memory_order_acq_rel);
    inFlightBytes_.fetch_sub(cost, std::memory_order_acq_rel);
    Drop(b);
    return;
  }
  batches_.fetch_add(1, std::memory_order_relaxed);
  if (opts_.batchDelayUs > 0) {
    lastHandoffNs_ = MonotonicNs();
    lastWasHeld_ = holdCur_;
  }
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

// Ring buffer consumer: one poll thread per consumer, records copied into batches that are
// handed to JS as zero-copy Buffers through a threadsafe function.
#pragma once

#include <atomic>
#include <cstring>
#include <thread>

#include "common.h"

namespace patrol {

struct RingOptions {
  size_t batchBytes = 65536;
  size_t queueDepth = 4096;   // batches handed to JS but not yet delivered
  size_t queueBytes = 16 << 20;  // their QueueCost: the bound that matters (memory, records)
  int64_t tagOffset = -1;     // <0: no per-tag drop counts
  std::string sleepMap;       // empty: no sleep flag
  size_t sleepOffset = 0;
  int idleTimeoutMs = 1000;
  int64_t pollIntervalUs = -1;  // >=0: timed polling, the sleep flag is not used
  int64_t lingerUs = 1000;      // timed wait after a burst before sleeping (0: sleep at once)
  int64_t lingerStepUs = 100;   // ... polled in steps of this long
  int64_t batchDelayUs = 0;     // >0: hold a batch that starts after an idle gap up to this long
  int64_t timeOffset = -1;      // >=0: u64 CLOCK_BOOTTIME ns at this offset of each record
  int realtimePriority = 0;     // >0: the poll thread runs SCHED_FIFO at this priority
};

// Header of one malloc'd block; the record bytes follow it. The JS Buffer points into the
// block and its finalizer frees the block: no copy between the poll thread and JS.
struct Batch {
  size_t len;
  size_t cap;
  uint64_t records;
  uint8_t* data() { return reinterpret_cast<uint8_t*>(this + 1); }
};
static_assert(sizeof(Batch) % 8 == 0, "record data must stay 8-byte aligned");

inline constexpr uint64_t kStopKey = UINT64_MAX;  // epoll data of the stop eventfd
inline size_t Pad8(size_t n) { return (n + 7) & ~size_t{7}; }
// What a queued batch costs JS memory: its block plus a rough per-batch overhead (malloc
// header, napi queue node, later the Buffer object), so many tiny batches count too.
inline size_t QueueCost(const Batch* b) { return sizeof(Batch) + b->len + 256; }

// The sleep flag, a u32 in an mmapable BPF array shared with the producers (bpf/ringbuf.bpf.h).
struct FlagMapping {
  void* map = nullptr;  // the mmapped pages
  size_t len = 0;
  uint32_t* flag = nullptr;
};
// Maps `name` and points at `offset`; throws a typed error if it is not an mmapable array or
// the offset is not an aligned u32 inside it. The caller munmaps `map` (`len` bytes).
FlagMapping MapFlag(Napi::Env env, const char* op, ObjState& owner, const std::string& name, size_t offset);

// Options shared by both consumers. `sleepFlag: { map, offset }` into *map/*offset (left as
// they are when absent and not required).
void ParseSleepFlag(Napi::Env env, Napi::Object o, const char* op, bool required, std::string* map, size_t* offset);
// EBUSY when `ring` already has a consumer of either kind: two would race on its consumer position.
void ThrowIfRingBusy(Napi::Env env, const char* op, ObjState& st, const bpf_map* ring, const std::string& name);

// One record framed as batches carry it: [u32 LE length][u32 0][bytes][zero padding to 8].
// `p` has room for 8 + Pad8(size) bytes.
inline void WriteFrame(uint8_t* p, const void* data, size_t size) {
  size_t need = 8 + Pad8(size);
  uint32_t hdr[2] = {static_cast<uint32_t>(size), 0};
  memcpy(p, hdr, 8);
  memcpy(p + 8, data, size);
  memset(p + 8 + size, 0, need - 8 - size);
}

class RingConsumer {
 public:
  // Throws a typed error; on success the thread runs and `owner` tracks the consumer.
  static std::shared_ptr<RingConsumer> Start(Napi::Env env, const std::shared_ptr<ObjState>& owner,
                                             bpf_map* ring, const RingOptions& opts,
                                             Napi::Function onBatch);
  RingConsumer() = default;
  RingConsumer(const RingConsumer&) = delete;
  RingConsumer& operator=(const RingConsumer&) = delete;
  ~RingConsumer();

  // JS thread. Wakes the thread, lets it drain the ring one last time and joins it; the
  // batches it queued are still delivered by the event loop afterwards. Idempotent.
  void Stop();
  // Stop(), then a promise resolved once every queued batch has been delivered.
  Napi::Promise StopAsync(Napi::Env env);
  Napi::Object Stats(Napi::Env env) const;
  bool running() const { return thread_.joinable(); }
  const bpf_map* map() const { return map_; }

 private:
  static void CallJs(Napi::Env env, Napi::Function cb, RingConsumer* self, Batch* b);
  using Tsfn = Napi::TypedThreadSafeFunction<RingConsumer, Batch, &RingConsumer::CallJs>;
  static void Finalize(Napi::Env env, void*, RingConsumer* self);
  static int OnSample(void* ctx, void* data, size_t size);

  void Run();
  int Consume();
  void Handoff();
  int64_t HoldLeftUs() const;
  void Drop(Batch* b);
  void CountTag(const uint8_t* rec, size_t size);
  void SetSleeping(uint32_t v);

  RingOptions opts_;
  const bpf_map* map_ = nullptr;
  ring_buffer* rb_ = nullptr;
  int stopFd_ = -1;                 // eventfd in the ring's epoll set
  void* flagMap_ = nullptr;         // mmapped sleep-flag map
  size_t flagLen_ = 0;
  uint32_t* flag_ = nullptr;        // consumer_sleeping, shared with BPF producers
  Batch* cur_ = nullptr;            // poll thread only
  bool final_ = false;              // poll thread only: last drain ignores queueDepth
  int64_t lingerBudgetUs_ = 0;      // poll thread only: current linger length (adaptive)
  int64_t heldSinceNs_ = 0;         // poll thread only: CLOCK_BOOTTIME of cur_'s first record
  int64_t lastHandoffNs_ = 0;       // poll thread only: CLOCK_BOOTTIME of the last hand-off
  bool holdCur_ = false;            // poll thread only: cur_ started after an idle gap
  bool lastWasHeld_ = false;        // poll thread only: the last hand-off was a held batch
  std::atomic<bool> stopReq_{false};
  std::thread thread_;

  Tsfn tsfn_;
  bool tsfnLive_ = false;           // JS thread: Release() not yet called, not finalized
  bool finalized_ = false;          // JS thread: every batch delivered
  std::shared_ptr<RingConsumer> self_;  // held by the TSFN until it is finalized
  std::shared_ptr<ObjState> owner_;     // a running consumer keeps its object open
  std::vector<napi_deferred> waiters_;  // ringStop() promises, resolved at finalization

  std::atomic<size_t> inFlight_{0};
  std::atomic<size_t> inFlightBytes_{0};  // sum of QueueCost of the batches in flight
  std::atomic<int> realtimeErrno_{0};     // pthread_setschedparam's error, 0 if applied or off
  std::atomic<uint64_t> records_{0}, batches_{0}, delivered_{0}, droppedRecords_{0},
      droppedBatches_{0}, wakeups_{0}, timedConsumes_{0}, timedRecords_{0}, sleeps_{0},
      lingerRecords_{0}, lingerSteps_{0}, holdWaits_{0};
  std::atomic<uint64_t> droppedByTag_[256] = {};
};

}  // namespace patrol

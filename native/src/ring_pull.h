// Ring buffer drained on the JS thread: no consumer thread, no cross-thread hand-off.
//
// The efficient delivery policy (docs/architecture.md, "Delivery policies"). JS drains the ring
// on a timer through one synchronous call per tick; the ring's epoll fd sits in libuv (uv_poll)
// so a producer can still wake JS: when it sleeps (flag 1, after idle ticks) or when the backlog
// passes a watermark (flag k > 1, while it drains on the timer). The policy (tick, when to
// sleep) is TypeScript's (src/kernel/ring-pull.ts); this file owns the memory ordering.
#pragma once

#include <uv.h>

#include "common.h"

namespace patrol {

struct PullOptions {
  int64_t tagOffset = -1;       // <0: no per-tag counts (kept for symmetry with RingConsumer)
  std::string sleepMap;         // mmapable array holding the flag (required)
  size_t sleepOffset = 0;
  uint32_t wakeAbovePages = 0;  // >0: while awake, a backlog of this many pages wakes JS
};

class RingPull {
 public:
  static std::shared_ptr<RingPull> Open(Napi::Env env, const std::shared_ptr<ObjState>& owner, bpf_map* ring,
                                        const PullOptions& opts, Napi::Function onWake);
  RingPull() = default;
  RingPull(const RingPull&) = delete;
  RingPull& operator=(const RingPull&) = delete;
  ~RingPull();

  // Reads the records in the ring into `dst` (framed like RingConsumer batches), up to about a
  // ring's worth. Returns the bytes written, or, when they did not fit, a new Buffer holding
  // them all. Re-arms the watermark and the poll.
  Napi::Value Drain(Napi::Env env, uint8_t* dst, size_t cap);
  // Announces sleep (flag 1), then drains once more. Asleep (returns -1) only if that drain
  // found nothing and no producer claimed the flag meanwhile; otherwise it is Drain().
  Napi::Value Sleep(Napi::Env env, uint8_t* dst, size_t cap);
  // Stops polling and unmaps; the uv handle is closed asynchronously. Idempotent.
  void Close();
  Napi::Object Stats(Napi::Env env) const;
  bool open() const { return rb_ != nullptr; }
  const bpf_map* map() const { return map_; }

 private:
  static int OnSample(void* ctx, void* data, size_t size);
  static void OnPoll(uv_poll_t* h, int status, int events);
  int Consume(Napi::Env env, uint8_t* dst, size_t cap);
  Napi::Value Result(Napi::Env env, int n);
  void SetFlag(uint32_t v);
  void ArmPoll();

  PullOptions opts_;
  const bpf_map* map_ = nullptr;
  ring_buffer* rb_ = nullptr;
  void* flagMap_ = nullptr;
  size_t flagLen_ = 0;
  uint32_t* flag_ = nullptr;
  uv_poll_t* poll_ = nullptr;  // freed by its close callback
  bool polling_ = false;
  Napi::FunctionReference onWake_;
  std::unique_ptr<Napi::AsyncContext> asyncCtx_;
  std::shared_ptr<ObjState> owner_;

  // Drain target: the caller's buffer until it overflows, then a growing heap block.
  uint8_t* dst_ = nullptr;
  size_t cap_ = 0;
  size_t len_ = 0;
  uint8_t* heap_ = nullptr;
  bool oom_ = false;
  // A drain stops once it holds this many bytes (the ring's size, at most kMaxDrainBytes):
  // libbpf's consume loops as long as producers keep writing, so one drain under a producer
  // faster than us would otherwise block the JS thread and grow its copy without bound. What is
  // left waits in the ring (bounded; a full ring drops and counts) for the next drain: the
  // watermark wakes us again while producers write, the tick drains the rest. 256 KiB (the
  // reused drain buffer's size) keeps one drain's handling to ~10 ms
  // on a quiet machine, so the API answers between drains under overload. It slices the work,
  // it does not bound throughput: past the watermark every commit wakes us again.
  static constexpr size_t kMaxDrainBytes = 256 << 10;
  size_t limit_ = 0;

  uint64_t records_ = 0, drains_ = 0, overflows_ = 0, wakeups_ = 0, sleeps_ = 0, sleepAborts_ = 0,
           droppedRecords_ = 0, cutDrains_ = 0;
};

Napi::Value RingPullOpen(const Napi::CallbackInfo& info);
Napi::Value RingPullDrain(const Napi::CallbackInfo& info);
Napi::Value RingPullSleep(const Napi::CallbackInfo& info);
Napi::Value RingPullClose(const Napi::CallbackInfo& info);
Napi::Value RingPullStats(const Napi::CallbackInfo& info);

}  // namespace patrol

// Ring consumer, JS-thread side: ringStart/ringStop/ringStats, batch delivery, teardown.
//
// Lifetime: the TSFN holds the consumer (self_) until Node finalizes it, which happens only
// after every queued batch was delivered, so CallJs never sees a dead consumer. A running
// consumer holds its ObjState (owner_), like an open socket holds its fd; Stop() lets go.
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "ring.h"

namespace patrol {

void ParseSleepFlag(Napi::Env env, Napi::Object o, const char* op, bool required, std::string* map, size_t* offset) {
  Napi::Value sf = o.Get("sleepFlag");
  if (sf.IsUndefined() && !required) return;
  if (!sf.IsObject() || !sf.As<Napi::Object>().Get("map").IsString())
    ThrowInvalid(env, op, "sleepFlag must be { map: string, offset: number }");
  *map = sf.As<Napi::Object>().Get("map").As<Napi::String>().Utf8Value();
  *offset = OptInt(sf.As<Napi::Object>(), "offset", 0, 0, INT_MAX, op);
}

FlagMapping MapFlag(Napi::Env env, const char* op, ObjState& owner, const std::string& name, size_t offset) {
  bpf_map* fm = FindMap(env, op, owner, name);
  size_t total = Pad8(bpf_map__value_size(fm)) * bpf_map__max_entries(fm);
  if (bpf_map__type(fm) != BPF_MAP_TYPE_ARRAY || !(bpf_map__map_flags(fm) & BPF_F_MMAPABLE))
    ThrowErrno(env, op, EINVAL, "sleepFlag map '" + name + "' is not an mmapable array");
  if (offset % 4 || offset + 4 > total) ThrowErrno(env, op, EINVAL, "sleepFlag offset must be 4-byte aligned and inside the map");
  size_t page = static_cast<size_t>(getpagesize());
  FlagMapping m;
  m.len = (total + page - 1) / page * page;
  void* p = mmap(nullptr, m.len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(fm), 0);
  if (p == MAP_FAILED) ThrowErrno(env, op, errno, "mmap of sleepFlag map '" + name + "'");
  m.map = p;
  m.flag = reinterpret_cast<uint32_t*>(static_cast<uint8_t*>(p) + offset);
  return m;
}

std::shared_ptr<RingConsumer> RingConsumer::Start(Napi::Env env, const std::shared_ptr<ObjState>& owner,
                                                  bpf_map* ring, const RingOptions& opts,
                                                  Napi::Function onBatch) {
  const char* op = "ringStart";
  // Until the thread runs, the destructor (via Stop) undoes whatever was set up.
  auto c = std::make_shared<RingConsumer>();
  c->opts_ = opts;
  c->map_ = ring;
  if (bpf_map__type(ring) != BPF_MAP_TYPE_RINGBUF)
    ThrowErrno(env, op, EINVAL, std::string("map '") + bpf_map__name(ring) + "' is not a ring buffer");
  if (bpf_map__fd(ring) < 0) ThrowErrno(env, op, EINVAL, "object is not loaded");

  if (!opts.sleepMap.empty() && opts.pollIntervalUs < 0) {
    FlagMapping m = MapFlag(env, op, *owner, opts.sleepMap, opts.sleepOffset);
    c->flagMap_ = m.map;
    c->flagLen_ = m.len;
    c->flag_ = m.flag;
  }

  c->stopFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (c->stopFd_ < 0) ThrowErrno(env, op, errno, "eventfd");
  c->rb_ = ring_buffer__new(bpf_map__fd(ring), OnSample, c.get(), nullptr);
  if (!c->rb_) ThrowErrno(env, op, errno, "ring_buffer__new");
  // The stop eventfd joins libbpf's own epoll set, so one epoll_wait sees both. Safe because
  // ring_buffer__poll (which would misread our event) is never called.
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kStopKey;
  if (epoll_ctl(ring_buffer__epoll_fd(c->rb_), EPOLL_CTL_ADD, c->stopFd_, &ev))
    ThrowErrno(env, op, errno, "epoll_ctl");

  // Unbounded napi queue, bounded by inFlight_ instead: same drop rule as max_queue_size,
  // but the final drain in Stop() may exceed it, so stopping never loses a record.
  c->tsfn_ = Tsfn::New(env, onBatch, "patrol.ring", 0, 1, c.get(), Finalize, static_cast<void*>(nullptr));
  c->tsfnLive_ = true;
  c->self_ = c;
  try {
    c->thread_ = std::thread(&RingConsumer::Run, c.get());
  } catch (const std::system_error& e) {
    c->Stop();
    ThrowErrno(env, op, e.code().value(), "starting the poll thread");
  }
  if (opts.realtimePriority > 0) {
    // Only the poll thread: a woken consumer then preempts the task that woke it instead of
    // waiting for it to block (PREEMPT_NONE), most of the exec -> JS latency tail. Set from
    // here, not from the thread, so the outcome is known when ringStart returns. Refusal
    // (no CAP_SYS_NICE, RT throttled by cgroup) is not fatal: it is reported in the stats.
    sched_param sp{};
    sp.sched_priority = static_cast<int>(opts.realtimePriority);
    c->realtimeErrno_.store(pthread_setschedparam(c->thread_.native_handle(), SCHED_FIFO, &sp));
  }
  c->owner_ = owner;
  owner->rings.push_back(c);
  return c;
}

void RingConsumer::Stop() {
  if (thread_.joinable()) {
    stopReq_.store(true, std::memory_order_release);
    uint64_t one = 1;
    if (write(stopFd_, &one, sizeof one) < 0) {
      // Cannot fail for a fresh eventfd; the thread also sees stopReq_ within idleTimeoutMs.
    }
    thread_.join();  // never waits on JS: the thread only uses NonBlockingCall
  }
  if (rb_) ring_buffer__free(rb_);
  rb_ = nullptr;
  free(cur_);  // empty after the final drain
  cur_ = nullptr;
  if (flagMap_) munmap(flagMap_, flagLen_);
  flagMap_ = nullptr;
  flag_ = nullptr;
  if (stopFd_ >= 0) close(stopFd_);
  stopFd_ = -1;
  if (tsfnLive_) {
    tsfnLive_ = false;
    tsfn_.Release();  // queued batches are still delivered, then Finalize runs
  }
  // Last: may destroy the ObjState, whose Close() calls Stop() again (a no-op by now).
  std::shared_ptr<ObjState> owner = std::move(owner_);
}

Napi::Promise RingConsumer::StopAsync(Napi::Env env) {
  Stop();
  napi_deferred d;
  napi_value promise;
  NAPI_THROW_IF_FAILED(env, napi_create_promise(env, &d, &promise), Napi::Promise());
  if (finalized_)
    napi_resolve_deferred(env, d, env.Undefined());
  else
    waiters_.push_back(d);
  return Napi::Promise(env, promise);
}

static constexpr size_t kCopyBelow = 4096;

void RingConsumer::CallJs(Napi::Env env, Napi::Function cb, RingConsumer* self, Batch* b) {
  self->inFlight_.fetch_sub(1, std::memory_order_acq_rel);
  self->inFlightBytes_.fetch_sub(QueueCost(b), std::memory_order_acq_rel);
  if (static_cast<napi_env>(env) == nullptr || cb.IsEmpty()) {  // environment teardown
    self->Drop(b);
    return;
  }
  self->delivered_.fetch_add(1, std::memory_order_relaxed);
  double records = static_cast<double>(b->records);
  Napi::Buffer<uint8_t> buf;
  try {
    // Small batches (a few records: the common case at low rates) are copied and freed at
    // once: an external buffer costs V8 a weak reference and a finalizer pass in the GC, more
    // than copying a few hundred bytes. Large ones stay zero-copy.
    if (b->len <= kCopyBelow) {
      buf = Napi::Buffer<uint8_t>::Copy(env, b->data(), b->len);
      free(b);
    } else {
      buf = Napi::Buffer<uint8_t>::New(
          env, b->data(), b->len, [](Napi::Env, uint8_t*, Batch* p) { free(p); }, b);
    }
  } catch (...) {
    free(b);
    throw;
  }
  // A throwing onBatch surfaces as an uncaught exception, like an event listener's.
  cb.Call({buf, Napi::Number::New(env, records)});
}

void RingConsumer::Finalize(Napi::Env env, void*, RingConsumer* self) {
  std::shared_ptr<RingConsumer> keep = std::move(self->self_);  // alive until we return
  self->tsfnLive_ = false;  // released by Stop(), or torn down by Node with the environment
  self->Stop();             // teardown: the thread may still be running
  self->finalized_ = true;
  for (napi_deferred d : self->waiters_) napi_resolve_deferred(env, d, env.Undefined());
  self->waiters_.clear();
}

Napi::Object RingConsumer::Stats(Napi::Env env) const {
  auto num = [&](const std::atomic<uint64_t>& v) {
    return Napi::Number::New(env, static_cast<double>(v.load(std::memory_order_relaxed)));
  };
  Napi::Object o = Napi::Object::New(env);
  o.Set("records", num(records_));
  o.Set("batches", num(batches_));
  o.Set("deliveredBatches", num(delivered_));
  o.Set("pendingBatches", Napi::Number::New(env, static_cast<double>(inFlight_.load())));
  o.Set("pendingBytes", Napi::Number::New(env, static_cast<double>(inFlightBytes_.load())));
  o.Set("droppedRecords", num(droppedRecords_));
  o.Set("droppedBatches", num(droppedBatches_));
  Napi::Array tags = Napi::Array::New(env, 256);
  for (uint32_t i = 0; i < 256; i++) tags.Set(i, num(droppedByTag_[i]));
  o.Set("droppedByTag", tags);
  o.Set("wakeups", num(wakeups_));
  o.Set("sleeps", num(sleeps_));
  o.Set("timedConsumes", num(timedConsumes_));
  o.Set("timedRecords", num(timedRecords_));
  o.Set("lingerRecords", num(lingerRecords_));
  o.Set("lingerSteps", num(lingerSteps_));
  o.Set("holdWaits", num(holdWaits_));
  o.Set("running", Napi::Boolean::New(env, thread_.joinable()));
  int rt = realtimeErrno_.load(std::memory_order_relaxed);
  o.Set("realtimeError", rt ? Napi::Value(Napi::String::New(env, strerror(rt))) : env.Null());
  return o;
}

static RingHandle* ArgRing(const Napi::CallbackInfo& info, const char* op) {
  Napi::Value v = info[0];
  if (!v.IsExternal() || !v.As<Napi::External<RingHandle>>().CheckTypeTag(&kRingTag))
    ThrowInvalid(info.Env(), op, "expected a RingConsumer handle");
  return v.As<Napi::External<RingHandle>>().Data();
}

Napi::Value RingStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "ringStart";
  ObjHandle* h = ArgObj(info, 0, op);
  ObjState& st = OpenObj(info, 0, op);
  std::string name = ArgString(info, 1, op, "map name");
  Napi::Object o = ArgOptions(info, 2, op);
  if (!info[3].IsFunction()) ThrowInvalid(env, op, "onBatch must be a function");
  RingOptions opts;
  opts.batchBytes = OptInt(o, "batchBytes", 65536, 64, 1 << 30, op);
  opts.queueDepth = OptInt(o, "queueDepth", 4096, 1, 1 << 20, op);
  opts.queueBytes = OptInt(o, "queueBytes", 16 << 20, 4096, int64_t{1} << 40, op);
  opts.tagOffset = OptInt(o, "tagOffset", -1, 0, 1 << 30, op);
  opts.idleTimeoutMs = OptInt(o, "idleTimeoutMs", 1000, -1, INT_MAX, op);
  opts.pollIntervalUs = OptInt(o, "pollIntervalUs", -1, 0, 1000000000, op);
  opts.lingerUs = OptInt(o, "lingerUs", 1000, 0, 999999, op);
  opts.lingerStepUs = OptInt(o, "lingerStepUs", 100, 1, 999999, op);
  opts.realtimePriority = OptInt(o, "realtimePriority", 0, 0, 99, op);
  opts.batchDelayUs = OptInt(o, "batchDelayUs", 0, 0, 999999, op);
  opts.timeOffset = OptInt(o, "timeOffset", -1, 0, 1 << 30, op);
  ParseSleepFlag(env, o, op, false, &opts.sleepMap, &opts.sleepOffset);
  bpf_map* ring = FindMap(env, op, st, name);
  ThrowIfRingBusy(env, op, st, ring, name);
  auto c = RingConsumer::Start(env, h->obj, ring, opts, info[3].As<Napi::Function>());
  return MakeHandle(env, std::make_unique<RingHandle>(RingHandle{h->obj, c}), &kRingTag);
}

Napi::Value RingStop(const Napi::CallbackInfo& info) {
  RingHandle* h = ArgRing(info, "ringStop");
  Napi::Promise p = h->ring->StopAsync(info.Env());
  auto& rings = h->obj->rings;
  for (auto it = rings.begin(); it != rings.end(); ++it)
    if (*it == h->ring) {
      rings.erase(it);
      break;
    }
  return p;
}

Napi::Value RingStats(const Napi::CallbackInfo& info) {
  return ArgRing(info, "ringStats")->ring->Stats(info.Env());
}

}  // namespace patrol

// Ring buffer drained on the JS thread (see ring_pull.h). Every function here runs on the JS
// thread: the uv_poll callback too, so no atomics are needed for our own state. The flag is
// shared with BPF producers and follows the protocol of bpf/ringbuf.bpf.h.
#include "ring_pull.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "ring.h"

namespace patrol {

const napi_type_tag kPullTag = {0x2f6b1c9e8d7a4b30ULL, 0xa4c3e2f1b0d9c8e7ULL};

RingPull::~RingPull() { Close(); }

void RingPull::SetFlag(uint32_t v) {
  // Pairs with the producers' re-read after commit (rb_wake_if_sleeping): the flag must be
  // globally visible before our last drain reads producer_pos.
  __atomic_store_n(flag_, v, __ATOMIC_SEQ_CST);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

std::shared_ptr<RingPull> RingPull::Open(Napi::Env env, const std::shared_ptr<ObjState>& owner, bpf_map* ring,
                                         const PullOptions& opts, Napi::Function onWake) {
  const char* op = "ringPullOpen";
  auto c = std::make_shared<RingPull>();
  c->opts_ = opts;
  c->map_ = ring;
  if (bpf_map__type(ring) != BPF_MAP_TYPE_RINGBUF)
    ThrowErrno(env, op, EINVAL, std::string("map '") + bpf_map__name(ring) + "' is not a ring buffer");
  if (bpf_map__fd(ring) < 0) ThrowErrno(env, op, EINVAL, "object is not loaded");

  FlagMapping m = MapFlag(env, op, *owner, opts.sleepMap, opts.sleepOffset);
  c->flagMap_ = m.map;
  c->flagLen_ = m.len;
  c->flag_ = m.flag;

  c->limit_ = std::min<size_t>(bpf_map__max_entries(ring), kMaxDrainBytes);
  c->rb_ = ring_buffer__new(bpf_map__fd(ring), OnSample, c.get(), nullptr);
  if (!c->rb_) {
    int err = errno;
    c->Close();
    ThrowErrno(env, op, err, "ring_buffer__new");
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) {
    c->Close();
    ThrowErrno(env, op, EINVAL, "no libuv loop on this thread");
  }
  // libbpf's epoll set holds the ring fd (level-triggered): it turns readable only after a
  // producer's FORCE_WAKEUP, and stays so until the ring is drained. So OnPoll stops the poll
  // and Drain re-arms it, or an undrained ring would fire the loop continuously.
  c->poll_ = new uv_poll_t;
  int r = uv_poll_init(loop, c->poll_, ring_buffer__epoll_fd(c->rb_));
  if (r != 0) {
    delete c->poll_;
    c->poll_ = nullptr;
    c->Close();
    ThrowErrno(env, op, -r, "uv_poll_init");
  }
  c->poll_->data = c.get();
  c->onWake_ = Napi::Persistent(onWake);
  c->asyncCtx_ = std::make_unique<Napi::AsyncContext>(env, "patrol.ringPull");
  c->owner_ = owner;
  c->SetFlag(c->opts_.wakeAbovePages ? c->opts_.wakeAbovePages + 1 : 0);
  c->ArmPoll();
  owner->pulls.push_back(c);
  return c;
}

void RingPull::ArmPoll() {
  if (polling_ || !poll_) return;
  if (uv_poll_start(poll_, UV_READABLE, OnPoll) == 0) polling_ = true;
}

void RingPull::OnPoll(uv_poll_t* h, int status, int events) {
  auto* self = static_cast<RingPull*>(h->data);
  if (!self || !self->rb_) return;
  uv_poll_stop(h);
  self->polling_ = false;
  self->wakeups_++;
  Napi::Env env = self->onWake_.Env();
  Napi::HandleScope scope(env);
  // MakeCallback runs microtasks after the callback; a throw goes to 'uncaughtException', as
  // from any other libuv callback (a C++ exception must not escape into libuv).
  try {
    self->onWake_.MakeCallback(env.Global(), {}, *self->asyncCtx_);
  } catch (const Napi::Error& e) {
    napi_fatal_exception(env, e.Value());
  }
}

int RingPull::OnSample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<RingPull*>(ctx);
  size_t need = 8 + Pad8(size);
  if (self->len_ + need > self->cap_) {
    // Overflow: move to (or grow) a heap block. Records are never left behind: libbpf has
    // already advanced past this one, so failing here would lose it.
    size_t cap = self->cap_ * 2 > self->len_ + need ? self->cap_ * 2 : (self->len_ + need) * 2;
    uint8_t* h = static_cast<uint8_t*>(self->heap_ ? realloc(self->heap_, cap) : malloc(cap));
    if (!h) {
      self->oom_ = true;
      self->droppedRecords_++;  // out of memory: lost, and counted
      return 0;
    }
    if (!self->heap_) memcpy(h, self->dst_, self->len_);
    self->heap_ = h;
    self->dst_ = h;
    self->cap_ = cap;
  }
  WriteFrame(self->dst_ + self->len_, data, size);
  self->len_ += need;
  self->records_++;
  // A ring's worth copied: stop here. libbpf has already advanced past this record, and on a
  // negative return it publishes that position and returns, so nothing is left behind.
  if (self->limit_ && self->len_ >= self->limit_) {
    self->cutDrains_++;
    return -E2BIG;
  }
  return 0;
}

int RingPull::Consume(Napi::Env env, uint8_t* dst, size_t cap) {
  dst_ = dst;
  cap_ = cap;
  len_ = 0;
  heap_ = nullptr;
  int n = ring_buffer__consume(rb_);  // fails only when OnSample cut the drain (-E2BIG)
  drains_++;
  return n < 0 ? 0 : n;
}

Napi::Value RingPull::Result(Napi::Env env, int n) {
  if (!heap_) return Napi::Number::New(env, static_cast<double>(len_));
  overflows_++;
  uint8_t* h = heap_;
  heap_ = nullptr;
  return Napi::Buffer<uint8_t>::New(env, h, len_, [](Napi::Env, uint8_t* q) { free(q); });
}

Napi::Value RingPull::Drain(Napi::Env env, uint8_t* dst, size_t cap) {
  int n = Consume(env, dst, cap);
  // Re-arm the watermark after the drain: a backlog that built up during it wakes us again.
  if (opts_.wakeAbovePages) SetFlag(opts_.wakeAbovePages + 1);
  ArmPoll();
  return Result(env, n);
}

Napi::Value RingPull::Sleep(Napi::Env env, uint8_t* dst, size_t cap) {
  SetFlag(1);
  int n = Consume(env, dst, cap);
  // A claim seen here may mean the claimer's carrier (an empty discarded record, not counted
  // by ring_buffer__consume) was just drained: report awake, its wakeup is still to come.
  if (n > 0 || len_ > 0 || __atomic_load_n(flag_, __ATOMIC_SEQ_CST) == 0) {
    sleepAborts_++;
    if (opts_.wakeAbovePages) SetFlag(opts_.wakeAbovePages + 1);
    else SetFlag(0);
    ArmPoll();
    return Result(env, n);
  }
  sleeps_++;
  ArmPoll();
  return Napi::Number::New(env, -1);
}

void RingPull::Close() {
  if (poll_) {
    uv_poll_t* h = poll_;
    poll_ = nullptr;
    polling_ = false;
    h->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* x) { delete reinterpret_cast<uv_poll_t*>(x); });
  }
  if (rb_) ring_buffer__free(rb_);
  rb_ = nullptr;
  if (flagMap_) munmap(flagMap_, flagLen_);
  flagMap_ = nullptr;
  flag_ = nullptr;
  onWake_.Reset();
  asyncCtx_.reset();
  std::shared_ptr<ObjState> owner = std::move(owner_);  // last: may close the object
}

Napi::Object RingPull::Stats(Napi::Env env) const {
  auto num = [&](uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); };
  Napi::Object o = Napi::Object::New(env);
  o.Set("records", num(records_));
  o.Set("drains", num(drains_));
  o.Set("overflows", num(overflows_));
  o.Set("wakeups", num(wakeups_));
  o.Set("sleeps", num(sleeps_));
  o.Set("sleepAborts", num(sleepAborts_));
  o.Set("droppedRecords", num(droppedRecords_));
  o.Set("cutDrains", num(cutDrains_));
  o.Set("running", Napi::Boolean::New(env, rb_ != nullptr));
  return o;
}

// ---- JS entry points ----------------------------------------------------------------

struct PullHandle {
  std::shared_ptr<ObjState> obj;
  std::shared_ptr<RingPull> pull;
};

static PullHandle* ArgPullHandle(const Napi::CallbackInfo& info, const char* op) {
  Napi::Value v = info[0];
  if (!v.IsExternal() || !v.As<Napi::External<PullHandle>>().CheckTypeTag(&kPullTag))
    ThrowInvalid(info.Env(), op, "expected a RingPull handle");
  return v.As<Napi::External<PullHandle>>().Data();
}

static RingPull* ArgPull(const Napi::CallbackInfo& info, const char* op) { return ArgPullHandle(info, op)->pull.get(); }

void ThrowIfRingBusy(Napi::Env env, const char* op, ObjState& st, const bpf_map* ring, const std::string& name) {
  for (auto& r : st.rings)
    if (r->running() && r->map() == ring) ThrowErrno(env, op, EBUSY, "map '" + name + "' already has a consumer");
  for (auto& r : st.pulls)
    if (r->open() && r->map() == ring) ThrowErrno(env, op, EBUSY, "map '" + name + "' already has a consumer");
}

Napi::Value RingPullOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "ringPullOpen";
  ObjHandle* h = ArgObj(info, 0, op);
  ObjState& st = OpenObj(info, 0, op);
  std::string name = ArgString(info, 1, op, "map name");
  Napi::Object o = ArgOptions(info, 2, op);
  if (!info[3].IsFunction()) ThrowInvalid(env, op, "onWake must be a function");
  PullOptions opts;
  opts.tagOffset = OptInt(o, "tagOffset", -1, 0, 1 << 30, op);
  opts.wakeAbovePages = static_cast<uint32_t>(OptInt(o, "wakeAbovePages", 0, 0, 1 << 20, op));
  ParseSleepFlag(env, o, op, true, &opts.sleepMap, &opts.sleepOffset);
  bpf_map* ring = FindMap(env, op, st, name);
  ThrowIfRingBusy(env, op, st, ring, name);
  auto c = RingPull::Open(env, h->obj, ring, opts, info[3].As<Napi::Function>());
  return MakeHandle(env, std::make_unique<PullHandle>(PullHandle{h->obj, c}), &kPullTag);
}

// Hot: called once per tick. No log capture wrapper (libbpf does not log while consuming).
static Napi::Value DrainOrSleep(const Napi::CallbackInfo& info, bool sleep) {
  const char* op = sleep ? "ringPullSleep" : "ringPullDrain";
  RingPull* p = ArgPull(info, op);
  if (!p->open()) ThrowErrno(info.Env(), op, EBADF, "consumer is closed");
  if (!info[1].IsBuffer()) ThrowInvalid(info.Env(), op, "target must be a Buffer");
  auto buf = info[1].As<Napi::Buffer<uint8_t>>();
  return sleep ? p->Sleep(info.Env(), buf.Data(), buf.Length()) : p->Drain(info.Env(), buf.Data(), buf.Length());
}

Napi::Value RingPullDrain(const Napi::CallbackInfo& info) { return DrainOrSleep(info, false); }
Napi::Value RingPullSleep(const Napi::CallbackInfo& info) { return DrainOrSleep(info, true); }

Napi::Value RingPullClose(const Napi::CallbackInfo& info) {
  PullHandle* h = ArgPullHandle(info, "ringPullClose");
  h->pull->Close();
  auto& pulls = h->obj->pulls;
  for (auto it = pulls.begin(); it != pulls.end(); ++it)
    if (*it == h->pull) {
      pulls.erase(it);
      break;
    }
  return info.Env().Undefined();
}

Napi::Value RingPullStats(const Napi::CallbackInfo& info) { return ArgPull(info, "ringPullStats")->Stats(info.Env()); }

}  // namespace patrol

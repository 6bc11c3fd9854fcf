// fdWatch(fd, onReadable): a libuv poll handle on a readable fd, on the JS thread. A reader of a
// pollable fd (/dev/kmsg) then runs only when there is something to read, instead of waking the
// agent on a timer to ask. Level-triggered (libuv's epoll): the callback must read until EAGAIN.
#include <uv.h>

#include "common.h"

namespace patrol {
namespace {

class FdWatch : public Napi::ObjectWrap<FdWatch> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdWatch", {InstanceMethod<&FdWatch::Close>("close")});
  }

  explicit FdWatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdWatch>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsNumber() || !info[1].IsFunction()) ThrowInvalid(env, "fdWatch", "expected (fd, onReadable)");
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) ThrowErrno(env, "fdWatch", EINVAL, "no libuv loop on this thread");
    poll_ = new uv_poll_t;
    int r = uv_poll_init(loop, poll_, info[0].As<Napi::Number>().Int32Value());
    if (r != 0) {
      delete poll_;
      poll_ = nullptr;
      ThrowErrno(env, "fdWatch", -r, "uv_poll_init");
    }
    poll_->data = this;
    onReadable_ = Napi::Persistent(info[1].As<Napi::Function>());
    ctx_ = std::make_unique<Napi::AsyncContext>(env, "patrol.fdWatch");
    r = uv_poll_start(poll_, UV_READABLE, OnPoll);
    if (r != 0) {
      Stop();
      ThrowErrno(env, "fdWatch", -r, "uv_poll_start");
    }
    // The handle must not keep the agent's loop alive on its own, like an unref'd timer.
    uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  }

  ~FdWatch() override { Stop(); }

 private:
  static void OnPoll(uv_poll_t* h, int status, int) {
    auto* self = static_cast<FdWatch*>(h->data);
    if (!self) return;
    // An error on the fd (e.g. it was closed under us): stop, or libuv would report it forever.
    if (status < 0) {
      uv_poll_stop(h);
      return;
    }
    Napi::Env env = self->onReadable_.Env();
    Napi::HandleScope scope(env);
    try {
      self->onReadable_.MakeCallback(env.Global(), {}, *self->ctx_);
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Stop();
    return info.Env().Undefined();
  }

  void Stop() {
    if (!poll_) return;
    uv_poll_t* h = poll_;
    poll_ = nullptr;
    h->data = nullptr;
    uv_poll_stop(h);
    uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* x) { delete reinterpret_cast<uv_poll_t*>(x); });
    onReadable_.Reset();
    ctx_.reset();
  }

  uv_poll_t* poll_ = nullptr;  // freed by its close callback
  Napi::FunctionReference onReadable_;
  std::unique_ptr<Napi::AsyncContext> ctx_;
};

}  // namespace

Napi::Function DefineFdWatch(Napi::Env env) { return FdWatch::Define(env); }

}  // namespace patrol

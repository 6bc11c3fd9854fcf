// Shared declarations of the patrol native addon: handles, typed errors, argument helpers,
// libbpf log capture. The addon is a thin transport over libbpf; it never interprets records.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace patrol {

class RingConsumer;
class RingPull;

// One bpf_link created by attach(). Owned by its ObjState so close() can destroy it; the
// JS link handle shares it so detach() after close() is a harmless no-op.
struct LinkRec {
  bpf_link* link = nullptr;
};

// One opened bpf_object plus everything created from it. Lives as long as any handle
// (object, link, consumer) refers to it, and while a consumer runs (see RingConsumer).
struct ObjState {
  bpf_object* obj = nullptr;
  std::vector<std::shared_ptr<LinkRec>> links;
  std::vector<std::shared_ptr<RingConsumer>> rings;
  std::vector<std::shared_ptr<RingPull>> pulls;

  ~ObjState() { Close(); }
  // Stops consumers, destroys links, closes the object. Idempotent.
  void Close();
};

// What the opaque JS handles (Napi::External, type-tagged) point to.
struct ObjHandle {
  std::shared_ptr<ObjState> obj;
};
struct LinkHandle {
  std::shared_ptr<ObjState> obj;
  std::shared_ptr<LinkRec> rec;
};
struct RingHandle {
  std::shared_ptr<ObjState> obj;
  std::shared_ptr<RingConsumer> ring;
};

extern const napi_type_tag kObjTag, kLinkTag, kRingTag, kPullTag;

template <typename H>
Napi::Value MakeHandle(Napi::Env env, std::unique_ptr<H> h, const napi_type_tag* tag) {
  auto ext = Napi::External<H>::New(env, h.get(), [](Napi::Env, H* p) { delete p; });
  h.release();  // owned by the External's finalizer from here on
  ext.TypeTag(tag);
  return ext;
}

// ---- errors.cc ----------------------------------------------------------------------
// A JS Error with code (errno name), errno (positive), syscall (the native function) and,
// when libbpf warned during the call, log (those lines). `err` may be given negative.
Napi::Error ErrnoError(Napi::Env env, const char* op, int err, const std::string& what);
[[noreturn]] void ThrowErrno(Napi::Env env, const char* op, int err, const std::string& what);
// Bad arguments: TypeError with code 'EINVAL'.
[[noreturn]] void ThrowInvalid(Napi::Env env, const char* op, const std::string& what);

// fd_watch.cc: the FdWatch class (a libuv poll handle on a readable fd).
Napi::Function DefineFdWatch(Napi::Env env);

struct Bytes {
  const uint8_t* data;
  size_t len;
};
Bytes ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what);
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what);
// Options object at info[i]; undefined/null gives an empty object.
Napi::Object ArgOptions(const Napi::CallbackInfo& info, size_t i, const char* op);
// Integer option in [lo, hi]; `def` when absent (undefined). `label` names it in errors.
int64_t OptInt(Napi::Object o, const char* key, int64_t def, int64_t lo, int64_t hi,
               const char* op, const std::string& label = "");

ObjHandle* ArgObj(const Napi::CallbackInfo& info, size_t i, const char* op);
// The object of info[i], which must not be closed (EBADF otherwise).
ObjState& OpenObj(const Napi::CallbackInfo& info, size_t i, const char* op);
bpf_program* FindProg(Napi::Env env, const char* op, ObjState& st, const std::string& name);
bpf_map* FindMap(Napi::Env env, const char* op, ObjState& st, const std::string& name);

// ---- log.cc -------------------------------------------------------------------------
// Installs the libbpf print callback and a cleanup hook for this environment.
void InitLog(Napi::Env env);
Napi::Value SetLogger(const Napi::CallbackInfo& info);
// Warn-level libbpf lines emitted since the current native call started.
std::vector<std::string> WarnLinesOfCall();
// While alive, warn-level libbpf lines printed on this thread are also appended to `into`
// (a worker thread's load: loadAsync).
class CaptureWarnings {
 public:
  explicit CaptureWarnings(std::vector<std::string>* into);
  ~CaptureWarnings();
  CaptureWarnings(const CaptureWarnings&) = delete;
  CaptureWarnings& operator=(const CaptureWarnings&) = delete;

 private:
  std::vector<std::string>* prev_;
};
// Entry point wrapper: remembers where this call's log lines start, and forwards the
// lines to the JS logger once libbpf has returned (never from inside libbpf: the logger
// could re-enter the addon) and before an error reaches JS.
Napi::Value CallWithLog(const Napi::CallbackInfo& info,
                        Napi::Value (*fn)(const Napi::CallbackInfo&));

// ---- exported functions -------------------------------------------------------------
Napi::Value Open(const Napi::CallbackInfo& info);
Napi::Value Load(const Napi::CallbackInfo& info);
Napi::Value LoadAsync(const Napi::CallbackInfo& info);
Napi::Value ReadRodata(const Napi::CallbackInfo& info);
Napi::Value Inspect(const Napi::CallbackInfo& info);
Napi::Value Attach(const Napi::CallbackInfo& info);
Napi::Value Detach(const Napi::CallbackInfo& info);
Napi::Value DetachAll(const Napi::CallbackInfo& info);
Napi::Value Close(const Napi::CallbackInfo& info);
Napi::Value IterRead(const Napi::CallbackInfo& info);
Napi::Value ProgRun(const Napi::CallbackInfo& info);
Napi::Value MapLookup(const Napi::CallbackInfo& info);
Napi::Value MapUpdate(const Napi::CallbackInfo& info);
Napi::Value MapDelete(const Napi::CallbackInfo& info);
Napi::Value MapEntries(const Napi::CallbackInfo& info);
Napi::Value RingStart(const Napi::CallbackInfo& info);
Napi::Value RingStop(const Napi::CallbackInfo& info);
Napi::Value RingStats(const Napi::CallbackInfo& info);

}  // namespace patrol

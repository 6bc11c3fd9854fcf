// Module entry: the exported functions and constants. See ../patrol_native.d.ts for the API.
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common.h"
#include "ring_pull.h"

namespace patrol {
namespace {

// Records carry CLOCK_BOOTTIME (bpf_ktime_get_boot_ns), which Node cannot read.
Napi::Value ClockBoottimeNs(const Napi::CallbackInfo& info) {
  timespec ts;
  if (clock_gettime(CLOCK_BOOTTIME, &ts)) ThrowErrno(info.Env(), "clockBoottimeNs", errno, "clock_gettime");
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(ts.tv_sec) * 1000000000u + ts.tv_nsec);
}

// trimHeap(): gives freed malloc memory back to the kernel. Loading a BPF object parses the
// kernel's BTF (tens of MB in libbpf's structures), freed after the load but kept by malloc in
// the process's RSS unless trimmed. Returns whether anything was released.
Napi::Value TrimHeap(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
}

// pageOut(addr, len, random?): madvise(MADV_PAGEOUT) over [addr, addr + len), page-aligned.
// Returns 0 or the errno (EINVAL before Linux 5.4, which lacks MADV_PAGEOUT): a refusal is the
// caller's to report, not an error. With `random`, the range is first advised MADV_RANDOM: a page
// touched again is then read back alone, without the readahead around it. Which ranges to give
// back is decided in TypeScript (startup-pages.ts).
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
Napi::Value PageOut(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) ThrowInvalid(env, "pageOut", "addr and len must be numbers");
  double a = info[0].As<Napi::Number>().DoubleValue();
  double n = info[1].As<Napi::Number>().DoubleValue();
  const double page = static_cast<double>(getpagesize());
  // negated comparisons: a NaN fails them too, before any cast
  if (!(a > 0) || !(n > 0) || !(a + n <= 9007199254740992.0) || a != static_cast<double>(static_cast<uint64_t>(a)) ||
      n != static_cast<double>(static_cast<uint64_t>(n)) || static_cast<uint64_t>(a) % static_cast<uint64_t>(page) != 0)
    ThrowInvalid(env, "pageOut", "addr must be a page-aligned address and len a positive byte count");
  void* addr = reinterpret_cast<void*>(static_cast<uintptr_t>(a));
  if (info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value() && madvise(addr, static_cast<size_t>(n), MADV_RANDOM) != 0)
    return Napi::Number::New(env, errno);
  int r = madvise(addr, static_cast<size_t>(n), MADV_PAGEOUT);
  return Napi::Number::New(env, r == 0 ? 0 : errno);
}

// fdReadable(fd): poll(2) with a zero timeout. Lets a poller of a non-blocking fd (/dev/kmsg)
// skip the read when nothing is there: an EAGAIN from fs.readSync costs an Error with a stack.
Napi::Value FdReadable(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber()) ThrowInvalid(info.Env(), "fdReadable", "fd must be a number");
  pollfd p{info[0].As<Napi::Number>().Int32Value(), POLLIN, 0};
  int r = poll(&p, 1, 0);
  return Napi::Boolean::New(info.Env(), r != 0);  // an error (r < 0): let the read report it
}

// setThreadRealtime(priority): the calling thread to SCHED_FIFO at priority (1-99), or back to
// SCHED_OTHER (0). Returns null, or strerror of the refusal (EPERM without CAP_SYS_NICE or
// without an RT budget in the cgroup): a refusal is a warning for the caller, not an error.
Napi::Value SetThreadRealtime(const Napi::CallbackInfo& info) {
  int prio = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : -1;
  if (prio < 0 || prio > 99) ThrowInvalid(info.Env(), "setThreadRealtime", "priority must be 0..99");
  sched_param sp{};
  sp.sched_priority = prio;
  int err = pthread_setschedparam(pthread_self(), prio ? SCHED_FIFO : SCHED_OTHER, &sp);
  return err ? Napi::Value(Napi::String::New(info.Env(), strerror(err))) : info.Env().Null();
}

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Entry(const Napi::CallbackInfo& info) {
  return CallWithLog(info, F);
}

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
void Export(Napi::Env env, Napi::Object exports, const char* name) {
  exports.Set(name, Napi::Function::New<Entry<F>>(env, name));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitLog(env);
  Export<Open>(env, exports, "open");
  Export<Load>(env, exports, "load");
  Export<LoadAsync>(env, exports, "loadAsync");
  Export<ReadRodata>(env, exports, "readRodata");
  Export<Inspect>(env, exports, "inspect");
  Export<Attach>(env, exports, "attach");
  Export<Detach>(env, exports, "detach");
  Export<DetachAll>(env, exports, "detachAll");
  Export<Close>(env, exports, "close");
  Export<MapLookup>(env, exports, "mapLookup");
  Export<MapUpdate>(env, exports, "mapUpdate");
  Export<MapDelete>(env, exports, "mapDelete");
  Export<MapEntries>(env, exports, "mapEntries");
  Export<IterRead>(env, exports, "iterRead");
  Export<ProgRun>(env, exports, "progRun");
  Export<RingStart>(env, exports, "ringStart");
  Export<RingStop>(env, exports, "ringStop");
  Export<RingStats>(env, exports, "ringStats");
  Export<RingPullOpen>(env, exports, "ringPullOpen");
  Export<RingPullClose>(env, exports, "ringPullClose");
  Export<RingPullStats>(env, exports, "ringPullStats");
  // Per tick: no log-capture wrapper.
  exports.Set("ringPullDrain", Napi::Function::New<RingPullDrain>(env, "ringPullDrain"));
  exports.Set("ringPullSleep", Napi::Function::New<RingPullSleep>(env, "ringPullSleep"));
  Export<SetLogger>(env, exports, "setLogger");
  Export<SetThreadRealtime>(env, exports, "setThreadRealtime");
  exports.Set("fdReadable", Napi::Function::New<FdReadable>(env, "fdReadable"));
  exports.Set("FdWatch", DefineFdWatch(env));
  exports.Set("trimHeap", Napi::Function::New<TrimHeap>(env, "trimHeap"));
  exports.Set("pageOut", Napi::Function::New<PageOut>(env, "pageOut"));
  exports.Set("clockBoottimeNs", Napi::Function::New<ClockBoottimeNs>(env, "clockBoottimeNs"));

  exports.Set("pageSize", Napi::Number::New(env, getpagesize()));
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu < 0) ThrowErrno(env, "init", ncpu, "libbpf_num_possible_cpus");
  exports.Set("numPossibleCpus", Napi::Number::New(env, ncpu));
  exports.Set("libbpfVersion", Napi::String::New(env, libbpf_version_string()));
  return exports;
}

}  // namespace
}  // namespace patrol

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  return patrol::Init(env, exports);
}

NODE_API_MODULE(patrol_native, InitModule)

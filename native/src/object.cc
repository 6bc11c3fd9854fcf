// Object lifecycle: open/load/close, .rodata patching, attach/detach, iterators, test runs.
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common.h"
#include "ring.h"
#include "ring_pull.h"

namespace patrol {

void ObjState::Close() {
  // Consumers first: their thread reads the ring map, which bpf_object__close unmaps.
  std::vector<std::shared_ptr<RingConsumer>> rs;
  rs.swap(rings);
  for (auto& r : rs) r->Stop();
  std::vector<std::shared_ptr<RingPull>> ps;
  ps.swap(pulls);
  for (auto& p : ps) p->Close();
  for (auto& l : links) {
    if (l->link) bpf_link__destroy(l->link);
    l->link = nullptr;
  }
  links.clear();
  if (obj) bpf_object__close(obj);
  obj = nullptr;
}

// Copies `b` over the initial value of .rodata (the const volatile globals). Sizes must
// match exactly: the caller patches a copy obtained from readRodata().
static void ApplyRodata(Napi::Env env, const char* op, bpf_object* obj, Bytes b) {
  bpf_map* m = bpf_object__find_map_by_name(obj, ".rodata");
  if (!m) ThrowErrno(env, op, ENOENT, "object has no .rodata");
  size_t size = 0;
  if (!bpf_map__initial_value(m, &size)) ThrowErrno(env, op, EINVAL, ".rodata has no initial value");
  if (b.len != size)
    ThrowErrno(env, op, EINVAL, "rodata must be " + std::to_string(size) + " bytes, got " + std::to_string(b.len));
  int err = bpf_map__set_initial_value(m, b.data, b.len);
  if (err) ThrowErrno(env, op, err, "setting .rodata");
}

// Applies open() options; throws on the first problem (the caller closes the object).
static void ApplyOpenOptions(Napi::Env env, bpf_object* obj, Napi::Object opts) {
  const char* op = "open";
  Napi::Value me = opts.Get("maxEntries");
  if (!me.IsUndefined()) {
    if (!me.IsObject()) ThrowInvalid(env, op, "maxEntries must be an object");
    Napi::Object o = me.As<Napi::Object>();
    Napi::Array keys = o.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); i++) {
      std::string name = keys.Get(i).ToString().Utf8Value();
      int64_t n = OptInt(o, name.c_str(), 0, 1, UINT32_MAX, op, "maxEntries." + name);
      bpf_map* m = bpf_object__find_map_by_name(obj, name.c_str());
      if (!m) ThrowErrno(env, op, ENOENT, "maxEntries: no map '" + name + "'");
      int err = bpf_map__set_max_entries(m, static_cast<uint32_t>(n));
      if (err) ThrowErrno(env, op, err, "maxEntries: map '" + name + "'");
    }
  }
  Napi::Value al = opts.Get("autoload");
  if (!al.IsUndefined()) {
    if (!al.IsObject()) ThrowInvalid(env, op, "autoload must be an object");
    Napi::Object o = al.As<Napi::Object>();
    Napi::Array keys = o.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); i++) {
      std::string name = keys.Get(i).ToString().Utf8Value();
      Napi::Value v = o.Get(name);
      if (!v.IsBoolean()) ThrowInvalid(env, op, "autoload." + name + " must be a boolean");
      bpf_program* p = bpf_object__find_program_by_name(obj, name.c_str());
      if (!p) ThrowErrno(env, op, ENOENT, "autoload: no program '" + name + "'");
      int err = bpf_program__set_autoload(p, v.As<Napi::Boolean>().Value());
      if (err) ThrowErrno(env, op, err, "autoload: program '" + name + "'");
    }
  }
  Napi::Value ro = opts.Get("rodata");
  if (!ro.IsUndefined()) {
    if (!ro.IsTypedArray() || ro.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      ThrowInvalid(env, op, "rodata must be a Buffer");
    auto a = ro.As<Napi::Uint8Array>();
    ApplyRodata(env, op, obj, {a.Data(), a.ByteLength()});
  }
}

Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "open", "path");
  Napi::Object opts = ArgOptions(info, 1, "open");
  auto st = std::make_shared<ObjState>();  // closes the object if anything below throws
  st->obj = bpf_object__open_file(path.c_str(), nullptr);
  if (!st->obj) ThrowErrno(env, "open", errno, path);
  ApplyOpenOptions(env, st->obj, opts);
  return MakeHandle(env, std::make_unique<ObjHandle>(ObjHandle{st}), &kObjTag);
}

// Which program failed, from libbpf 1.1's "libbpf: prog 'NAME': failed to load: -13", and the
// verifier's verdict: the log line just before its "processed N insns" summary. Only used to
// make the error readable; the full log goes to the logger and err.log.
static void DescribeLoadFailure(const std::vector<std::string>& lines, std::string* prog,
                                std::string* verdict) {
  for (size_t i = 0; i < lines.size(); i++) {
    const std::string& l = lines[i];
    if (l.rfind("processed ", 0) == 0 && i > 0 && verdict->empty()) *verdict = lines[i - 1];
    size_t p = l.find("prog '");
    if (p == std::string::npos || l.find("failed to load") == std::string::npos || !prog->empty())
      continue;
    size_t q = l.find('\'', p + 6);
    if (q != std::string::npos) *prog = l.substr(p + 6, q - p - 6);
  }
}

Napi::Value Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjState& st = OpenObj(info, 0, "load");
  Napi::Object opts = ArgOptions(info, 1, "load");
  Napi::Value ro = opts.Get("rodata");
  if (!ro.IsUndefined()) {
    if (!ro.IsTypedArray() || ro.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      ThrowInvalid(env, "load", "rodata must be a Buffer");
    auto a = ro.As<Napi::Uint8Array>();
    ApplyRodata(env, "load", st.obj, {a.Data(), a.ByteLength()});
  }
  // The verifier gives up with EAGAIN when a signal is pending, and a long verification under
  // a sampling profiler (SIGPROF every ms) or a busy signal source always has one. Blocked
  // signals do not count as pending for it, so block them for the load: they are delivered
  // right after (SIGKILL and SIGSTOP cannot be blocked, and need not be).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int err = bpf_object__load(st.obj);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (err) {
    std::string prog, verdict;
    DescribeLoadFailure(WarnLinesOfCall(), &prog, &verdict);
    std::string what = "bpf_object__load";
    if (!prog.empty()) {
      what = "program '" + prog + "' failed to load";
      if (!verdict.empty()) what += " (verifier: " + verdict + "; full log in err.log and the logger)";
    }
    Napi::Error e = ErrnoError(env, "load", err, what);
    if (!prog.empty()) e.Value().Set("program", prog);
    throw e;
  }
  return env.Undefined();
}

Napi::Value ReadRodata(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjState& st = OpenObj(info, 0, "readRodata");
  bpf_map* m = bpf_object__find_map_by_name(st.obj, ".rodata");
  if (!m) ThrowErrno(env, "readRodata", ENOENT, "object has no .rodata");
  size_t size = 0;
  const void* p = bpf_map__initial_value(m, &size);
  if (!p) ThrowErrno(env, "readRodata", EINVAL, ".rodata has no initial value");
  return Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(p), size);
}

Napi::Value Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjHandle* h = ArgObj(info, 0, "attach");
  ObjState& st = OpenObj(info, 0, "attach");
  std::string name = ArgString(info, 1, "attach", "program name");
  bpf_program* p = FindProg(env, "attach", st, name);
  bpf_link* link = bpf_program__attach(p);
  if (!link) {
    int err = errno;
    std::string sec = bpf_program__section_name(p);
    std::string what = "program '" + name + "' (" + sec + ")";
    // Classic tracepoints resolve their id through tracefs; ENOENT usually means it is
    // not mounted (tp_btf and raw_tp do not need it).
    if (err == ENOENT && (sec.rfind("tracepoint/", 0) == 0 || sec.rfind("tp/", 0) == 0))
      what += ": tracefs may be unmounted (expected at /sys/kernel/tracing)";
    ThrowErrno(env, "attach", err, what);
  }
  auto rec = std::make_shared<LinkRec>();
  rec->link = link;
  st.links.push_back(rec);
  return MakeHandle(env, std::make_unique<LinkHandle>(LinkHandle{h->obj, rec}), &kLinkTag);
}

Napi::Value Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value v = info[0];
  if (!v.IsExternal() || !v.As<Napi::External<LinkHandle>>().CheckTypeTag(&kLinkTag))
    ThrowInvalid(env, "detach", "expected a BpfLink handle");
  LinkHandle* h = v.As<Napi::External<LinkHandle>>().Data();
  if (!h->rec->link) return env.Undefined();  // detached already, or by close()
  bpf_link* link = h->rec->link;
  h->rec->link = nullptr;
  auto& links = h->obj->links;
  for (auto it = links.begin(); it != links.end(); ++it)
    if (*it == h->rec) {
      links.erase(it);
      break;
    }
  // The link is gone either way; report a failing close (its fd) but do not retry.
  int err = bpf_link__destroy(link);
  if (err) ThrowErrno(env, "detach", err, "bpf_link__destroy");
  return env.Undefined();
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  ArgObj(info, 0, "close")->obj->Close();
  return info.Env().Undefined();
}

Napi::Value IterRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjState& st = OpenObj(info, 0, "iterRead");
  std::string name = ArgString(info, 1, "iterRead", "program name");
  bpf_program* p = FindProg(env, "iterRead", st, name);
  bpf_link* link = bpf_program__attach_iter(p, nullptr);
  if (!link) ThrowErrno(env, "iterRead", errno, "attaching iterator '" + name + "'");
  int fd = bpf_iter_create(bpf_link__fd(link));
  if (fd < 0) {
    bpf_link__destroy(link);
    ThrowErrno(env, "iterRead", fd, "bpf_iter_create");
  }
  std::vector<uint8_t> out;
  size_t used = 0;
  int err = 0;
  for (;;) {
    if (out.size() - used < 65536) out.resize(used + 65536);
    ssize_t n = read(fd, out.data() + used, out.size() - used);
    if (n > 0) {
      used += n;
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      err = errno;
      break;
    }
  }
  close(fd);
  bpf_link__destroy(link);
  if (err) ThrowErrno(env, "iterRead", err, "reading iterator '" + name + "'");
  return Napi::Buffer<uint8_t>::Copy(env, out.data(), used);
}

static uint64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + ts.tv_nsec;
}

// One BPF_PROG_TEST_RUN per repetition, timed here: raw_tp and tracing programs reject the
// kernel's own `repeat` and report no duration.
Napi::Value ProgRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjState& st = OpenObj(info, 0, "progRun");
  std::string name = ArgString(info, 1, "progRun", "program name");
  Napi::Object opts = ArgOptions(info, 2, "progRun");
  int64_t repeat = OptInt(opts, "repeat", 1, 1, 1000000000, "progRun");
  int64_t cpu = OptInt(opts, "cpu", -1, 0, 65535, "progRun");
  bpf_program* p = FindProg(env, "progRun", st, name);
  int fd = bpf_program__fd(p);
  if (fd < 0) ThrowErrno(env, "progRun", EINVAL, "program '" + name + "' is not loaded");

  LIBBPF_OPTS(bpf_test_run_opts, o);
  if (cpu >= 0) {
    o.flags = BPF_F_TEST_RUN_ON_CPU;
    o.cpu = static_cast<uint32_t>(cpu);
  }
  uint64_t t0 = MonoNs();
  for (int64_t i = 0; i < repeat; i++) {
    int err = bpf_prog_test_run_opts(fd, &o);
    if (err) ThrowErrno(env, "progRun", err, "program '" + name + "' run " + std::to_string(i));
  }
  uint64_t total = MonoNs() - t0;
  Napi::Object r = Napi::Object::New(env);
  r.Set("retval", Napi::Number::New(env, o.retval));
  r.Set("durationNs", Napi::Number::New(env, static_cast<double>(total) / repeat));
  r.Set("runs", Napi::Number::New(env, static_cast<double>(repeat)));
  return r;
}

}  // namespace patrol

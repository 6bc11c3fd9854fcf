// Object lifecycle: open/load/close, .rodata patching, attach/detach, iterators, test runs.
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <sched.h>

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

// reuse: {from: BpfObject (loaded), maps: [names]}: the named maps of this object become the
// loaded maps of `from` (bpf_map__reuse_fd), so both objects share them. libbpf takes the
// definition from the running map; whether the layouts agree is the caller's check, made
// before this (src/kernel/preflight.ts).
static void ApplyReuse(Napi::Env env, ObjState& st, Napi::Value reuse) {
  const char* op = "load";
  if (!reuse.IsObject()) ThrowInvalid(env, op, "reuse must be {from, maps}");
  Napi::Object r = reuse.As<Napi::Object>();
  Napi::Value from = r.Get("from");
  if (!from.IsExternal() || !from.As<Napi::External<ObjHandle>>().CheckTypeTag(&kObjTag))
    ThrowInvalid(env, op, "reuse.from must be a BpfObject");
  ObjState& src = *from.As<Napi::External<ObjHandle>>().Data()->obj;
  if (!src.obj) ThrowErrno(env, op, EBADF, "reuse.from is closed");
  Napi::Value names = r.Get("maps");
  if (!names.IsArray()) ThrowInvalid(env, op, "reuse.maps must be an array of map names");
  Napi::Array a = names.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    std::string name = a.Get(i).ToString().Utf8Value();
    bpf_map* to = bpf_object__find_map_by_name(st.obj, name.c_str());
    bpf_map* fromMap = bpf_object__find_map_by_name(src.obj, name.c_str());
    if (!to) ThrowErrno(env, op, ENOENT, "reuse: the new object has no map '" + name + "'");
    if (!fromMap || bpf_map__fd(fromMap) < 0) ThrowErrno(env, op, ENOENT, "reuse: the running object has no loaded map '" + name + "'");
    int err = bpf_map__reuse_fd(to, bpf_map__fd(fromMap));
    if (err) ThrowErrno(env, op, err, "reuse: map '" + name + "'");
  }
}

// Applies load() options: .rodata and map reuse. Throws on the first problem.
static void ApplyLoadOptions(Napi::Env env, ObjState& st, Napi::Object opts) {
  Napi::Value ro = opts.Get("rodata");
  if (!ro.IsUndefined()) {
    if (!ro.IsTypedArray() || ro.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      ThrowInvalid(env, "load", "rodata must be a Buffer");
    auto a = ro.As<Napi::Uint8Array>();
    ApplyRodata(env, "load", st.obj, {a.Data(), a.ByteLength()});
  }
  Napi::Value reuse = opts.Get("reuse");
  if (!reuse.IsUndefined()) ApplyReuse(env, st, reuse);
}

// bpf_object__load with every signal blocked on the calling thread. The verifier gives up
// with EAGAIN when a signal is pending, and a long verification under a sampling profiler
// (SIGPROF every ms) or a busy signal source always has one. Blocked signals do not count as
// pending for it: they are delivered right after (SIGKILL and SIGSTOP cannot be blocked, and
// need not be).
static int LoadBlockingSignals(bpf_object* obj) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int err = bpf_object__load(obj);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return err;
}

// The error of a failed load: which program, and the verifier's verdict, when libbpf said.
static Napi::Error LoadError(Napi::Env env, const char* op, int err, const std::vector<std::string>& lines) {
  std::string prog, verdict;
  DescribeLoadFailure(lines, &prog, &verdict);
  std::string what = "bpf_object__load";
  if (!prog.empty()) {
    what = "program '" + prog + "' failed to load";
    if (!verdict.empty()) what += " (verifier: " + verdict + "; full log in err.log and the logger)";
  }
  Napi::Error e = ErrnoError(env, op, err, what);
  if (!prog.empty()) e.Value().Set("program", prog);
  return e;
}

Napi::Value Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjState& st = OpenObj(info, 0, "load");
  ApplyLoadOptions(env, st, ArgOptions(info, 1, "load"));
  int err = LoadBlockingSignals(st.obj);
  if (err) throw LoadError(env, "load", err, WarnLinesOfCall());
  return env.Undefined();
}

// loadAsync(obj, opts): load() on a worker thread. Verifying a sensor takes hundreds of ms
// (seconds on a loaded machine); a reload must not stop the event loop meanwhile (ring drains,
// the API, check schedules). The object must not be used until the promise settles.
class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, std::shared_ptr<ObjState> obj)
      : Napi::AsyncWorker(env, "patrol.loadAsync"), deferred_(Napi::Promise::Deferred::New(env)), obj_(std::move(obj)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    CaptureWarnings c(&lines_);
    err_ = obj_->obj ? LoadBlockingSignals(obj_->obj) : -EBADF;
  }
  void OnOK() override {
    if (err_) deferred_.Reject(LoadError(Env(), "loadAsync", err_, lines_).Value());
    else deferred_.Resolve(Env().Undefined());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<ObjState> obj_;
  std::vector<std::string> lines_;
  int err_ = 0;
};

Napi::Value LoadAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjHandle* h = ArgObj(info, 0, "loadAsync");
  ObjState& st = OpenObj(info, 0, "loadAsync");
  ApplyLoadOptions(env, st, ArgOptions(info, 1, "loadAsync"));
  auto* w = new LoadWorker(env, h->obj);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// inspect(obj): what an opened (or loaded) object holds, as plain facts: its programs (name,
// ELF section, autoload), its maps (definition and BTF type ids) and its BTF, raw. Layouts,
// tracepoint names and compatibility are worked out in TypeScript (src/kernel/btf.ts).
Napi::Value Inspect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjState& st = OpenObj(info, 0, "inspect");
  auto num = [&](double v) { return Napi::Number::New(env, v); };
  Napi::Array progs = Napi::Array::New(env);
  uint32_t n = 0;
  bpf_program* p;
  bpf_object__for_each_program(p, st.obj) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", bpf_program__name(p));
    o.Set("section", bpf_program__section_name(p));
    o.Set("autoload", Napi::Boolean::New(env, bpf_program__autoload(p)));
    progs.Set(n++, o);
  }
  Napi::Array maps = Napi::Array::New(env);
  n = 0;
  bpf_map* m;
  bpf_object__for_each_map(m, st.obj) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", bpf_map__name(m));
    o.Set("type", num(bpf_map__type(m)));
    o.Set("keySize", num(bpf_map__key_size(m)));
    o.Set("valueSize", num(bpf_map__value_size(m)));
    o.Set("maxEntries", num(bpf_map__max_entries(m)));
    o.Set("flags", num(bpf_map__map_flags(m)));
    o.Set("btfKeyTypeId", num(bpf_map__btf_key_type_id(m)));
    o.Set("btfValueTypeId", num(bpf_map__btf_value_type_id(m)));
    o.Set("internal", Napi::Boolean::New(env, bpf_map__is_internal(m)));
    o.Set("loaded", Napi::Boolean::New(env, bpf_map__fd(m) >= 0));
    maps.Set(n++, o);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("programs", progs);
  out.Set("maps", maps);
  const btf* b = bpf_object__btf(st.obj);
  uint32_t size = 0;
  const void* raw = b ? btf__get_raw_data(b, &size) : nullptr;
  out.Set("btf", raw ? Napi::Value(Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(raw), size)) : env.Null());
  return out;
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

static uint64_t MonoNs();

// detachAll(links): destroys the links on one thread each, started at once from the calling
// thread, and resolves when all are gone with {unhookedMs, doneMs}: when the last destroy began
// and when the last ended, from the call. A link's program stops being called as its destroy
// begins (the kernel unhooks it first); a classic (perf event) tracepoint link then waits out
// an RCU grace period before the call returns (perf_event_detach_bpf_prog), 15-90 ms each
// here: one after another, seven took 130-300 ms; side by side they share the grace period.
struct DetachJob {
  uint64_t issued = 0;
  std::vector<bpf_link*> links;
  std::vector<pthread_t> threads;
  std::vector<uint64_t> started;
  std::vector<int> errs;
};

struct DetachArg {
  DetachJob* job;
  size_t i;
};

static void* DetachOne(void* p) {
  std::unique_ptr<DetachArg> a(static_cast<DetachArg*>(p));
  a->job->started[a->i] = MonoNs();
  a->job->errs[a->i] = bpf_link__destroy(a->job->links[a->i]);
  return nullptr;
}

// One detach thread. SCHED_FIFO when allowed: on a busy machine a new normal thread waits its
// turn behind every runnable task (tens of ms), and until it runs the old program stays hooked.
// It runs for a syscall, most of it asleep in the grace period. Falls back to normal scheduling.
static bool StartDetachThread(pthread_t* t, DetachArg* a) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  sched_param sp{};
  sp.sched_priority = 1;
  bool ok = pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED) == 0 &&
            pthread_attr_setschedpolicy(&attr, SCHED_FIFO) == 0 && pthread_attr_setschedparam(&attr, &sp) == 0 &&
            pthread_create(t, &attr, DetachOne, a) == 0;
  pthread_attr_destroy(&attr);
  return ok || pthread_create(t, nullptr, DetachOne, a) == 0;
}

class DetachWorker : public Napi::AsyncWorker {
 public:
  DetachWorker(Napi::Env env, std::unique_ptr<DetachJob> job)
      : Napi::AsyncWorker(env, "patrol.detachAll"), deferred_(Napi::Promise::Deferred::New(env)), job_(std::move(job)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    for (pthread_t t : job_->threads) pthread_join(t, nullptr);
    done_ = MonoNs();
  }
  void OnOK() override {
    int err = 0;
    for (int e : job_->errs)
      if (e && !err) err = e;
    // The links are gone either way; a failing close (of an fd) is reported, not retried.
    if (err) {
      deferred_.Reject(ErrnoError(Env(), "detachAll", err, "bpf_link__destroy").Value());
      return;
    }
    uint64_t last = job_->issued;
    for (uint64_t t : job_->started) last = t > last ? t : last;
    Napi::Object r = Napi::Object::New(Env());
    r.Set("unhookedMs", Napi::Number::New(Env(), static_cast<double>(last - job_->issued) / 1e6));
    r.Set("doneMs", Napi::Number::New(Env(), static_cast<double>(done_ - job_->issued) / 1e6));
    deferred_.Resolve(r);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::unique_ptr<DetachJob> job_;
  uint64_t done_ = 0;
};

Napi::Value DetachAll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) ThrowInvalid(env, "detachAll", "expected an array of BpfLink handles");
  Napi::Array a = info[0].As<Napi::Array>();
  auto job = std::make_unique<DetachJob>();
  job->issued = MonoNs();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    if (!v.IsExternal() || !v.As<Napi::External<LinkHandle>>().CheckTypeTag(&kLinkTag))
      ThrowInvalid(env, "detachAll", "expected an array of BpfLink handles");
  }
  for (uint32_t i = 0; i < a.Length(); i++) {
    LinkHandle* h = a.Get(i).As<Napi::External<LinkHandle>>().Data();
    if (!h->rec->link) continue;  // detached already, or by close()
    job->links.push_back(h->rec->link);
    h->rec->link = nullptr;  // the threads own it now: close() will not touch it
    auto& ls = h->obj->links;
    for (auto it = ls.begin(); it != ls.end(); ++it)
      if (*it == h->rec) {
        ls.erase(it);
        break;
      }
  }
  job->started.assign(job->links.size(), 0);
  job->errs.assign(job->links.size(), 0);
  DetachJob* j = job.get();
  // A SCHED_FIFO thread preempts its creator at once; a normal creator then waits its turn
  // behind every runnable task before it can start the next thread. So the calling thread is
  // SCHED_FIFO too while it starts them (same priority: they queue behind it), then goes back.
  int policy = SCHED_OTHER;
  sched_param saved{};
  pthread_getschedparam(pthread_self(), &policy, &saved);
  bool raised = false;
  if (policy == SCHED_OTHER) {
    sched_param sp{};
    sp.sched_priority = 1;
    raised = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0;
  }
  for (size_t i = 0; i < j->links.size(); i++) {
    auto* arg = new DetachArg{j, i};
    pthread_t t;
    if (StartDetachThread(&t, arg)) {
      j->threads.push_back(t);
    } else {
      DetachOne(arg);  // no thread to be had: here, then
    }
  }
  if (raised) pthread_setschedparam(pthread_self(), policy, &saved);
  auto* w = new DetachWorker(env, std::move(job));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
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

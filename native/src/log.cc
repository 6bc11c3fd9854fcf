// libbpf log lines -> JS logger.
//
// libbpf's print callback is process-wide and may run on any thread. We never call JS from
// inside it: lines are appended to a mutex-protected queue and forwarded by CallWithLog once
// the native call returns (open/load/attach print on the JS thread, so their lines reach the
// logger before the call returns or its error is thrown). Lines printed on other threads
// (libbpf 1.1 prints nothing from ring_buffer__consume) wait for the next native call.
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "common.h"

namespace patrol {
namespace {

struct Line {
  libbpf_print_level level;
  std::string text;
};

constexpr size_t kMaxPendingBytes = 32u << 20;  // a verifier log can be megabytes

std::mutex mu;
std::vector<Line> pending;  // guarded by mu
size_t pendingBytes = 0;    // guarded by mu
size_t droppedLines = 0;    // guarded by mu
bool haveLogger = false;    // guarded by mu

// JS-thread-only state. Heap-allocated and never freed: a static destructor running after
// process.exit() would delete the reference through a dead napi_env.
Napi::FunctionReference& logger = *new Napi::FunctionReference();
napi_env loggerEnv = nullptr;
thread_local size_t callMark = 0;  // pending.size() when the current call started
// A worker thread's load (loadAsync) collects its warnings here, whatever the JS thread's calls
// do with the shared queue meanwhile.
thread_local std::vector<std::string>* capture = nullptr;

void Append(libbpf_print_level level, const char* p, size_t n) {
  if (pendingBytes + n > kMaxPendingBytes) {
    droppedLines++;
    return;
  }
  pendingBytes += n;
  pending.push_back({level, std::string(p, n)});
}

int Print(libbpf_print_level level, const char* fmt, va_list ap) {
  char small[512];
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  std::string big;
  const char* text = small;
  if (n >= static_cast<int>(sizeof small)) {
    big.resize(n + 1);
    vsnprintf(big.data(), n + 1, fmt, ap2);
    text = big.c_str();
  }
  va_end(ap2);
  if (n <= 0) return 0;

  if (capture && level == LIBBPF_WARN) {
    const char* end = text + n;
    for (const char* s = text; s < end;) {
      const char* nl = static_cast<const char*>(memchr(s, '\n', end - s));
      const char* e = nl ? nl : end;
      if (e > s) capture->emplace_back(s, e - s);
      s = e + 1;
    }
  }
  std::lock_guard<std::mutex> lock(mu);
  if (!haveLogger) {
    // libbpf's own default: warnings and info to stderr, debug dropped. Warnings are
    // still queued so a failing call can attach them to its error.
    if (level != LIBBPF_DEBUG) fputs(text, stderr);
    if (level != LIBBPF_WARN) return 0;
  }
  // One message may hold many lines (a verifier log is a single print); split them so
  // the logger always receives single lines.
  const char* end = text + n;
  for (const char* s = text; s < end;) {
    const char* nl = static_cast<const char*>(memchr(s, '\n', end - s));
    const char* e = nl ? nl : end;
    if (e > s) Append(level, s, e - s);
    s = e + 1;
  }
  return 0;
}

const char* LevelName(libbpf_print_level l) {
  return l == LIBBPF_WARN ? "warn" : l == LIBBPF_INFO ? "info" : "debug";
}

void Flush(Napi::Env env) {
  std::vector<Line> lines;
  size_t dropped;
  {
    std::lock_guard<std::mutex> lock(mu);
    lines.swap(pending);
    pendingBytes = 0;
    dropped = droppedLines;
    droppedLines = 0;
  }
  if (logger.IsEmpty() || static_cast<napi_env>(env) != loggerEnv) return;
  if (dropped)
    lines.push_back({LIBBPF_WARN, "patrol: " + std::to_string(dropped) + " libbpf log lines dropped"});
  // A throwing logger must not turn a successful BPF operation into a failure.
  for (const Line& l : lines) {
    try {
      logger.Call({Napi::String::New(env, LevelName(l.level)), Napi::String::New(env, l.text)});
    } catch (const Napi::Error&) {
    }
  }
}

}  // namespace

void InitLog(Napi::Env env) {
  libbpf_set_print(Print);
  // Drop the logger when the environment that set it (e.g. a worker) goes away.
  napi_env self = env;
  env.AddCleanupHook([self] {
    if (loggerEnv != self) return;
    logger.Reset();
    loggerEnv = nullptr;
    std::lock_guard<std::mutex> lock(mu);
    haveLogger = false;
  });
}

CaptureWarnings::CaptureWarnings(std::vector<std::string>* into) : prev_(capture) { capture = into; }
CaptureWarnings::~CaptureWarnings() { capture = prev_; }

std::vector<std::string> WarnLinesOfCall() {
  std::vector<std::string> out;
  std::lock_guard<std::mutex> lock(mu);
  for (size_t i = callMark; i < pending.size(); i++)
    if (pending[i].level == LIBBPF_WARN) out.push_back(pending[i].text);
  return out;
}

Napi::Value CallWithLog(const Napi::CallbackInfo& info,
                        Napi::Value (*fn)(const Napi::CallbackInfo&)) {
  size_t saved = callMark;  // the logger may call back into the addon
  {
    std::lock_guard<std::mutex> lock(mu);
    callMark = pending.size();
  }
  try {
    Napi::Value v = fn(info);
    callMark = saved;
    Flush(info.Env());
    return v;
  } catch (...) {
    callMark = saved;
    Flush(info.Env());
    throw;
  }
}

// setLogger(fn | null): process-wide, like libbpf_set_print itself.
Napi::Value SetLogger(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value v = info[0];
  if (!v.IsFunction() && !v.IsNull() && !v.IsUndefined())
    ThrowInvalid(env, "setLogger", "logger must be a function or null");
  if (v.IsFunction()) {
    logger = Napi::Persistent(v.As<Napi::Function>());
    loggerEnv = env;
  } else {
    logger.Reset();
    loggerEnv = nullptr;
  }
  std::lock_guard<std::mutex> lock(mu);
  haveLogger = !logger.IsEmpty();
  return env.Undefined();
}

}  // namespace patrol

// Typed errors and argument checking. Every failure reaches JS as an Error whose `code` is
// the errno name, so the TypeScript side can branch on EPERM/ENOENT/... without parsing text.
#include <string.h>

#include <cerrno>
#include <cmath>

#include "common.h"

namespace patrol {

// Distinct random tags: a link handle passed where an object is expected is rejected.
const napi_type_tag kObjTag = {0x7a1c5d0e93b24f61ULL, 0xa3d8e1f2c4b50697ULL};
const napi_type_tag kLinkTag = {0x2f6b8c1d4e7a9305ULL, 0xc1e2d3f4a5b60718ULL};
const napi_type_tag kRingTag = {0x5d3e7f1a2b4c6d80ULL, 0x91a2b3c4d5e6f708ULL};

static std::string ErrnoName(int err) {
  if (const char* n = strerrorname_np(err)) return n;
  if (err >= __LIBBPF_ERRNO__START && err < __LIBBPF_ERRNO__END) return "ELIBBPF";
  return "E" + std::to_string(err);
}

Napi::Error ErrnoError(Napi::Env env, const char* op, int err, const std::string& what) {
  if (err < 0) err = -err;
  if (err == 0) err = EIO;  // a failure without errno must still look like one
  char text[256] = "";
  // libbpf_strerror also knows libbpf's own error numbers (4000+).
  if (libbpf_strerror(err, text, sizeof text) < 0 && text[0] == '\0')
    snprintf(text, sizeof text, "error %d", err);
  std::string msg = std::string(op) + ": ";
  if (!what.empty()) msg += what + ": ";
  msg += text;
  Napi::Error e = Napi::Error::New(env, msg);
  e.Value().Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Value().Set("errno", Napi::Number::New(env, err));
  e.Value().Set("syscall", op);
  std::vector<std::string> log = WarnLinesOfCall();
  if (!log.empty()) {
    Napi::Array a = Napi::Array::New(env, log.size());
    for (size_t i = 0; i < log.size(); i++) a.Set(i, log[i]);
    e.Value().Set("log", a);
  }
  return e;
}

void ThrowErrno(Napi::Env env, const char* op, int err, const std::string& what) {
  throw ErrnoError(env, op, err, what);
}

void ThrowInvalid(Napi::Env env, const char* op, const std::string& what) {
  Napi::TypeError e = Napi::TypeError::New(env, std::string(op) + ": " + what);
  e.Value().Set("code", "EINVAL");
  e.Value().Set("errno", Napi::Number::New(env, EINVAL));
  e.Value().Set("syscall", op);
  throw e;
}

Bytes ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what) {
  Napi::Value v = info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    ThrowInvalid(info.Env(), op, std::string(what) + " must be a Buffer or Uint8Array");
  auto a = v.As<Napi::Uint8Array>();
  return {a.Data(), a.ByteLength()};
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* op, const char* what) {
  if (!info[i].IsString()) ThrowInvalid(info.Env(), op, std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Object ArgOptions(const Napi::CallbackInfo& info, size_t i, const char* op) {
  Napi::Value v = info[i];
  if (v.IsUndefined() || v.IsNull()) return Napi::Object::New(info.Env());
  if (!v.IsObject()) ThrowInvalid(info.Env(), op, "options must be an object");
  return v.As<Napi::Object>();
}

int64_t OptInt(Napi::Object o, const char* key, int64_t def, int64_t lo, int64_t hi,
               const char* op, const std::string& label) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return def;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!std::isfinite(d) || d != std::floor(d) || d < lo || d > hi)
    ThrowInvalid(o.Env(), op,
                 (label.empty() ? std::string(key) : label) + " must be an integer in [" + std::to_string(lo) + ", " +
                     std::to_string(hi) + "]");
  return static_cast<int64_t>(d);
}

ObjHandle* ArgObj(const Napi::CallbackInfo& info, size_t i, const char* op) {
  Napi::Value v = info[i];
  if (!v.IsExternal() || !v.As<Napi::External<ObjHandle>>().CheckTypeTag(&kObjTag))
    ThrowInvalid(info.Env(), op, "expected a BpfObject handle");
  return v.As<Napi::External<ObjHandle>>().Data();
}

ObjState& OpenObj(const Napi::CallbackInfo& info, size_t i, const char* op) {
  ObjState& st = *ArgObj(info, i, op)->obj;
  if (!st.obj) ThrowErrno(info.Env(), op, EBADF, "object is closed");
  return st;
}

bpf_program* FindProg(Napi::Env env, const char* op, ObjState& st, const std::string& name) {
  bpf_program* p = bpf_object__find_program_by_name(st.obj, name.c_str());
  if (!p) ThrowErrno(env, op, ENOENT, "no program '" + name + "'");
  return p;
}

bpf_map* FindMap(Napi::Env env, const char* op, ObjState& st, const std::string& name) {
  bpf_map* m = bpf_object__find_map_by_name(st.obj, name.c_str());
  if (!m) ThrowErrno(env, op, ENOENT, "no map '" + name + "'");
  return m;
}

}  // namespace patrol

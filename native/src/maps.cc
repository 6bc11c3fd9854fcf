// Map access by name with raw byte keys and values; decoding is the TypeScript side's job.
#include <cerrno>

#include "common.h"

namespace patrol {

static bool IsPerCpu(bpf_map_type t) {
  return t == BPF_MAP_TYPE_PERCPU_ARRAY || t == BPF_MAP_TYPE_PERCPU_HASH ||
         t == BPF_MAP_TYPE_LRU_PERCPU_HASH || t == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

// Bytes of one lookup: per-CPU maps return one 8-byte aligned slot per possible CPU.
static size_t ValueBytes(Napi::Env env, const char* op, const bpf_map* m) {
  size_t v = bpf_map__value_size(m);
  if (!IsPerCpu(bpf_map__type(m))) return v;
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu < 0) ThrowErrno(env, op, ncpu, "libbpf_num_possible_cpus");
  return ((v + 7) & ~size_t{7}) * ncpu;
}

// The loaded map named by info[1], with info[0] the object.
static bpf_map* LoadedMap(const Napi::CallbackInfo& info, const char* op) {
  ObjState& st = OpenObj(info, 0, op);
  std::string name = ArgString(info, 1, op, "map name");
  bpf_map* m = FindMap(info.Env(), op, st, name);
  if (bpf_map__fd(m) < 0) ThrowErrno(info.Env(), op, EINVAL, "map '" + name + "' is not loaded");
  return m;
}

static void CheckKey(Napi::Env env, const char* op, const bpf_map* m, Bytes key) {
  if (key.len != bpf_map__key_size(m))
    ThrowErrno(env, op, EINVAL,
               "key must be " + std::to_string(bpf_map__key_size(m)) + " bytes for map '" +
                   bpf_map__name(m) + "', got " + std::to_string(key.len));
}

Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_map* m = LoadedMap(info, "mapLookup");
  Bytes key = ArgBytes(info, 2, "mapLookup", "key");
  CheckKey(env, "mapLookup", m, key);
  size_t vs = ValueBytes(env, "mapLookup", m);
  // Look up straight into the Buffer handed back: no intermediate copy.
  auto out = Napi::Buffer<uint8_t>::New(env, vs);
  int err = bpf_map__lookup_elem(m, key.data, key.len, out.Data(), vs, 0);
  if (err == -ENOENT) return env.Null();
  if (err) ThrowErrno(env, "mapLookup", err, std::string("map '") + bpf_map__name(m) + "'");
  return out;
}

Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_map* m = LoadedMap(info, "mapUpdate");
  Bytes key = ArgBytes(info, 2, "mapUpdate", "key");
  Bytes val = ArgBytes(info, 3, "mapUpdate", "value");
  int64_t flags = 0;
  if (!info[4].IsUndefined()) {
    if (!info[4].IsNumber()) ThrowInvalid(env, "mapUpdate", "flags must be a number");
    flags = info[4].As<Napi::Number>().Int64Value();
  }
  CheckKey(env, "mapUpdate", m, key);
  size_t vs = ValueBytes(env, "mapUpdate", m);
  if (val.len != vs)
    ThrowErrno(env, "mapUpdate", EINVAL,
               "value must be " + std::to_string(vs) + " bytes for map '" + bpf_map__name(m) +
                   "', got " + std::to_string(val.len));
  int err = bpf_map__update_elem(m, key.data, key.len, val.data, val.len, flags);
  if (err) ThrowErrno(env, "mapUpdate", err, std::string("map '") + bpf_map__name(m) + "'");
  return env.Undefined();
}

Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_map* m = LoadedMap(info, "mapDelete");
  Bytes key = ArgBytes(info, 2, "mapDelete", "key");
  CheckKey(env, "mapDelete", m, key);
  int err = bpf_map__delete_elem(m, key.data, key.len, 0);
  if (err) ThrowErrno(env, "mapDelete", err, std::string("map '") + bpf_map__name(m) + "'");
  return env.Undefined();
}

// Walks keys with BPF_MAP_GET_NEXT_KEY. Entries deleted during the walk are skipped; a hash
// walk can restart when its cursor key vanishes, so maxEntries (default: the map's
// max_entries) bounds the result.
Napi::Value MapEntries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "mapEntries";
  bpf_map* m = LoadedMap(info, op);
  int64_t limit = bpf_map__max_entries(m);
  if (!info[2].IsUndefined()) {
    if (!info[2].IsNumber()) ThrowInvalid(env, op, "maxEntries must be a number");
    limit = info[2].As<Napi::Number>().Int64Value();
  }
  size_t ks = bpf_map__key_size(m), vs = ValueBytes(env, op, m);
  std::vector<uint8_t> cur(ks), next(ks);
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  int err = bpf_map__get_next_key(m, nullptr, next.data(), ks);
  while (err == 0 && n < limit) {
    auto val = Napi::Buffer<uint8_t>::New(env, vs);
    int lerr = bpf_map__lookup_elem(m, next.data(), ks, val.Data(), vs, 0);
    if (lerr && lerr != -ENOENT) ThrowErrno(env, op, lerr, std::string("map '") + bpf_map__name(m) + "'");
    if (!lerr) {
      Napi::Array pair = Napi::Array::New(env, 2);
      pair.Set(0u, Napi::Buffer<uint8_t>::Copy(env, next.data(), ks));
      pair.Set(1u, val);
      out.Set(n++, pair);
    }
    cur.swap(next);
    err = bpf_map__get_next_key(m, cur.data(), next.data(), ks);
  }
  if (err && err != -ENOENT) ThrowErrno(env, op, err, std::string("map '") + bpf_map__name(m) + "'");
  return out;
}

}  // namespace patrol

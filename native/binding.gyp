{
  # Build: scripts/build.sh (node-gyp rebuild --directory native --nodedir=<the runtime: .runtime/node>)
  # Needs libbpf-dev (>= 1.0), libelf-dev, zlib1g-dev.
  "targets": [
    {
      "target_name": "patrol_native",
      "sources": [
        "src/addon.cc",
        "src/errors.cc",
        "src/log.cc",
        "src/object.cc",
        "src/maps.cc",
        "src/ring.cc",
        "src/ring_api.cc",
        "src/ring_pull.cc",
        "src/fd_watch.cc"
      ],
      # C++ exceptions carry the typed errors; std::exception is converted too.
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except_all"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED",
                  # a terminating worker cannot take exceptions: drop them, do not abort
                  "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags_cc": ["-std=gnu++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2", "-pthread"],
      "ldflags": ["-pthread"],
      "libraries": ["-lbpf", "-lelf", "-lz"]
    }
  ]
}

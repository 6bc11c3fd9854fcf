#!/usr/bin/env bash
# Build everything: BPF objects (clang -target bpf, CO-RE), TypeScript decoders generated from
# the objects' BTF, the N-API addon (node-gyp against the runtime's headers), the TypeScript, its
# bundle (dist/pack, what bin/patrol runs), and the dashboard's bundle (web/dist).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/runtime.sh
patrol_runtime_env
log() { printf '\033[1m[build]\033[0m %s\n' "$*"; }

log "bpf objects"
make -s -C bpf
log "wire decoders from BTF"
node scripts/gen-wire.mjs --strict
node scripts/gen-wire.mjs --strict bpf/.output/state.bpf.o src/wire/generated/state.ts \
  --structs pt_hdr,st_transition,st_throttle,st_task,st_task_snap,st_counters,st_budget \
  --enums st_op,st_state,st_reason
log "native addon"
addon=native/build/Release/patrol_native.node
if [ ! -f $addon ] || [ -n "$(find native/src native/binding.gyp -newer $addon 2>/dev/null)" ] ||
   [ "$(cat native/build/.patrol-node 2>/dev/null)" != "$(node -p process.versions.node)" ]; then
  npx --no-install node-gyp rebuild --directory native --nodedir="$PATROL_NODEDIR" --loglevel=warn
  node -p process.versions.node > native/build/.patrol-node
fi
log "typescript"
npx --no-install tsc -p tsconfig.json
log "bundle (dist → dist/pack, esbuild: what bin/patrol runs)"
node scripts/bundle.mjs
log "dashboard (web/ → web/dist, esbuild)"
npx --no-install tsc -p web/tsconfig.json
node web/build.mjs
log "done"

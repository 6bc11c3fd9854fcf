#!/usr/bin/env bash
# Idempotent setup for a fresh Debian/Ubuntu machine: system packages, kernel filesystems,
# npm dependencies, then the build. Safe to run again: each step skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: run as root (or install sudo)" >&2; exit 1; }
  SUDO="sudo"
fi

# 1. System packages. PATROL_EXTRA_APT adds more (CI adds the benchmark peers).
APT_PKGS=(clang llvm libbpf-dev bpftool make g++ python3 libelf-dev zlib1g-dev pkg-config ca-certificates ${PATROL_EXTRA_APT:-})
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing apt packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "apt packages present"
fi

# 2. The Node runtime: Node 24 from the npm registry into .runtime/node (stock distros ship 18;
#    nodejs.org is not reachable). scripts/runtime.sh says how and why.
source scripts/runtime.sh
patrol_runtime_provision
patrol_runtime_env
node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<22||(a===22&&b<12)) { console.error("setup: Node >= 22.12 required, found "+process.versions.node); process.exit(1) }'

# 3. Kernel filesystems: bpffs for pins and tracefs for classic tracepoints (failed-exec
#    reporting, peers such as execsnoop). The BTF tracepoints patrol uses need neither.
if [ "$(id -u)" -eq 0 ]; then
  mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || log "warning: could not mount bpffs"
  mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || log "warning: could not mount tracefs"
fi

# 4. npm dependencies, exactly as locked. Skipped when the lockfile has not changed.
stamp=node_modules/.patrol-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp" || [ "$(cat node_modules/.patrol-node 2>/dev/null)" != "$(node -p process.versions.node)" ]; then
  log "npm ci (builds better-sqlite3 and re2 from source: no prebuilt downloads are reachable)"
  # Native modules compile against the runtime's headers (npm_config_nodedir, set above).
  RE2_DOWNLOAD_FORCE_BUILD=1 npm_config_build_from_source=true npm_config_nodedir="$PATROL_NODEDIR" \
    npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
  node -p process.versions.node > node_modules/.patrol-node  # native modules match this runtime
else
  log "node_modules up to date"
fi

# 5. Build: BPF objects, wire decoders from their BTF, the addon, the TypeScript.
bash scripts/build.sh

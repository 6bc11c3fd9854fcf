# Sourced by setup.sh, build.sh and test.sh: the Node runtime patrol runs on.
#
# patrol targets Node 24 LTS (engines: >=22.12). Stock Debian 12 / Ubuntu 24.04 ship Node 18, and
# nodejs.org is not reachable from CI, so setup.sh provisions a pinned Node 24 from the npm
# registry's `node-linux-<arch>` package (a plain Node build: bin/node plus include/node, the
# headers our native modules compile against) into .runtime/node, and a pinned npm beside it.
# It needs no node to do so: through a working npm if there is one, else straight from the
# registry with curl, wget or python3 (.ci/setup-without-node checks this path in CI).
# bin/patrol, the build and the tests then run on it. PATROL_SYSTEM_NODE=1 uses the system's
# node instead, when it is >= 22 and has its headers in /usr/include/node.
#
# After sourcing: patrol_runtime_provision (idempotent) and patrol_runtime_env (PATH, and
# PATROL_NODEDIR: the headers native modules compile against).

PATROL_NODE_VERSION=24.22.3
PATROL_NPM_VERSION=11.21.3
# Registry integrity of the pinned tarballs: a tarball that does not match is refused.
declare -A PATROL_NODE_INTEGRITY=(
  [x64]='sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA=='
  [arm64]='sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw=='
)
PATROL_NPM_INTEGRITY='sha512-5Cf+jE+XctbhH/zjOOqXC+ity7eec/Tkk4Ql38tf6w+1htp2wYPHmE4c1R1Es3DY227Ac14+SLrlYJwkBicbTg=='

PATROL_ROOT="${PATROL_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
PATROL_RUNTIME="$PATROL_ROOT/.runtime/node"

_rt_log() { printf '\033[1m[runtime]\033[0m %s\n' "$*"; }
_rt_die() { printf 'runtime: %s\n' "$*" >&2; exit 1; }

_rt_arch() {
  case "$(uname -m)" in
    x86_64) echo x64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) _rt_die "no Node build for $(uname -m) in the npm registry; install Node >= 22 with headers and set PATROL_SYSTEM_NODE=1" ;;
  esac
}

# 0 when the system node is usable: PATROL_SYSTEM_NODE=1, node >= 22.12, headers present.
_rt_system_ok() {
  [ "${PATROL_SYSTEM_NODE:-0}" = 1 ] || return 1
  command -v node >/dev/null || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=12)?0:1)' || return 1
  [ -f /usr/include/node/node_api.h ] || return 1
}

_rt_installed_version() {
  [ -x "$PATROL_RUNTIME/bin/node" ] && "$PATROL_RUNTIME/bin/node" -p process.versions.node 2>/dev/null
}

# 0 when an npm that runs is on PATH (an npm whose node is missing or broken does not count).
_rt_have_npm() {
  command -v npm >/dev/null && npm --version >/dev/null 2>&1
}

# sha512 integrity (npm's "sha512-<base64>") of a file, with what a stock system has.
_rt_integrity() {
  if command -v openssl >/dev/null && command -v base64 >/dev/null; then
    printf 'sha512-%s' "$(openssl dgst -sha512 -binary "$1" | base64 -w0)"
  else
    python3 -c 'import base64, hashlib, sys; print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode(), end="")' "$1"
  fi
}

# Downloads URL to FILE with curl, wget or python3, whichever there is.
_rt_download() {
  if command -v curl >/dev/null; then
    curl -fsSL --retry 3 -o "$2" "$1"
  elif command -v wget >/dev/null; then
    wget -q -O "$2" "$1"
  else
    python3 -c 'import shutil, sys, urllib.request; shutil.copyfileobj(urllib.request.urlopen(sys.argv[1], timeout=120), open(sys.argv[2], "wb"))' "$1" "$2"
  fi
}

# Fetches one pinned tarball (spec name@version) and unpacks it into $3. With an npm that runs,
# through it (it honours the machine's npm config: registry, proxy, CA); without one (no node at
# all, or the distro's npm on a node too old to run it) straight from the registry over HTTPS.
# Either way the tarball's sha512 must equal our pin.
_rt_fetch() {
  local spec="$1" want="$2" dest="$3" tmp json got file
  tmp="$(mktemp -d)"
  if _rt_have_npm; then
    json="$(cd "$tmp" && npm pack "$spec" --json --silent 2>"$tmp/err")" || { cat "$tmp/err" >&2; rm -rf "$tmp"; _rt_die "npm pack $spec failed"; }
    file="$(printf '%s' "$json" | grep -o '"filename": *"[^"]*"' | head -1 | sed 's/.*"\([^"]*\)"$/\1/')"
  else
    local name="${spec%@*}" version="${spec##*@}" registry="${npm_config_registry:-https://registry.npmjs.org/}"
    file="$name-$version.tgz"
    _rt_log "no working npm: downloading $file from ${registry%/}"
    _rt_download "${registry%/}/$name/-/$file" "$tmp/$file" || { rm -rf "$tmp"; _rt_die "downloading $spec from $registry failed"; }
  fi
  got="$(_rt_integrity "$tmp/$file")"
  if [ "$got" != "$want" ]; then rm -rf "$tmp"; _rt_die "$spec: tarball integrity $got does not match the pinned $want"; fi
  mkdir -p "$dest"
  tar -xzf "$tmp/$file" -C "$dest" --strip-components=1 || { rm -rf "$tmp"; _rt_die "unpacking $spec failed"; }
  rm -rf "$tmp"
}

patrol_runtime_provision() {
  if _rt_system_ok; then
    _rt_log "system node $(node -p process.versions.node) (PATROL_SYSTEM_NODE=1)"
    return 0
  fi
  if [ "$(_rt_installed_version)" = "$PATROL_NODE_VERSION" ] && [ -x "$PATROL_RUNTIME/bin/npm" ]; then
    _rt_log "node $PATROL_NODE_VERSION in .runtime/node"
    return 0
  fi
  local arch
  arch="$(_rt_arch)"
  _rt_log "fetching Node $PATROL_NODE_VERSION ($arch) and npm $PATROL_NPM_VERSION from the npm registry"
  local stage="$PATROL_ROOT/.runtime/node.new"
  rm -rf "$stage"
  _rt_fetch "node-linux-$arch@$PATROL_NODE_VERSION" "${PATROL_NODE_INTEGRITY[$arch]}" "$stage"
  _rt_fetch "npm@$PATROL_NPM_VERSION" "$PATROL_NPM_INTEGRITY" "$stage/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$stage/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$stage/bin/npx"
  "$stage/bin/node" -e 'process.exit(0)' || _rt_die "the fetched node does not run on this machine"
  # Swap whole: an interrupted fetch never leaves a half runtime in place.
  rm -rf "$PATROL_RUNTIME"
  mv "$stage" "$PATROL_RUNTIME"
  _rt_log "node $("$PATROL_RUNTIME/bin/node" -p process.versions.node) ready in .runtime/node"
}

# PATH and the headers native modules compile against (no header download is reachable).
patrol_runtime_env() {
  if ! _rt_system_ok && [ -x "$PATROL_RUNTIME/bin/node" ]; then
    export PATH="$PATROL_RUNTIME/bin:$PATH"
    PATROL_NODEDIR="$PATROL_RUNTIME"
  else
    PATROL_NODEDIR=/usr
  fi
}

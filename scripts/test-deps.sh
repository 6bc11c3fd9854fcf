#!/usr/bin/env bash
# Test-only system packages, installed by scripts/test.sh (not by scripts/setup.sh: running
# patrol needs none of them). Idempotent: installs only what is missing. PATROL_TEST_APT adds more.
#   chromium, fonts-dejavu-core: the dashboard's browser tests (test/browser/) and their
#             screenshots, driven by playwright-core with executablePath /usr/bin/chromium
#             (never a downloaded browser)
#   prometheus-alertmanager: the real Alertmanager of test/integ/alertmanager.test.ts
#   etcd-server: the fleet tests' etcd (scripts/etcd-server.sh: installs it, stops and disables
#             the service the package starts; the tests run their own three members)
set -euo pipefail
log() { printf '\033[1m[test-deps]\033[0m %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "test-deps: run as root (or install sudo)" >&2; exit 1; }
  SUDO="sudo"
fi
TEST_APT=(chromium fonts-dejavu-core prometheus-alertmanager ${PATROL_TEST_APT:-})
missing=()
for p in "${TEST_APT[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing test-only apt packages: ${missing[*]}"
  $SUDO apt-get update -qq
  # policy-rc.d keeps the packages' own services from starting: the tests start their own
  # instances on loopback.
  restore=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    restore=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$restore" -eq 0 ] || $SUDO rm -f /usr/sbin/policy-rc.d
else
  log "test-only apt packages present"
fi
bash "$(dirname "$0")/etcd-server.sh"

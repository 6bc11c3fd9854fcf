#!/usr/bin/env bash
# Servers the tests talk to, installed for the test run only (not by scripts/setup.sh: agents in
# production need none of them). Idempotent; PATROL_TEST_APT adds more.
#   prometheus-alertmanager: the real Alertmanager of test/integ/alertmanager.test.ts
set -euo pipefail
TEST_APT=(prometheus-alertmanager ${PATROL_TEST_APT:-})
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for p in "${TEST_APT[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  printf '\033[1m[test-deps]\033[0m installing apt packages: %s\n' "${missing[*]}"
  $SUDO apt-get update -qq
  # --no-install-recommends; policy-rc.d keeps the package's own service from starting
  # (the tests start their own instance on loopback).
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d.patrol >/dev/null
  restore=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then $SUDO cp /usr/sbin/policy-rc.d.patrol /usr/sbin/policy-rc.d && $SUDO chmod +x /usr/sbin/policy-rc.d && restore=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$restore" -eq 0 ] || $SUDO rm -f /usr/sbin/policy-rc.d
  $SUDO rm -f /usr/sbin/policy-rc.d.patrol
fi

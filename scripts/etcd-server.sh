#!/usr/bin/env bash
# Test-only dependency: Debian's etcd-server (3.4.x, /usr/bin/etcd). The fleet tests and
# bench/fleet-scale.mjs start their own three members on loopback ports with temporary data
# directories, so the service the package starts is stopped and disabled. Idempotent.
# Production targets etcd 3.5+ (docs/fleet.md); 3.4 is what Debian ships for tests.
set -euo pipefail
log() { printf '\033[1m[etcd-server]\033[0m %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "etcd-server.sh: run as root (or install sudo)" >&2; exit 1; }
  SUDO="sudo"
fi

if ! dpkg-query -W -f='${Status}' etcd-server 2>/dev/null | grep -q 'install ok installed' || [ ! -x /usr/bin/etcd ]; then
  log "installing etcd-server (test-only)"
  $SUDO apt-get update -qq
  # policy-rc.d 101: the package's postinst must not start a cluster of its own on :2379
  # (where systemd is not PID 1 it would run through the init script).
  prc=/usr/sbin/policy-rc.d
  had_prc=0
  [ -e "$prc" ] && had_prc=1
  if [ "$had_prc" -eq 0 ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$prc" >/dev/null
    $SUDO chmod 755 "$prc"
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends etcd-server >/dev/null || {
    [ "$had_prc" -eq 0 ] && $SUDO rm -f "$prc"
    exit 1
  }
  [ "$had_prc" -eq 0 ] && $SUDO rm -f "$prc"
fi

# Stop and disable the packaged service, whatever runs the machine.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  $SUDO systemctl disable --now etcd >/dev/null 2>&1 || true
else
  if [ -x /etc/init.d/etcd ]; then
    $SUDO /etc/init.d/etcd stop >/dev/null 2>&1 || true
    command -v update-rc.d >/dev/null && $SUDO update-rc.d etcd disable >/dev/null 2>&1 || true
  fi
fi
log "$(/usr/bin/etcd --version 2>/dev/null | head -1)"

#!/usr/bin/env bash
# The README's test command: set up (idempotent), build, then run every test.
# BPF tests need root; with PATROL_REQUIRE_BPF=1 they fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# test-only servers: etcd for the fleet tests (three members started by the tests themselves)
bash scripts/etcd-server.sh
source scripts/runtime.sh
patrol_runtime_env
npx --no-install vitest run "$@"

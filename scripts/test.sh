#!/usr/bin/env bash
# The README's test command: set up (idempotent), build, install the test-only packages
# (scripts/test-deps.sh: Chromium for the dashboard's browser tests), then run every test.
# BPF and browser tests need root; with PATROL_REQUIRE_BPF=1 they fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# test-only packages (chromium, Alertmanager, etcd): not part of an agent's setup
bash scripts/test-deps.sh
source scripts/runtime.sh
patrol_runtime_env
npx --no-install vitest run "$@"

# One agent under a paced load, for the scripts that watch a single agent (profile-agent.sh,
# alloc-agent.sh, gc-agent.sh, agent-steady.sh). Sourced, not run. Needs HERE (this checkout) set.
#
#   agent_start NAME TREE EXTRA_FLAGS YAML  sets D (a fresh directory; the agent runs in it, so
#                                           V8's files land there) and P (the agent's pid)
#                                           EXTRA_FLAGS: Node flags added to the ones bin/patrol
#                                           starts the agent with (PATROL_AGENT_NODE_FLAGS_EXTRA)
#   agent_load RATE SECS                    forkexec at RATE exec/s for SECS s (none at 0); sets LOAD
# On exit the agent and the load are stopped, and D removed unless AGENT_KEEP_DIR=1.

agent_start() {
  local name=$1 tree=$2 flags=$3 yaml=$4
  make -s -C "$HERE/bench" >/dev/null
  D=$(mktemp -d "/tmp/patrol-$name-XXXX"); chmod 755 "$D"
  printf 'agent:\n  lock_file: %s/patrol.pid\n  pin_dir: %s/pins\nmetrics:\n  prometheus:\n    port: 0\n%b\n' "$D" "$D" "$yaml" > "$D/patrol.yaml"
  # a tree from before PATROL_AGENT_NODE_FLAGS_EXTRA (session 23) gets its defaults spelled out
  local env=PATROL_AGENT_NODE_FLAGS_EXTRA
  grep -q PATROL_AGENT_NODE_FLAGS_EXTRA "$tree/bin/patrol" || { env=PATROL_AGENT_NODE_FLAGS; flags="--max-semi-space-size=2 --expose-gc $flags"; }
  (cd "$D"; source "$tree/scripts/runtime.sh"; patrol_runtime_env
   export "$env=$flags"; exec "$tree/bin/patrol" agent --config "$D/patrol.yaml" --db "$D/patrol.db" \
     --socket "$D/patrol.sock" --checks "$tree/checks" --log-format json > "$D/agent.log" 2>&1) &
  for _ in $(seq 150); do grep -q '"patrol agent ready"' "$D/agent.log" 2>/dev/null && break; sleep 0.2; done
  P=$(pgrep -f "agent --config $D/patrol.yaml" | tail -1 || true)
  [ -n "$P" ] || { echo "the agent did not start:"; tail -3 "$D/agent.log"; exit 1; }
  LOAD=""
  trap agent_stop EXIT
}

agent_load() {
  local rate=$1 secs=$2
  if [ "$rate" != 0 ]; then (cd /tmp && exec "$HERE/bench/build/forkexec" -r "$rate" -j 1 -d "$secs" >/dev/null 2>&1) & LOAD=$!; fi
}

agent_stop() {
  kill -TERM "$P" 2>/dev/null || true
  [ -z "$LOAD" ] || kill "$LOAD" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$P" 2>/dev/null || break; sleep 0.2; done
  [ "${AGENT_KEEP_DIR:-0}" = 1 ] || rm -rf "$D"
}

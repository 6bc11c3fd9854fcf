#!/usr/bin/env bash
# A/B of the tuning experiments in this folder, against the current checkout (see
# ../README.md, "Experiments"). Builds variant trees under $AB_WORK (default
# /tmp/patrol-bench-ab) from the checkout's dist/, addon and BPF sources plus patches, then runs
# the same throughput trials (AB_TRIALS, bench/throughput.mjs BENCH_TRIALS syntax) on each, in
# alternating rounds:
#   ctl     bench-produce-bpf-loop.patch only (bench_produce via bpf_loop: the verifier checks
#           one iteration, so the wakeup helper can change without hitting the 1M-insn limit)
#   claim   + claim-wakeup.patch        (the producer that finds the consumer asleep clears the
#                                        flag: one forced wakeup per sleep, not one per record)
#   coal    + coalesce-batches.patch    (the consumer thread hands a batch over at once only when
#                                        JS has nothing queued; otherwise it keeps filling it)
#   linger  + linger-after-wakeup.patch (records brought by a wakeup start a burst: the linger
#                                        follows them, as it follows records found while awake)
#   all     claim + coal + linger
# Needs root and a built tree (bash scripts/build.sh). ~8 minutes with 2 rounds.
#
#   bash bench/experiments/ab.sh [ROUNDS]     # prints one line per trial, then a table
#   AB_VARIANTS="ctl linger" AB_BENCH=bpfcost bash bench/experiments/ab.sh 1
#                                              # or run a whole benchmark script per variant
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
ROUNDS=${1:-2}
W=${AB_WORK:-/tmp/patrol-bench-ab}
VARIANTS=(${AB_VARIANTS:-ctl claim coal linger all})
TRIALS=${AB_TRIALS:-c:default:500000,ts-pipeline:default:250000,ts-pipeline:default:500000,ts-pipeline:default:1000000,ts-pipeline:default:2000000,ts-pipeline:default:3000000,c:default:1000000}
make -s -C bench
rm -rf "$W"
mkdir -p "$W"

# variant name, then "bpf" or "native" patch lists: variant NAME "BPF_PATCHES" "NATIVE_PATCHES"
variant() {
  local v=$1 bpfp=$2 natp=$3 t="$W/tree-$1"
  mkdir -p "$t/native/build/Release" "$t/bpf"
  cp -r dist bin package.json "$t/"
  ln -s "$ROOT/node_modules" "$t/node_modules"
  cp bpf/*.c bpf/*.h bpf/Makefile "$t/bpf/"
  for p in $bpfp; do (cd "$t" && patch -s -p1 < "$ROOT/bench/experiments/$p.patch"); done
  make -s -C "$t/bpf" .output/lifecycle.bpf.o
  cp bpf/.output/state.bpf.o "$t/bpf/.output/" 2>/dev/null || true
  if [ -z "$natp" ]; then
    cp native/build/Release/patrol_native.node "$t/native/build/Release/"
  else
    cp -r native/src native/binding.gyp "$t/native/"
    ln -s "$ROOT/native/node_modules" "$t/native/node_modules"
    for p in $natp; do (cd "$t" && patch -s -p1 < "$ROOT/bench/experiments/$p.patch"); done
    (cd "$t" && npx --prefix "$ROOT" --no-install node-gyp rebuild --directory native --nodedir=/usr --loglevel=error >/dev/null)
  fi
}
for v in "${VARIANTS[@]}"; do
  case $v in
    ctl) variant ctl "bench-produce-bpf-loop" "" ;;
    claim) variant claim "bench-produce-bpf-loop claim-wakeup" "" ;;
    coal) variant coal "bench-produce-bpf-loop" "coalesce-batches" ;;
    linger) variant linger "bench-produce-bpf-loop" "linger-after-wakeup" ;;
    all) variant all "bench-produce-bpf-loop claim-wakeup" "coalesce-batches linger-after-wakeup" ;;
    *) echo "unknown variant $v" >&2; exit 2 ;;
  esac
done

if [ -n "${AB_BENCH:-}" ]; then
  for r in $(seq "$ROUNDS"); do
    for v in "${VARIANTS[@]}"; do
      echo "== $v round $r"
      BENCH_TREE="$W/tree-$v" node "bench/$AB_BENCH.mjs" | grep -v '^{"bench"'
    done
  done
  exit 0
fi

out="$W/trials.jsonl"
: > "$out"
for r in $(seq "$ROUNDS"); do
  for v in "${VARIANTS[@]}"; do
    BENCH_TREE="$W/tree-$v" BENCH_TRIALS="$TRIALS" node bench/throughput.mjs | while IFS= read -r line; do
      case "$line" in
        '{'*) printf '{"tree":"%s","round":%s,"trial":%s}\n' "$v" "$r" "$line" >> "$out" ;;
        *) echo "$v round $r: $line" ;;
      esac
    done
  done
done
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
const trees = process.argv[2].split(" ");
const keys = [...new Set(rows.map((r) => `${r.trial.consumer} ${r.trial.offered_rate}`))];
console.log("rate M rec/s / loss / producer ns per record, per round");
console.log("consumer     offered  | " + trees.map((t) => t.padEnd(24)).join(" | "));
for (const k of keys) {
  const [c, o] = k.split(" ");
  const cells = trees.map((t) => rows.filter((r) => r.tree === t && `${r.trial.consumer} ${r.trial.offered_rate}` === k)
    .map((r) => `${(r.trial.rate / 1e6).toFixed(2)}/${r.trial.loss}/${Math.round(r.trial.producer_ns_per_record)}`).join(" ").padEnd(24));
  console.log(`${c.padEnd(12)} ${(Number(o) / 1e6).toFixed(2).padStart(6)}M | ${cells.join(" | ")}`);
}' "$out" "${VARIANTS[*]}"

#!/usr/bin/env bash
# ETA benchmark (issue #6): the ETA printed with the plan against the measured time, with both
# hubsim instances capped at known per-connection rates, for a few repo shapes and worker counts.
# Goal: every first ETA within 30% of the measured time.
# Usage: bench/eta.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
quick="${1:-}"
. bench/lib.sh eta

if [ "$quick" = "--quick" ]; then scale=1; else scale=4; fi
printf "%-44s %8s %8s %7s\n" "scenario" "ETA s" "took s" "ratio"
n=0
scenario() { # name rate workers seed-args...
  local name="$1" rate="$2" workers="$3"; shift 3
  n=$((n + 1))
  "$bin/hubsim" seed --data "$work/src$n" --flavor hf --repo bench/m "$@" 2>/dev/null
  local src dst
  serve hf "$work/src$n" --conn-rate "$rate"
  serve hf "$work/dst$n" --conn-rate "$rate"
  src=$(url "$work/src$n")
  dst=$(url "$work/dst$n")
  HF_TOKEN="$token" "$bin/migrate-coord" run --source hf:bench/m --dest hf:bench/copy --parallel --chunk-size 64MiB \
    --max-workers "$workers" --source-endpoint "$src" --dest-endpoint "$dst" --report "$work/r$n.json" >/dev/null 2>&1
  python3 - "$work/r$n.json" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
eta, took = r["eta_secs"], r["duration_secs"]
print(f"{sys.argv[2]:<44} {eta:8.1f} {took:8.1f} {eta / took:7.2f}")
PY
}
scenario "1 x $((24 * scale)) MiB file, 10 MiB/s per conn" 10MiB 4 --lfs-file "big.bin=$((24 * scale))MiB"
scenario "8 x $((6 * scale)) MiB, 5 MiB/s per conn, 2 workers" 5MiB 2 --lfs-files 8 --lfs-size "$((6 * scale))MiB"
scenario "12 x $((4 * scale)) MiB + 50 small, 4 MiB/s, 1 worker" 4MiB 1 --lfs-files 12 --lfs-size "$((4 * scale))MiB" --files 50

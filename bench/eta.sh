#!/usr/bin/env bash
# ETA benchmark (issue #6): the ETA printed with the plan against the measured time, with both
# hubsim instances capped at known per-connection rates, for a few repo shapes and worker counts.
# Goal: every first ETA within 30% of the measured time. Since issue #12 also a file split across
# workers, and the 1 GiB case of bench/fixed-cost.sh with the total cap given (--rate-cap).
# Usage: bench/eta.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
quick="${1:-}"
. bench/lib.sh eta

if [ "$quick" = "--quick" ]; then scale=1; split=128; else scale=4; split=256; fi
printf "%-56s %8s %8s %7s\n" "scenario" "ETA s" "took s" "ratio"
n=0
scenario() { # name "hub flags" "run flags" seed-args...
  local name="$1" hub_flags="$2" run_flags="$3"; shift 3
  n=$((n + 1))
  "$bin/hubsim" seed --data "$work/src$n" --flavor hf --repo bench/m "$@" 2>/dev/null
  local src dst
  # shellcheck disable=SC2086
  serve hf "$work/src$n" $hub_flags
  # shellcheck disable=SC2086
  serve hf "$work/dst$n" $hub_flags
  src=$(url "$work/src$n")
  dst=$(url "$work/dst$n")
  # shellcheck disable=SC2086
  HF_TOKEN="$token" "$bin/migrate-coord" run --source hf:bench/m --dest hf:bench/copy --parallel --chunk-size 64MiB \
    $run_flags --source-endpoint "$src" --dest-endpoint "$dst" --report "$work/r$n.json" >"$work/log$n" 2>&1
  python3 - "$work/r$n.json" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
eta, took = r["eta_secs"], r["duration_secs"]
print(f"{sys.argv[2]:<56} {eta:8.1f} {took:8.1f} {eta / took:7.2f}")
PY
  kill "${pids[-1]}" "${pids[-2]}" 2>/dev/null || true
  rm -rf "$work/src$n" "$work/dst$n"
}
scenario "1 x $((24 * scale)) MiB file, 10 MiB/s per conn" "--conn-rate 10MiB" "--max-workers 4" \
  --lfs-file "big.bin=$((24 * scale))MiB"
scenario "8 x $((6 * scale)) MiB, 5 MiB/s per conn, 2 workers" "--conn-rate 5MiB" "--max-workers 2" \
  --lfs-files 8 --lfs-size "$((6 * scale))MiB"
scenario "12 x $((4 * scale)) MiB + 50 small, 4 MiB/s, 1 worker" "--conn-rate 4MiB" "--max-workers 1" \
  --lfs-files 12 --lfs-size "$((4 * scale))MiB" --files 50
# Split across workers (issue #12): pieces of 64 MiB, each over its parts' connections.
scenario "1 x $split MiB split, 4 MiB/s per conn, 4 workers" "--conn-rate 4MiB" "--max-workers 4 --split always" \
  --lfs-file "big.bin=${split}MiB"
# The fixed-cost case (bench/fixed-cost.sh): the total cap binds, and the run is told it.
scenario "1 GiB (512 + 8 x 64 MiB), 40/400 MiB/s, 8 workers, cap" "--conn-rate 40MiB --total-rate 400MiB" \
  "--max-workers 8 --streams 4 --rate-cap 400MiB" --lfs-file "model-big.safetensors=512MiB" --lfs-files 8 --lfs-size 64MiB \
  --files 100 --file-size 4KiB

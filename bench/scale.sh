#!/usr/bin/env bash
# Scale benchmarks on one machine (issue #7 item 4), between local hubsim instances (no caps):
#  1. coordinator CPU per GiB moved: a 2 GiB repo (8 x 256 MiB LFS files) HF -> HF with
#     `run --parallel --max-workers 8`; the coordinator's utime+stime sampled from /proc every
#     0.1 s until it exits, and its reaped children's (the workers') for comparison;
#  2. coordinator peak memory for a 1,000,000-file manifest (goal: under 500 MiB): `plan` of a
#     1,000,000-file HF repo (8 bytes a file) read through the paginated tree API, VmHWM sampled;
#  3. 100 local workers on a 2,000-file repo: wall time, peak total RSS of the workers alive at
#     once (sum of their VmRSS every 0.1 s), the coordinator's peak RSS.
# Usage: bench/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh scale
tick=$(getconf CLK_TCK)
start_all=$(now)

# Fields of /proc/PID/stat after the command name: utime stime cutime cstime are $12..$15 there.
cpu() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13, $14 + $15 }'; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; } # pid field
report_field() { sed -n "s/.*\"$2\": *\([^,}]*\).*/\1/p" "$1" | head -1 | tr -d '"'; }

echo "== 1. coordinator CPU per GiB moved: 8 x 256 MiB LFS files, HF -> HF, --parallel --max-workers 8, no caps"
"$bin/hubsim" seed --data "$work/big" --flavor hf --repo bench/big --lfs-files 8 --lfs-size 256MiB 2>/dev/null
serve hf "$work/big"; src=$(url "$work/big")
serve hf "$work/big-dst"; dst=$(url "$work/big-dst")
t0=$(now)
HF_TOKEN="$token" "$bin/migrate-coord" run --source hf:bench/big --dest hf:bench/big-copy --parallel --max-workers 8 \
  --source-endpoint "$src" --dest-endpoint "$dst" --report "$work/big.json" >"$work/big.log" 2>&1 &
coord=$!
own=0 kids=0
while kill -0 "$coord" 2>/dev/null; do
  read -r o k < <(cpu "$coord" || true) && [ -n "${o:-}" ] && own=$o kids=$k
  sleep 0.1
done
wait "$coord" && ok=verified || ok="FAILED (exit $?): $(tail -3 "$work/big.log")"
wall=$(secs "$t0" "$(now)")
moved=$(report_field "$work/big.json" bytes_uploaded); moved=${moved:-0}
chunks=$(report_field "$work/big.json" chunks)
awk -v o="$own" -v k="$kids" -v t="$tick" -v b="$moved" -v w="$wall" -v c="$chunks" -v ok="$ok" 'BEGIN {
  g = b / 2^30; if (g == 0) g = 1e-9
  printf "RESULT coordinator CPU per GiB moved: %.3f s/GiB (%.2f s CPU in clock ticks of %.2f s, for %.2f GiB, %s chunks, wall %s s, %.0f MiB/s); workers together %.2f s CPU (%.2f s/GiB); run %s\n",
    o / t / g, o / t, 1 / t, g, c, w, b / 2^20 / w, k / t, k / t / g, ok }'
kill "${pids[@]}" 2>/dev/null || true; pids=()
rm -rf "$work/big" "$work/big-dst"

echo "== 2. coordinator peak memory: plan of a 1,000,000-file HF repo (8 bytes a file), --parallel --max-workers 100"
t0=$(now)
"$bin/hubsim" seed --data "$work/many" --flavor hf --repo bench/many --files 1000000 --file-size 8 2>/dev/null
seeded=$(secs "$t0" "$(now)")
page=1000 # hubsim's default, the Hub's own page size; said explicitly so the figure names it
serve hf "$work/many" --tree-page-size "$page"; src=$(url "$work/many")
printf 'Authorization: Bearer %s\n' "$token" >"$work/auth" # a header file: no token on a command line
info=$(curl -s -o /dev/null -w '%{size_download}' -H @"$work/auth" "$src/api/models/bench/many/revision/main")
echo "   seeded in ${seeded} s; the repo's revision info (GET /api/models/bench/many/revision/main) is $((info / 1048576)) MiB"
t0=$(now)
HF_TOKEN="$token" "$bin/migrate-coord" plan --source hf:bench/many --dest hf:bench/many-copy --parallel --max-workers 100 \
  --source-endpoint "$src" --dest-endpoint "$src" >"$work/plan.log" 2>&1 &
coord=$!
peak=0 own=0
while kill -0 "$coord" 2>/dev/null; do
  hwm=$(status_kib "$coord" VmHWM); [ "${hwm:-0}" -gt "$peak" ] && peak=$hwm
  read -r o _ < <(cpu "$coord" || true) && [ -n "${o:-}" ] && own=$o
  sleep 0.1
done
wait "$coord" && ok=ok || ok="FAILED (exit $?): $(tail -3 "$work/plan.log")"
wall=$(secs "$t0" "$(now)")
planned=$(grep -E '^(source|plan) ' "$work/plan.log" | tr -s ' ' | paste -sd ';' - || true)
hub_hwm=$(status_kib "${pids[0]}" VmHWM)
verdict=$([ $((peak / 1024)) -lt 500 ] && echo "under the goal" || echo "OVER the goal")
echo "RESULT coordinator peak RSS planning 1,000,000 files: $((peak / 1024)) MiB (goal < 500: ${verdict}), ${wall} s wall, $(awk -v o="$own" -v t="$tick" 'BEGIN { printf "%.1f", o / t }') s CPU, tree page size ${page}, hubsim peak RSS $((${hub_hwm:-0} / 1024)) MiB; plan ${ok}: ${planned}"
kill "${pids[@]}" 2>/dev/null || true; pids=()
rm -rf "$work/many"

echo "== 3. 100 local workers on a 2,000-file repo (1,900 x 1 KiB regular, 100 x 4 KiB LFS), HF -> HF, --chunk-size 1KiB"
"$bin/hubsim" seed --data "$work/wide" --flavor hf --repo bench/wide --files 1900 --file-size 1KiB \
  --lfs-files 100 --lfs-size 4KiB 2>/dev/null
serve hf "$work/wide"; src=$(url "$work/wide")
serve hf "$work/wide-dst"; dst=$(url "$work/wide-dst")
t0=$(now)
HF_TOKEN="$token" "$bin/migrate-coord" run --source hf:bench/wide --dest hf:bench/wide-copy --parallel --max-workers 100 \
  --chunk-size 1KiB --source-endpoint "$src" --dest-endpoint "$dst" --report "$work/wide.json" >"$work/wide.log" 2>&1 &
coord=$!
peak=0 most=0 cpeak=0
while kill -0 "$coord" 2>/dev/null; do
  # The coordinator's children are its workers: sum the resident sets of those alive right now.
  read -r n kib < <(ps --no-headers --ppid "$coord" -o rss= 2>/dev/null | awk '{ s += $1; n++ } END { print n + 0, s + 0 }')
  [ "$kib" -gt "$peak" ] && peak=$kib
  [ "$n" -gt "$most" ] && most=$n
  hwm=$(status_kib "$coord" VmHWM); [ "${hwm:-0}" -gt "$cpeak" ] && cpeak=$hwm
  sleep 0.1
done
wait "$coord" && ok=verified || ok="FAILED (exit $?): $(tail -3 "$work/wide.log")"
wall=$(secs "$t0" "$(now)")
echo "RESULT 100 workers, $(report_field "$work/wide.json" files) files in $(report_field "$work/wide.json" chunks) chunks: ${wall} s wall; workers' peak total RSS $((peak / 1024)) MiB (${most} alive at once at most, 0.1 s samples); coordinator peak RSS $((cpeak / 1024)) MiB; run ${ok}"

echo "== total $(secs "$start_all" "$(now)") s"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -m)"

#!/usr/bin/env bash
# CPU cost of moving bytes (issue #13): 2 GiB of 256 MiB LFS objects between uncapped hubsims,
# HF -> MS and HF -> HF, `run --parallel`, with `/usr/bin/time` around the coordinator (its
# workers are its children: their CPU time counts). Goal: at most 1.0 CPU-second per GiB moved
# with every byte hashed by us. The hubs' own CPU is printed apart (not part of the goal).
# Usage: bench/cpu.sh [RUNS]   (default 2 runs of each pair; extra `run` flags in $RUN_FLAGS)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-2}"
. bench/lib.sh cpu

"$bin/hubsim" seed --data "$work/src" --flavor hf --repo bench/m --lfs-files 8 --lfs-size 256MiB 2>/dev/null
sync
serve hf "$work/src"
src=$(url "$work/src")
gib=$(du -sm "$work/src/lfs" | awk '{ printf "%.3f", $1 / 1024 }')
# shellcheck disable=SC2206
flags=(--parallel ${RUN_FLAGS:-})
echo "repo: ${gib} GiB of LFS objects (8 x 256 MiB), hubs uncapped; flags: run ${flags[*]}"
hub_cpu() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
results=()
for pair in ms hf; do
  for i in $(seq 1 "$runs"); do
    serve "$pair" "$work/dst-$pair$i"
    dst=$(url "$work/dst-$pair$i")
    cpu0=$(hub_cpu "${pids[0]}" "${pids[-1]}")
    HF_TOKEN="$token" MODELSCOPE_TOKEN="$token" /usr/bin/time -f "%U %S %e" -o "$work/time" \
      "$bin/migrate-coord" run --source hf:bench/m --dest "$pair:bench/copy" \
      --source-endpoint "$src" --dest-endpoint "$dst" "${flags[@]}" >"$work/log" 2>&1 || { tail -5 "$work/log"; exit 1; }
    cpu1=$(hub_cpu "${pids[0]}" "${pids[-1]}")
    read -r u s e <"$work/time"
    per=$(awk -v u="$u" -v s="$s" -v g="$gib" 'BEGIN { printf "%.2f", (u + s) / g }')
    echo "HF -> ${pair^^} run $i: ${e} s, CPU user ${u} s + system ${s} s = ${per} CPU-s/GiB (hubs: $(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", (b - a) / 100 }') s)"
    results+=("HF->${pair^^} ${per}")
    kill "${pids[-1]}" 2>/dev/null || true; wait "${pids[-1]}" 2>/dev/null || true; rm -rf "$work/dst-$pair$i"
  done
done
echo "RESULT CPU-seconds per GiB (coordinator + workers; goal <= 1.0): ${results[*]}"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

#!/usr/bin/env bash
# Benchmark: one 1 GiB LFS download from hubsim over loopback, no caps (issue #2, item 8).
# Prints the throughput and hubsim's peak RSS while serving; goals: >= 500 MiB/s, < 100 MiB.
# Also times `hubsim seed` of a 4 GiB repo (goal: under a minute).
# Usage: bench/hubsim_download.sh [SIZE]   (default 1GiB; needs curl and awk)
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-1GiB}"
cargo build -q --release -p hubsim
bin="$PWD/target/release/hubsim"
work="$(mktemp -d -t hubsim-bench-XXXX)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

start=$(date +%s.%N)
"$bin" seed --data "$work/seed4g" --flavor hf --repo bench/four-gib --lfs-file big.safetensors=1536MiB \
  --lfs-files 10 --lfs-size 200MiB --files 200 2>/dev/null
seed_secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
rm -rf "$work/seed4g"

"$bin" seed --data "$work/data" --flavor hf --repo bench/one --lfs-file "model.bin=$size" 2>/dev/null
"$bin" serve --flavor hf --data "$work/data" --user bench=hf_bench_token >"$work/url" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.05; done
url="$(head -1 "$work/url")"

# Three runs; -L follows the redirect to the object CDN origin (curl drops no auth here: public repo).
best=0
for run in 1 2 3; do
  bps=$(curl -sS -L -o /dev/null -w '%{speed_download}' "$url/bench/one/resolve/main/model.bin")
  mibs=$(awk -v b="$bps" 'BEGIN { printf "%d", b / 1048576 }')
  echo "run $run: ${mibs} MiB/s"
  [ "$mibs" -gt "$best" ] && best=$mibs
done
hwm_kib=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
echo "RESULT hubsim 1 download of $size: best ${best} MiB/s (goal >= 500), hubsim peak RSS $((hwm_kib / 1024)) MiB (goal < 100)"
echo "RESULT hubsim seed of a 4 GiB repo (1.5 GiB + 10 x 200 MiB + 200 small): ${seed_secs} s (goal < 60)"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -m)"

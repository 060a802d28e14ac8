#!/usr/bin/env bash
# Migration benchmarks (issue #3), measured side by side in one run on this machine:
#  1. a 4 GiB repo (one 1.5 GiB file, 10 x 200 MiB, 200 small files) between two hubsim instances,
#     each capped at 40 MiB/s per connection: `migrate-coord run --parallel --max-workers 8`
#     against the seed tools' path (huggingface_hub snapshot_download to disk, then upload_folder);
#  2. the peak RSS of a worker moving one 2 GiB file (goal: under 150 MiB);
#  3. the planner on 1,000,000 files (goal: under 2 s).
# Usage: bench/migrate.sh [--quick]   (--quick: 1 GiB instead of 4 GiB for a smoke run)
# Needs: a Python venv with huggingface_hub (.venv from tests/run.sh, or $HUBMIGRATE_VENV).
set -euo pipefail
cd "$(dirname "$0")/.."
quick="${1:-}"
. bench/lib.sh bench
need_venv

if [ "$quick" = "--quick" ]; then big=512MiB; mid=40MiB; else big=1536MiB; mid=200MiB; fi
"$bin/hubsim" seed --data "$work/src" --flavor hf --repo bench/model --lfs-file "model-big.safetensors=$big" \
  --lfs-files 10 --lfs-size "$mid" --files 200 --file-size 4KiB 2>/dev/null
total_mib=$(du -sm "$work/src/lfs" | cut -f1)
caps=(--conn-rate 40MiB --multipart-threshold 64MiB --part-size 16MiB)
serve hf "$work/src" "${caps[@]}"; src_url=$(url "$work/src")
serve hf "$work/dst" "${caps[@]}"; dst_url=$(url "$work/dst")

echo "== hubmigrate: run --parallel --max-workers 8 (${total_mib} MiB, 40 MiB/s per connection on each hub)"
t0=$(now)
HF_TOKEN="$token" "$bin/migrate-coord" run --source hf:bench/model --dest hf:bench/copy-hubmigrate --parallel --max-workers 8 \
  --source-endpoint "$src_url" --dest-endpoint "$dst_url" --report "$work/report.json" 2>&1 | tail -6
t_ours=$(secs "$t0" "$(now)")

echo "== huggingface_hub: snapshot_download to disk, then upload_folder (the seed tools' path)"
t0=$(now)
HF_HUB_DISABLE_XET=1 HF_HUB_DISABLE_PROGRESS_BARS=1 HF_HOME="$work/hf-home" HF_TOKEN="$token" \
  "$venv/bin/python" - "$src_url" "$dst_url" "$work/snapshot" <<'PY'
import sys
from huggingface_hub import HfApi, snapshot_download
src, dst, local = sys.argv[1:4]
path = snapshot_download("bench/model", endpoint=src, local_dir=local)
api = HfApi(endpoint=dst)
api.create_repo("bench/copy-hf-hub", exist_ok=True)
api.upload_folder(repo_id="bench/copy-hf-hub", folder_path=path)
PY
t_hf=$(secs "$t0" "$(now)")
link=$(awk -v m="$total_mib" 'BEGIN { printf "%.1f", m / 40 }')
echo "RESULT migration of ${total_mib} MiB: hubmigrate ${t_ours} s, huggingface_hub path ${t_hf} s, ratio $(awk -v a="$t_hf" -v b="$t_ours" 'BEGIN { printf "%.2f", a / b }')x faster; one connection's time for the largest file alone: $(awk -v s="${big%MiB}" 'BEGIN { printf "%.1f", s / 40 }') s; all bytes over one capped connection: ${link} s"

echo "== worker memory: one 2 GiB file, HF flavor to MS flavor, no caps"
"$bin/hubsim" seed --data "$work/src2" --flavor hf --repo bench/two --lfs-file "weights.bin=2GiB" 2>/dev/null
rm -rf "$work/src" "$work/dst" "$work/snapshot"
serve hf "$work/src2"; s2=$(url "$work/src2")
serve ms "$work/dst2"; d2=$(url "$work/dst2")
HF_TOKEN="$token" MODELSCOPE_TOKEN="$token" "$bin/migrate-coord" run --source hf:bench/two --to ms \
  --source-endpoint "$s2" --dest-endpoint "$d2" >/dev/null 2>&1 &
coord=$!
watch_workers "$coord" "$work/rss"
wait "$coord" && ok=verified || ok="FAILED (exit $?)"
peak=$(cat "$work/rss")
echo "RESULT worker peak RSS moving a 2 GiB file: $((peak / 1024)) MiB (goal < 150), run $ok"

cargo run -q --release -p migrate-coord --example plan_bench
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -m)"

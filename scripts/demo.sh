#!/usr/bin/env bash
# Demo: a real migration between two local hubs, no credentials needed. Builds hubmigrate and
# hubsim, seeds a Hugging Face-style repo (a 48 MiB safetensors file, LFS weights, small files),
# starts a local Hugging Face hub and a local ModelScope hub, then runs
#   migrate-coord run --source hf:acme/demo-model --to ms --parallel
# with progress and the verification summary. The demo tokens exist only inside the two local hubs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p hubsim -p migrate-coord -p migrate-worker
bin="$PWD/target/debug"
work="$(mktemp -d -t hubmigrate-demo-XXXX)"
trap 'kill ${hf_pid:-} ${ms_pid:-} 2>/dev/null || true; rm -rf "$work"' EXIT
demo_token="hf_demo_local_only"

"$bin/hubsim" seed --data "$work/hf" --flavor hf --repo acme/demo-model --files 40 --lfs-files 6 --lfs-size 8MiB \
  --lfs-file "model.safetensors=48MiB" --lfs-file "tokenizer/vocab [v2].json=1MiB" 2>/dev/null
HUBSIM_LOG=warn "$bin/hubsim" serve --flavor hf --data "$work/hf" --user "demo=$demo_token" --org acme=demo >"$work/hf.url" &
hf_pid=$!
HUBSIM_LOG=warn "$bin/hubsim" serve --flavor ms --data "$work/ms" --user "demo=$demo_token" --org acme=demo >"$work/ms.url" &
ms_pid=$!
for _ in $(seq 100); do [ -s "$work/hf.url" ] && [ -s "$work/ms.url" ] && break; sleep 0.05; done
hf_url="$(head -1 "$work/hf.url")"
ms_url="$(head -1 "$work/ms.url")"
echo "local Hugging Face hub: $hf_url    local ModelScope hub: $ms_url"
echo "\$ migrate-coord run --source hf:acme/demo-model --to ms --parallel --max-workers 4"
echo

status=0
HF_ENDPOINT="$hf_url" MODELSCOPE_ENDPOINT="$ms_url" HF_TOKEN="$demo_token" MODELSCOPE_TOKEN="$demo_token" \
  "$bin/migrate-coord" run --source hf:acme/demo-model --to ms --parallel --max-workers 4 \
  --report "$work/report.json" || status=$?
exit "$status"

#!/usr/bin/env bash
# Demo: builds hubsim, seeds a small model repo with deterministic content, and serves it as a
# local Hugging Face hub until Ctrl-C. No credentials from anywhere are needed. (Once the
# migration pipeline lands, this becomes a demo migration between two local hubs.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p hubsim
bin="$PWD/target/debug/hubsim"
data="$(mktemp -d -t hubsim-demo-XXXX)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$data"' EXIT

"$bin" seed --data "$data" --flavor hf --repo acme/demo-model --files 25 --lfs-files 3 --lfs-size 8MiB \
  --lfs-file "weights/model.safetensors=24MiB" --manifest "$data/manifest.json"
"$bin" serve --flavor hf --data "$data" --user demo=hf_demo_token --org acme=demo >"$data/url" &
pid=$!
for _ in $(seq 50); do [ -s "$data/url" ] && break; sleep 0.1; done
url="$(head -1 "$data/url")"
cat <<MSG

hubsim is serving a local Hugging Face hub at $url
  repo:  acme/demo-model ($(grep -c '"path"' "$data/manifest.json") files, manifest in $data/manifest.json)
  user:  demo (demo token: hf_demo_token, valid only on this local hub)

Try it with the official client:
  HF_ENDPOINT=$url HF_HUB_DISABLE_XET=1 python3 -c "from huggingface_hub import HfApi; print(HfApi().list_repo_files('acme/demo-model'))"
or with git and git-lfs:
  git clone $url/acme/demo-model

Press Ctrl-C to stop.
MSG
wait "$pid"

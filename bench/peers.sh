#!/usr/bin/env bash
# hubmigrate against every peer on the same link (issue #7), measured side by side in one run:
# one repo (one 1.5 GiB file, 10 x 200 MiB, 200 small files), every hubsim capped at 40 MiB/s per
# connection and 400 MiB/s in all, HF flavor source, and
#   - hubmigrate `run --parallel --max-workers 8` to an HF, an MS and a git destination,
#   - the huggingface_hub path (snapshot_download, then upload_folder), HF to HF,
#   - git clone + git lfs fetch + git lfs push + git push (the git-only seed tool), HF to git,
#   - hfms-bridge (PyPI), the streaming HF to ModelScope peer, HF to MS,
#   - the link limit: total bytes / 400 MiB/s.
# Also the peak RSS of any one worker during the hubmigrate runs (goal: under 150 MiB).
# Usage: bench/peers.sh [--quick]   (--quick: 512 MiB + 10 x 40 MiB, for a smoke run)
#   PEERS_PAIRS="hf-to-hf"        only these hubmigrate pairs, and no peer tools (default: all)
#   PEERS_FLAGS="--split never"   extra flags for every hubmigrate run
#   PEERS_SMALL=50                small files in the repo (default 200; under 100 the source is
#                                 read through the API, not over git)
# Needs: git, git-lfs, curl and a Python venv with huggingface_hub (.venv from tests/run.sh, or
# $HUBMIGRATE_VENV); hfms-bridge is installed into that venv when missing.
# Disk: about 12 GiB free in $TMPDIR (the source, one destination at a time, the snapshot).
set -euo pipefail
cd "$(dirname "$0")/.."
quick="${1:-}"
. bench/lib.sh peers
need_venv
"$venv/bin/python" -c "import hfms_bridge" 2>/dev/null || "$venv/bin/pip" install -q "hfms-bridge==0.5.1"
export HF_TOKEN="$token" MODELSCOPE_TOKEN="$token" TARGET_TOKEN="$token" TARGET_USERNAME=bench
# A fresh destination hub for each measured run (ModelScope's object store is global: a second
# run into the same hub would find every object already there). Sets $dest.
fresh() { # flavor name extra-flags...
  local flavor="$1" name="$2"; shift 2
  serve "$flavor" "$work/$name" "${caps[@]}" "$@"; dest=$(url "$work/$name")
}
# Stops the last hub started and frees its disk.
drop_last() { kill "${pids[-1]}" 2>/dev/null || true; wait "${pids[-1]}" 2>/dev/null || true; rm -rf "$work/$1" "$work/$1.url" "$work/$1.log"; }


results=()
record() { results+=("$1|$2"); }

small="${PEERS_SMALL:-200}"
if [ "$quick" = "--quick" ]; then big=512MiB; mid=40MiB; else big=1536MiB; mid=200MiB; fi
"$bin/hubsim" seed --data "$work/src" --flavor hf --repo bench/model --lfs-file "model-big.safetensors=$big" \
  --lfs-files 10 --lfs-size "$mid" --files "$small" --file-size 4KiB 2>/dev/null
total_mib=$(du -sm "$work/src/lfs" | cut -f1)
caps=(--conn-rate 40MiB --total-rate 400MiB)
serve hf "$work/src" "${caps[@]}"; src=$(url "$work/src")
hf_flags=(--multipart-threshold 64MiB --part-size 16MiB)
link=$(awk -v m="$total_mib" 'BEGIN { printf "%.1f", m / 400 }')
echo "repo: ${total_mib} MiB of LFS objects + $small small files; caps 40 MiB/s per connection, 400 MiB/s in all, on every hub"

hubmigrate() { # label dest-flags...
  local label="$1"; shift
  echo "== hubmigrate $label"
  local before; before=$(buckets "$src")
  local t0; t0=$(now)
  # shellcheck disable=SC2086 # PEERS_FLAGS is a list of words
  "$bin/migrate-coord" run --source hf:bench/model --parallel --max-workers 8 --source-endpoint "$src" "$@" ${PEERS_FLAGS:-} \
    --report "$work/report-$label.json" >"$work/log-$label" 2>&1 &
  local coord=$!
  watch_workers "$coord" "$work/rss-$label" &
  local watcher=$!
  if wait "$coord"; then ok=verified; else ok="FAILED"; tail -5 "$work/log-$label"; fi
  local t; t=$(secs "$t0" "$(now)")
  wait "$watcher"
  echo "   $t s ($ok), worker peak RSS $(($(cat "$work/rss-$label") / 1024)) MiB"
  local after; after=$(buckets "$src")
  read -r a0 r0 <<<"$before"; read -r a1 r1 <<<"$after"
  echo "   source calls: api $((a1 - a0)), resolvers $((r1 - r0)) ($(awk -v r=$((r1 - r0)) -v m="$total_mib" 'BEGIN { printf "%.1f", r * 1024 / m }') per GiB)"
  record "calls $label" "api $((a1 - a0)), resolvers $((r1 - r0))"
  grep -E "^(plan|split) " "$work/log-$label" | sed 's/^/   /'
  record "hubmigrate $label" "$t"
  rss+=("$(($(cat "$work/rss-$label") / 1024))")
}
rss=()

wanted() { [ -z "${PEERS_PAIRS:-}" ] || [[ " $PEERS_PAIRS " == *" $1 "* ]]; }
if wanted hf-to-hf; then fresh hf hf1 "${hf_flags[@]}"; hubmigrate "hf-to-hf" --dest hf:bench/copy --dest-endpoint "$dest"; drop_last hf1; fi
if wanted hf-to-ms; then fresh ms ms1; hubmigrate "hf-to-ms" --dest ms:bench/copy --dest-endpoint "$dest"; drop_last ms1; fi
if wanted hf-to-git; then fresh git git1; hubmigrate "hf-to-git" --dest "${dest}/bench/copy.git"; drop_last git1; fi
if [ -n "${PEERS_PAIRS:-}" ]; then
  for r in "${results[@]}"; do echo "RESULT ${r%%|*}: ${r##*|}"; done
  exit 0
fi

echo "== huggingface_hub: snapshot_download to disk, then upload_folder (HF to HF)"
fresh hf hf2 "${hf_flags[@]}"; hf=$dest
t0=$(now)
HF_HUB_DISABLE_XET=1 HF_HUB_DISABLE_PROGRESS_BARS=1 HF_HOME="$work/hf-home" \
  "$venv/bin/python" - "$src" "$hf" "$work/snapshot" <<'PY'
import sys
from huggingface_hub import HfApi, snapshot_download
src, dst, local = sys.argv[1:4]
path = snapshot_download("bench/model", endpoint=src, local_dir=local)
api = HfApi(endpoint=dst)
api.create_repo("bench/copy", exist_ok=True)
api.upload_folder(repo_id="bench/copy", folder_path=path)
PY
t=$(secs "$t0" "$(now)"); echo "   $t s"; record "huggingface_hub path (hf-to-hf)" "$t"
rm -rf "$work/snapshot" "$work/hf-home"; drop_last hf2

echo "== git clone + git lfs fetch + git lfs push + git push (HF to git)"
# Credentials reach git through its environment (an extra header), never its command line.
basic=$(printf 'bench:%s' "$token" | base64 -w0)
printf 'PRIVATE-TOKEN: %s\n' "$token" >"$work/api-header"
fresh git git2; git_url=$dest
t0=$(now)
curl -sf -H @"$work/api-header" -X POST "$git_url/api/v4/projects" \
  --data-urlencode "path=copy" --data-urlencode "name=copy" >/dev/null
(
  export GIT_TERMINAL_PROMPT=0 GIT_LFS_SKIP_SMUDGE=1
  git clone -q "$src/bench/model" "$work/clone"
  cd "$work/clone"
  git lfs fetch --all origin >/dev/null
  git remote add dest "$git_url/bench/copy.git"
  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader GIT_CONFIG_VALUE_0="Authorization: Basic $basic"
  git lfs push --all dest >/dev/null
  git push -q dest HEAD:main
) && ok=pushed || ok=FAILED
t=$(secs "$t0" "$(now)"); echo "   $t s ($ok)"; record "git + git-lfs (hf-to-git)" "$t"
rm -rf "$work/clone"; drop_last git2

echo "== hfms-bridge 0.5.1 (HF to MS), default 4 workers"
fresh ms ms2; ms=$dest
t0=$(now)
# Its CLI takes the destination token only as an argument: run that CLI in-process with the
# token read from the environment, so it never shows in a process list.
"$venv/bin/python" - "$src" "$ms" "$work/bridge-cache" 2>"$work/log-bridge" <<'PY' && ok=done || ok=FAILED
import os, sys
from hfms_bridge.cli import main
src, dst, cache = sys.argv[1:4]
sys.exit(main(["hf2ms", "bench/model", "bench/copy", "--hf-endpoint", src, "--ms-endpoint", dst,
               "--ms-token", os.environ["MODELSCOPE_TOKEN"], "--cache-dir", cache, "--progress", "off"]))
PY
t=$(secs "$t0" "$(now)"); echo "   $t s ($ok): $(tail -1 "$work/log-bridge")"; record "hfms-bridge (hf-to-ms)" "$t"
drop_last ms2

echo
echo "RESULT link limit: ${total_mib} MiB / 400 MiB/s = ${link} s"
ours_hf=""
for r in "${results[@]}"; do
  name="${r%%|*}"; t="${r##*|}"
  case "$name" in calls*) echo "RESULT source $name: $t"; continue ;; esac
  echo "RESULT $name: $t s, $(awk -v t="$t" -v l="$link" 'BEGIN { printf "%.2f", t / l }')x the link limit"
  [ "$name" = "hubmigrate hf-to-hf" ] && ours_hf=$t
done
for r in "${results[@]}"; do
  name="${r%%|*}"; t="${r##*|}"
  case "$name" in hubmigrate* | calls*) continue ;; esac
  ours="$ours_hf"
  case "$name" in
    *hf-to-git*) ours=$(printf '%s\n' "${results[@]}" | awk -F'|' '$1 == "hubmigrate hf-to-git" {print $2}') ;;
    *hf-to-ms*) ours=$(printf '%s\n' "${results[@]}" | awk -F'|' '$1 == "hubmigrate hf-to-ms" {print $2}') ;;
  esac
  echo "RESULT hubmigrate is $(awk -v a="$t" -v b="$ours" 'BEGIN { printf "%.2f", a / b }')x faster than $name on the same pair"
done
peak=0; for r in "${rss[@]}"; do [ "$r" -gt "$peak" ] && peak=$r; done
echo "RESULT worker peak RSS over the three hubmigrate runs: ${peak} MiB (goal < 150)"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

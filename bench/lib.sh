# Shared set-up of the benchmark scripts: `. bench/lib.sh NAME` from the repo root builds the
# release binaries once, makes a work directory (removed on exit, with every hub started), and
# defines the helpers below. Every hub has user `bench` with the fake token $token.
# Binaries are built into $BENCH_TARGET_DIR, else $CARGO_TARGET_DIR, else ./target (a separate
# directory keeps release builds from waiting on another build's lock).
target_dir="${BENCH_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/target}}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
CARGO_TARGET_DIR="$target_dir" cargo build -q --release -p hubsim -p migrate-coord -p migrate-worker
bin="$target_dir/release"
work="$(mktemp -d -t "hubmigrate-$1-XXXX")"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
token="hf_bench_local_only"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# A Python venv with huggingface_hub ($HUBMIGRATE_VENV, or .venv from tests/run.sh) in $venv.
need_venv() {
  venv="${HUBMIGRATE_VENV:-.venv}"
  [ -x "$venv/bin/python" ] || { echo "no Python venv at $venv: run tests/run.sh once, or set HUBMIGRATE_VENV"; exit 2; }
}

# Starts a hub: flavor data-dir extra-flags...; its URL lands in $data.url, its log in $data.log.
# Not in a subshell: $pids must see the pid.
serve() {
  local flavor="$1" data="$2"; shift 2
  HUBSIM_LOG="${HUBSIM_LOG:-warn}" "$bin/hubsim" serve --flavor "$flavor" --data "$data" --user "bench=$token" "$@" \
    >"$data.url" 2>"$data.log" &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$data.url" ] && break; sleep 0.05; done
}
url() { head -1 "$1.url"; }

# Peak VmHWM (KiB) of any migrate-worker process while pid $1 runs; written to file $2.
watch_workers() {
  local peak=0 hwm
  while kill -0 "$1" 2>/dev/null; do
    for p in $(pgrep -f "$bin/migrate-worker" || true); do
      hwm=$(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
      [ "${hwm:-0}" -gt "$peak" ] && peak=$hwm
    done
    sleep 0.1
  done
  echo "$peak" >"$2"
}

# Requests a hub admitted in its quota buckets so far: "API RESOLVERS" (HF flavor).
buckets() {
  curl -sf "$1/_hubsim/stats" | python3 -c 'import json, sys
q = json.load(sys.stdin).get("quota", {})
print(q.get("api", {}).get("admitted", 0), q.get("resolvers", {}).get("admitted", 0))'
}

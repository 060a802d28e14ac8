#!/usr/bin/env bash
# The controller's memory with many regular files (issue #12, item 5): a repo of regular files
# (5 MiB each, committed inline) migrates through kubesim, the real kubectl and the controller;
# the controller's peak RSS (VmHWM) is held against the Helm chart's memory limit. Two runs:
# 200 MiB HF -> ModelScope (commits of at most 8 MiB of JSON), and 180 MiB HF -> HF (one NDJSON
# commit; hubsim refuses commit bodies over 256 MiB, and 200 MiB is 267 MiB as base64).
# Needs kubectl on PATH. Usage: bench/controller-memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh controller-memory
command -v kubectl >/dev/null || { echo "kubectl is needed (tests/run.sh installs it)"; exit 2; }
CARGO_TARGET_DIR="$target_dir" cargo build -q --release -p kubesim

"$bin/kubesim" serve --port 0 --data "$work/k8s" --kubeconfig "$work/kubeconfig" --bin-dir "$bin" \
  >"$work/k8s.url" 2>"$work/k8s.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/k8s.url" ] && break; sleep 0.05; done
export KUBECONFIG="$work/kubeconfig"
kubectl apply -f deploy/crd.yaml >/dev/null
# The token goes through stdin, never a command line.
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Secret
metadata: {name: hub-tokens}
stringData: {HF_TOKEN: $token, MODELSCOPE_TOKEN: $token}
YAML

limit=$(awk '/^resources:/ {r=1} r && /limits:/ {match($0, /memory: *[0-9]+Mi/); print substr($0, RSTART+8, RLENGTH-10); exit}' helm/hubmigrate/values.yaml | tr -d ' ')

run() { # name files dest-flavor dest-prefix
  local name="$1" files="$2" flavor="$3" prefix="$4"
  "$bin/hubsim" seed --data "$work/src-$name" --flavor hf --repo bench/regular --files "$files" --file-size 5MiB 2>/dev/null
  serve hf "$work/src-$name"
  serve "$flavor" "$work/dst-$name"
  local src dst started peak=0 hwm phase took mismatched
  src=$(url "$work/src-$name") dst=$(url "$work/dst-$name")
  "$bin/migrate-coord" --log-format json controller --grpc-listen 127.0.0.1:0 --namespace default \
    >/dev/null 2>"$work/controller-$name.log" &
  local controller=$!
  pids+=("$controller")
  started=$(now)
  kubectl apply -f - >/dev/null <<YAML
apiVersion: hubmigrate.dev/v1alpha1
kind: Migration
metadata: {name: $name}
spec:
  source: hf:bench/regular
  dest: $prefix:bench/copy
  sourceEndpoint: $src
  destEndpoint: $dst
  parallel: true
  maxWorkers: 4
  chunkSize: 64MiB
  tokensSecret: hub-tokens
YAML
  while :; do
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$controller/status")
    [ "$hwm" -gt "$peak" ] && peak=$hwm
    phase=$(kubectl get migration "$name" -o 'jsonpath={.status.phase}')
    case "$phase" in Succeeded | Failed) break ;; esac
    sleep 0.2
  done
  kill "$controller"
  took=$(secs "$started" "$(now)")
  mismatched=$(kubectl get migration "$name" -o 'jsonpath={.status.verification.mismatched}')
  printf "%-9s %3d x 5 MiB regular (%d MiB): %s in %ss, %s mismatched; controller peak RSS %d MiB = %.2f of the chart limit (%s Mi)\n" \
    "$name" "$files" $((files * 5)) "$phase" "$took" "${mismatched:-?}" $((peak / 1024)) \
    "$(awk -v p="$peak" -v l="$limit" 'BEGIN { print p / 1024 / l }')" "$limit"
  [ "$phase" = Succeeded ] || { kubectl get migration "$name" -o "jsonpath={.status.conditions[0].message}"; echo; return 1; }
}
run to-ms 40 ms ms
run to-hf 36 hf hf

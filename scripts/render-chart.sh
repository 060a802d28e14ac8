#!/usr/bin/env bash
# Regenerate deploy/manifests.yaml: the chart in helm/hubmigrate rendered with its default values,
# release and namespace `hubmigrate` (the CRD is not included: it is deploy/crd.yaml).
#
#   scripts/render-chart.sh          # writes deploy/manifests.yaml
#   scripts/render-chart.sh -        # writes the rendering to stdout (tests/conformance/test_chart.py)
#   scripts/render-chart.sh FILE     # writes FILE
#
# Renders with Helm 4 as a library (PyPI helm-python-sdk, no helm binary) from the venv at
# ${HUBMIGRATE_VENV:-.venv}; make one with
#   python3 -m venv .venv && .venv/bin/pip install -r tests/conformance/requirements.txt
#
# Layout of the output: a fixed comment header, then each template's rendering whole (comments and
# its own `---` separators kept), each preceded by `---`, templates in Helm's install order of
# their first kind (ServiceAccount, Role, Service, Deployment, ...). Fails if the chart does not lint.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${HUBMIGRATE_VENV:-.venv}"
python="$venv/bin/python"
if [[ ! -x "$python" ]]; then
  echo "render-chart.sh: no python at $python; set HUBMIGRATE_VENV to a venv with helm-python-sdk" >&2
  echo "  (python3 -m venv .venv && .venv/bin/pip install -r tests/conformance/requirements.txt)" >&2
  exit 2
fi
out="${1:-deploy/manifests.yaml}"

"$python" - "$out" <<'EOF'
import os
import re
import sys
import tempfile

import helm_python as helm

CHART = "helm/hubmigrate"
HEADER = (
    "# Plain manifests for users without Helm: the chart in helm/hubmigrate rendered with its default values,\n"
    "# release and namespace `hubmigrate`. Apply deploy/crd.yaml first, then:\n"
    "#   kubectl create namespace hubmigrate && kubectl apply -n hubmigrate -f deploy/manifests.yaml\n"
)
# Helm's install order (pkg/release/util/kind_sorter.go); kinds not listed go last.
INSTALL_ORDER = """
Namespace NetworkPolicy ResourceQuota LimitRange PodSecurityPolicy PodDisruptionBudget ServiceAccount
Secret SecretList ConfigMap StorageClass PersistentVolume PersistentVolumeClaim CustomResourceDefinition
ClusterRole ClusterRoleList ClusterRoleBinding ClusterRoleBindingList Role RoleList RoleBinding
RoleBindingList Service DaemonSet Pod ReplicationController ReplicaSet Deployment HorizontalPodAutoscaler
StatefulSet Job CronJob IngressClass Ingress APIService MutatingWebhookConfiguration
ValidatingWebhookConfiguration
""".split()

lint = helm.lint(CHART)
if lint.get("errors"):
    sys.exit(f"render-chart.sh: helm lint {CHART} failed: {lint['errors']}")

chart = helm.Chart.load(CHART)
rendered = chart.render(name="hubmigrate", namespace="hubmigrate", is_install=True)

def order(item):
    path, text = item
    kind = re.search(r"^kind:\s*(\S+)", text, re.M)
    kind = kind.group(1) if kind else ""
    rank = INSTALL_ORDER.index(kind) if kind in INSTALL_ORDER else len(INSTALL_ORDER)
    return rank, path

parts = []
for path, text in sorted(rendered.items(), key=order):
    name = os.path.basename(path)
    if name.startswith("_") or name == "NOTES.txt" or not text.strip():
        continue
    parts.append("---\n" + (text if text.endswith("\n") else text + "\n"))
manifests = HEADER + "".join(parts)

out = sys.argv[1]
if out == "-":
    sys.stdout.write(manifests)
else:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(out)), prefix=".render-chart-")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(manifests)
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    print(f"wrote {out}", file=sys.stderr)
EOF

"""The Helm chart in helm/hubmigrate: lints, renders to deploy/manifests.yaml, and says what the controller needs.

Rendered offline with Helm 4 as a library (PyPI `helm-python-sdk`, no helm binary, no cluster) and parsed
with PyYAML. These tests use no hubsim and none of conftest's fixtures.
"""

from __future__ import annotations

import difflib
import json
import os
import pathlib
import re
import subprocess
import sys

import helm_python as helm
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "hubmigrate"
MANIFESTS = ROOT / "deploy" / "manifests.yaml"
RENDER_SCRIPT = ROOT / "scripts" / "render-chart.sh"
RELEASE = NAMESPACE = "hubmigrate"

REGENERATE = (
    "regenerate it from the chart with `scripts/render-chart.sh` (uses the venv at ${HUBMIGRATE_VENV:-.venv}, "
    "one with tests/conformance/requirements.txt installed), e.g. "
    f"`HUBMIGRATE_VENV={sys.prefix} scripts/render-chart.sh`, and commit deploy/manifests.yaml"
)


def render(values: dict | None = None) -> dict[str, str]:
    """{template path: rendered YAML} of the chart as the release `hubmigrate` in namespace `hubmigrate`."""
    chart = helm.Chart.load(str(CHART))
    try:
        return chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    finally:
        chart.close()


def documents(values: dict | None = None) -> list[dict]:
    """Every object the chart renders, parsed."""
    return [doc for text in render(values).values() for doc in yaml.safe_load_all(text) if doc]


def only(docs: list[dict], kind: str, name: str) -> dict:
    found = [d for d in docs if d.get("kind") == kind and d.get("metadata", {}).get("name") == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)} among {[d.get('kind') for d in docs]}"
    return found[0]


_SUFFIXES = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}


def quantity(value) -> float:
    """Bytes in a Kubernetes resource quantity ("2Gi", "500M", "1.5Gi", 1073741824, "1e9")."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:([eE][-+]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?)", str(value))
    assert m, f"not a Kubernetes quantity: {value!r}"
    number, exponent, suffix = m.groups()
    return float(number + (exponent or "")) * _SUFFIXES[suffix or ""]


def controller_container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    found = [c for c in containers if c["name"] == "controller"]
    assert len(found) == 1, f"expected one container `controller`, got {[c['name'] for c in containers]}"
    return found[0]


def test_chart_lints_without_errors():
    result = helm.lint(str(CHART))
    assert result["errors"] == [], f"helm lint {CHART.relative_to(ROOT)}: {result}"
    # Helm's severities: 1 info, 2 warning, 3 error.
    assert not [m for m in result["messages"] if m.get("severity", 0) >= 3], f"lint errors: {result['messages']}"


def test_rendering_is_deploy_manifests_byte_for_byte():
    env = {**os.environ, "HUBMIGRATE_VENV": sys.prefix}
    run = subprocess.run(["bash", str(RENDER_SCRIPT), "-"], cwd=ROOT, env=env, capture_output=True, check=False)
    assert run.returncode == 0, f"{RENDER_SCRIPT.relative_to(ROOT)} failed:\n{run.stderr.decode(errors='replace')}"
    rendered, committed = run.stdout, MANIFESTS.read_bytes()
    if rendered != committed:
        diff = "".join(
            difflib.unified_diff(
                committed.decode(errors="replace").splitlines(True),
                rendered.decode(errors="replace").splitlines(True),
                "deploy/manifests.yaml (committed)",
                "helm/hubmigrate (rendered)",
            )
        )
        pytest.fail(f"deploy/manifests.yaml is not the chart's rendering; {REGENERATE}.\n{diff[:6000]}", pytrace=False)


def test_rendering_as_a_whole_matches_the_objects_of_the_chart():
    """The script keeps every rendered template, each exactly once (no template dropped or duplicated)."""
    committed = [d for d in yaml.safe_load_all(MANIFESTS.read_text()) if d]
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in documents())
    assert sorted((d["kind"], d["metadata"]["name"]) for d in committed) == kinds, REGENERATE


@pytest.mark.parametrize("scratch_size", [None, "2Gi", "500M"], ids=["default", "2Gi", "500M"])
def test_controller_scratch_is_a_sized_emptydir_at_tmpdir_within_its_storage_limit(scratch_size):
    values = None if scratch_size is None else {"scratchSize": scratch_size}
    expected = scratch_size or yaml.safe_load((CHART / "values.yaml").read_text())["scratchSize"]
    deployment = only(documents(values), "Deployment", f"{RELEASE}-controller")
    pod = deployment["spec"]["template"]["spec"]
    container = controller_container(deployment)

    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert env.get("TMPDIR"), f"the controller has no TMPDIR: {container.get('env')}"
    mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"].rstrip("/") == env["TMPDIR"].rstrip("/")]
    assert len(mounts) == 1, f"nothing mounted at TMPDIR={env['TMPDIR']}: {container.get('volumeMounts')}"
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    volume = volumes.get(mounts[0]["name"])
    assert volume is not None, f"volume {mounts[0]['name']} is mounted but not defined: {pod.get('volumes')}"
    assert "emptyDir" in volume, f"TMPDIR is not an emptyDir: {volume}"
    size_limit = (volume["emptyDir"] or {}).get("sizeLimit")
    assert size_limit is not None, f"the scratch emptyDir has no sizeLimit: {volume}"
    assert str(size_limit) == str(expected), f"sizeLimit {size_limit!r}, values say scratchSize {expected!r}"

    limits = container.get("resources", {}).get("limits", {})
    requests = container.get("resources", {}).get("requests", {})
    assert "ephemeral-storage" in limits, f"no ephemeral-storage limit: {container.get('resources')}"
    assert quantity(limits["ephemeral-storage"]) >= quantity(size_limit), (
        f"ephemeral-storage limit {limits['ephemeral-storage']} is below the scratch emptyDir's sizeLimit "
        f"{size_limit}: the kubelet would evict the controller before the scratch space is full"
    )
    if "ephemeral-storage" in requests:
        assert quantity(requests["ephemeral-storage"]) <= quantity(limits["ephemeral-storage"]), container["resources"]


def test_role_lets_the_controller_watch_pods():
    """The controller watches its worker pods to say why they are Pending (status.detail, WorkersRunning)."""
    role = only(documents(), "Role", f"{RELEASE}-controller")
    granted: set[str] = set()
    for rule in role.get("rules", []):
        if "" in rule.get("apiGroups", []) and ({"pods", "*"} & set(rule.get("resources", []))):
            granted |= set(rule.get("verbs", []))
    missing = {"get", "list", "watch"} - granted if "*" not in granted else set()
    assert not missing, f"the Role does not grant {sorted(missing)} on pods: {role['rules']}"

    binding = only(documents(), "RoleBinding", f"{RELEASE}-controller")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]}
    deployment = only(documents(), "Deployment", f"{RELEASE}-controller")
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE} in binding["subjects"], binding


def test_pods_run_unprivileged():
    deployment = only(documents(), "Deployment", f"{RELEASE}-controller")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True, pod["securityContext"]
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, pod["securityContext"]
    sc = controller_container(deployment)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, sc
    assert sc["capabilities"]["drop"] == ["ALL"], sc


def test_the_admin_decides_images_endpoints_and_worker_resources():
    values = {
        "allowedWorkerImages": ["registry.internal/hubmigrate:0.1.0"],
        "allowedEndpoints": ["https://hub.internal", "https://gitlab.internal:8443"],
        "workerResources": {"limits": {"cpu": "1", "memory": "256Mi"}},
    }
    args = controller_container(only(documents(values), "Deployment", f"{RELEASE}-controller"))["args"]
    assert "--allowed-worker-image=registry.internal/hubmigrate:0.1.0" in args, args
    assert "--allowed-endpoint=https://hub.internal" in args and "--allowed-endpoint=https://gitlab.internal:8443" in args, args
    resources = [a for a in args if a.startswith("--worker-resources=")]
    assert len(resources) == 1, args
    # Helm merges the given values over the chart's: the limits given win, the rest stays.
    limits = json.loads(resources[0].split("=", 1)[1])["limits"]
    assert (limits["cpu"], limits["memory"]) == ("1", "256Mi"), resources
    default_args = controller_container(only(documents(), "Deployment", f"{RELEASE}-controller"))["args"]
    assert not [a for a in default_args if a.startswith(("--allowed-worker-image", "--allowed-endpoint"))], default_args


def test_network_policies_fence_workers_and_the_grpc_port():
    docs = documents()
    port = yaml.safe_load((CHART / "values.yaml").read_text())["grpcPort"]
    workers = only(docs, "NetworkPolicy", f"{RELEASE}-workers")["spec"]
    assert workers["podSelector"]["matchExpressions"] == [{"key": "hubmigrate.dev/migration", "operator": "Exists"}]
    assert set(workers["policyTypes"]) == {"Ingress", "Egress"} and workers["ingress"] == [], workers
    to_controller = [e for e in workers["egress"] if any("podSelector" in t and "namespaceSelector" not in t for t in e.get("to", []))]
    assert to_controller and to_controller[0]["ports"] == [{"protocol": "TCP", "port": port}], workers["egress"]
    controller = only(docs, "NetworkPolicy", f"{RELEASE}-controller")["spec"]
    assert controller["policyTypes"] == ["Ingress"], controller
    (rule,) = controller["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": port}], rule
    assert rule["from"] == [{"podSelector": {"matchExpressions": [{"key": "hubmigrate.dev/migration", "operator": "Exists"}]}}], rule
    assert not [d for d in documents({"networkPolicy": {"enabled": False, "hubPorts": [443]}}) if d["kind"] == "NetworkPolicy"]


def test_role_has_no_rights_it_does_not_use():
    role = only(documents(), "Role", f"{RELEASE}-controller")
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert "pods/log" not in resources and "pods/exec" not in resources, role["rules"]
    secret_verbs = {v for rule in role["rules"] if "secrets" in rule["resources"] for v in rule["verbs"]}
    assert secret_verbs == {"get", "create", "patch"}, f"Secrets: {sorted(secret_verbs)} (no list or watch)"


def test_the_workers_grpc_runs_over_tls_with_the_certificate_in_a_secret():
    def controller(values=None):
        return controller_container(only(documents(values), "Deployment", f"{RELEASE}-controller"))

    default = controller()
    assert f"--grpc-tls-secret={RELEASE}-grpc-tls" in default["args"], default["args"]
    assert "--grpc-plaintext" not in default["args"], default["args"]
    # The controller finds (or stores) that Secret in its own namespace.
    namespace = [e for e in default["env"] if e["name"] == "POD_NAMESPACE"]
    assert namespace == [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}], default["env"]
    given = controller({"grpcTls": {"secretName": "issued-by-cert-manager"}})["args"]
    assert "--grpc-tls-secret=issued-by-cert-manager" in given, given
    clear = controller({"grpcTls": {"enabled": False}})["args"]
    assert "--grpc-plaintext" in clear and not [a for a in clear if a.startswith("--grpc-tls-secret")], clear

"""What notebooks 04, 05 and 06 teach, checked on the sim cluster with the notebooks' own manifests.

The notebooks show these facts to learners without asserting them (a cell that fails on an
assert teaches nothing); here each one is asserted, reading the manifests from the notebooks'
cells, so a change to a notebook that breaks what its prose says fails a test.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubelab import gateway_routes as gr
from kubelab.wait import until
from tests.conftest import Kubectl

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _cells(notebook: str) -> list[str]:
    nb = json.loads((NOTEBOOKS / notebook).read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def writefile(notebook: str, name: str) -> str:
    """Return the text a notebook's `%%writefile {WORK}/<name>` cell writes."""
    for src in _cells(notebook):
        first, _, body = src.partition("\n")
        if first.startswith("%%writefile") and first.endswith(f"/{name}"):
            return body
    raise AssertionError(f"{notebook} has no %%writefile cell for {name}")


def _json(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(kubectl(*args, "-o", "json").stdout)
    return out


# --- notebook 04: StatefulSets -----------------------------------------------------------------


def test_notebook_04_statefulset_order_identity_claims_and_partition(
    kubectl: Kubectl, namespace: str
) -> None:
    sts = writefile("04-statefulset.ipynb", "statefulset.yaml").replace("minReadySeconds: 2", "")
    svc = writefile("04-statefulset.ipynb", "service.yaml")
    kubectl("-n", namespace, "apply", "-f", "-", stdin=svc + "\n---\n" + sts)
    kubectl("-n", namespace, "rollout", "status", "statefulset/orders-db", "--timeout=120s")
    names = [f"orders-db-{i}" for i in range(4)]

    def pods() -> dict[str, dict[str, Any]]:
        items = _json(kubectl, "-n", namespace, "get", "pods", "-l", "app=orders-db")["items"]
        return {p["metadata"]["name"]: p for p in items}

    def ready_at(pod: dict[str, Any]) -> str:
        conds = pod["status"].get("conditions") or []
        return next(c["lastTransitionTime"] for c in conds if c["type"] == "Ready")

    # Ordered creation: each pod was created no earlier than its predecessor became Ready.
    found = pods()
    assert sorted(found) == names
    for before, after in itertools.pairwise(names):
        assert ready_at(found[before]) <= found[after]["metadata"]["creationTimestamp"]

    def claims() -> dict[str, str]:
        items = _json(kubectl, "-n", namespace, "get", "pvc")["items"]
        return {c["metadata"]["name"]: c["metadata"]["uid"] for c in items}

    # A replaced pod: a new uid, the same claim.
    before = claims()
    assert sorted(before) == [f"pgdata-{n}" for n in names]
    old_uid = found["orders-db-2"]["metadata"]["uid"]
    kubectl("-n", namespace, "delete", "pod", "orders-db-2")
    new = until(
        lambda: pods().get("orders-db-2"),
        lambda p: p is not None and p["metadata"]["uid"] != old_uid,
        timeout=60,
        what="orders-db-2 replaced",
    )
    mounted = [
        v["persistentVolumeClaim"]["claimName"]
        for v in new["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert mounted == ["pgdata-orders-db-2"] and claims() == before

    # Scaling down removes the highest ordinals and keeps every claim (whenScaled: Retain).
    kubectl("-n", namespace, "rollout", "status", "statefulset/orders-db", "--timeout=90s")
    kubectl("-n", namespace, "scale", "statefulset/orders-db", "--replicas=2")
    until(lambda: sorted(pods()), lambda p: p == names[:2], timeout=60, what="2 pods left")
    assert claims() == before
    kubectl("-n", namespace, "scale", "statefulset/orders-db", "--replicas=4")
    kubectl("-n", namespace, "rollout", "status", "statefulset/orders-db", "--timeout=120s")

    # partition: 3 with a new memory limit: only orders-db-3 takes the new revision.
    stage = '{"spec": {"updateStrategy": {"rollingUpdate": {"partition": 3}}}}'
    kubectl("-n", namespace, "patch", "statefulset/orders-db", "-p", stage)
    kubectl(
        "-n",
        namespace,
        "set",
        "resources",
        "statefulset/orders-db",
        "-c",
        "db",
        "--limits=memory=512Mi",
    )
    sts_now = until(
        lambda: _json(kubectl, "-n", namespace, "get", "statefulset", "orders-db"),
        lambda s: s["status"].get("updatedReplicas") == 1 and s["status"].get("readyReplicas") == 4,
        timeout=90,
        what="orders-db-3 updated",
    )
    revision = sts_now["status"]["updateRevision"]
    on_new = sorted(
        n
        for n, p in pods().items()
        if p["metadata"]["labels"]["controller-revision-hash"] == revision
    )
    assert on_new == ["orders-db-3"]
    assert sts_now["status"]["currentRevision"] != revision


# --- notebook 05: the storefront route and the TLS listener ------------------------------------


def _notebook_05_route() -> dict[str, Any]:
    route: dict[str, Any] = yaml.safe_load(writefile("05-gateway-canary.ipynb", "httproute.yaml"))
    route["metadata"]["namespace"] = "shop"
    return route


def test_notebook_05_route_splits_90_10_and_the_header_outranks_the_split() -> None:
    routes = [_notebook_05_route()]
    services = {"storefront-stable": [8080], "storefront-next": [8080]}
    split = gr.route_split(routes, gr.Request("/api/catalog/cart"), services)
    assert split == {"storefront-stable:8080": 0.9, "storefront-next:8080": 0.1}
    preview = gr.Request("/api/catalog/cart", {"x-preview": "next"})
    assert gr.route_split(routes, preview, services) == {"storefront-next:8080": 1.0}
    other = gr.Request("/api/catalog/cart", {"x-preview": "stable"})
    assert gr.route_split(routes, other, services) == split
    assert gr.route_split(routes, gr.Request("/api/catalogue"), services) == {}


def test_notebook_05_https_listener_with_a_tls_secret_is_stored_and_the_route_attaches(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    """The API server accepts the notebook's Gateway with its HTTPS listener and the TLS Secret
    made with `cryptography`, and the route attaches to both listeners."""
    src = next(s for s in _cells("05-gateway-canary.ipynb") if "CertificateBuilder" in s)
    host = f"{namespace}.kubelab.local"
    code = src.split("!kubectl")[0].replace("WORK /", "work /")
    work = tmp_path
    scope: dict[str, Any] = {"HOST": host, "work": work}
    exec(compile(code, "notebook-05-cert", "exec"), scope)  # the notebook's own certificate code
    kubectl(
        "-n",
        namespace,
        "create",
        "secret",
        "tls",
        "storefront-tls",
        f"--cert={work / 'tls.crt'}",
        f"--key={work / 'tls.key'}",
    )
    secret = _json(kubectl, "-n", namespace, "get", "secret", "storefront-tls")
    assert secret["type"] == "kubernetes.io/tls"

    gw_cell = next(s for s in _cells("05-gateway-canary.ipynb") if 'gateway_yaml = f"""' in s)
    tls_cell = next(s for s in _cells("05-gateway-canary.ipynb") if 'https_listener = f"""' in s)
    base = gw_cell.split('f"""\\\n', 1)[1].split('"""', 1)[0]
    extra = tls_cell.split('f"""\\\n', 1)[1].split('"""', 1)[0]
    gateway = (base + extra).replace("{HOST}", host)
    kubectl("-n", namespace, "apply", "-f", "-", stdin=gateway)
    stored = _json(kubectl, "-n", namespace, "get", "gateway", "edge")
    https = next(lst for lst in stored["spec"]["listeners"] if lst["name"] == "https")
    assert https["protocol"] == "HTTPS" and https["tls"]["mode"] == "Terminate"
    assert https["tls"]["certificateRefs"][0]["name"] == "storefront-tls"

    route = _notebook_05_route()
    route["metadata"]["namespace"] = namespace
    assert gr.attachment(route, stored).listeners == ("http", "https")


# --- notebook 06: RBAC, Pod Security and the ValidatingAdmissionPolicy -------------------------


def test_notebook_06_cluster_role_binding_needs_the_subjects_namespace(kubectl: Kubectl) -> None:
    src = next(s for s in _cells("06-rbac-policy.ipynb") if "kind: ClusterRoleBinding" in s)
    binding = src.split('"""', 2)[1]
    refused = kubectl("apply", "--dry-run=server", "-f", "-", stdin=binding, check=False)
    assert refused.returncode != 0 and "namespace" in refused.stderr, refused.stderr


def _can(kubectl: Kubectl, namespace: str, verb: str, target: str) -> bool:
    user = f"--as=system:serviceaccount:{namespace}:ledger-sa"
    out = kubectl("auth", "can-i", verb, target, "-n", namespace, user, check=False)
    return out.stdout.strip() == "yes"


def test_notebook_06_resource_names_never_allow_a_list(kubectl: Kubectl, namespace: str) -> None:
    kubectl(
        "-n", namespace, "apply", "-f", "-", stdin=writefile("06-rbac-policy.ipynb", "rbac.yaml")
    )
    assert until(
        lambda: _can(kubectl, namespace, "get", "configmap/ledger-settings"),
        bool,
        timeout=30,
        what="RBAC to see the Role",
    )
    assert _can(kubectl, namespace, "get", "secret/ledger-token")
    assert not _can(kubectl, namespace, "list", "configmaps")
    assert not _can(kubectl, namespace, "get", "configmap/payroll-settings")
    assert not _can(kubectl, namespace, "get", "secret/payroll-admin")


def test_notebook_06_replica_cap_refuses_creates_and_scales_once_it_lists_the_subresource(
    kubectl: Kubectl, namespace: str
) -> None:
    src = next(s for s in _cells("06-rbac-policy.ipynb") if "replica_cap = f" in s)
    name = f"{namespace}-replica-cap"
    text = src.split('f"""\\\n', 1)[1].split('"""', 1)[0]
    text = text.replace("{CAP_NAME}", name).replace("{NS}", namespace)
    kubectl("apply", "-f", "-", stdin=text)
    try:
        kubectl("-n", namespace, "create", "deployment", "small", "--image=registry.example/x:1")

        def create(replicas: int) -> Any:
            return kubectl(
                "-n",
                namespace,
                "create",
                "deployment",
                f"d{replicas}",
                "--image=registry.example/x:1",
                f"--replicas={replicas}",
                "--dry-run=server",
                check=False,
            )

        refused = until(
            lambda: create(8), lambda p: p.returncode != 0, timeout=30, what="the policy"
        )
        assert "ValidatingAdmissionPolicy" in refused.stderr and "not 8" in refused.stderr
        assert create(3).returncode == 0

        def scale() -> Any:
            return kubectl(
                "-n",
                namespace,
                "scale",
                "deployment/small",
                "--replicas=8",
                "--dry-run=server",
                check=False,
            )

        assert scale().returncode == 0  # deployments/scale is another resource
        patch = [
            {
                "op": "add",
                "path": "/spec/matchConstraints/resourceRules/0/resources/-",
                "value": "deployments/scale",
            }
        ]
        kubectl("patch", "validatingadmissionpolicy", name, "--type=json", "-p", json.dumps(patch))
        refused = until(scale, lambda p: p.returncode != 0, timeout=30, what="scale refused")
        assert "not 8" in refused.stderr
    finally:
        kubectl(
            "delete",
            "validatingadmissionpolicybinding,validatingadmissionpolicy",
            name,
            "--ignore-not-found",
            check=False,
        )


@pytest.mark.parametrize("privileged", [True, False])
def test_notebook_06_restricted_refuses_privileged_and_admits_the_bare_pod(
    kubectl: Kubectl, namespace: str, privileged: bool
) -> None:
    src = next(s for s in _cells("06-rbac-policy.ipynb") if "BARE_POD = " in s)
    pod = src.split('"""', 2)[1]
    if privileged:
        pod = pod.replace("allowPrivilegeEscalation: false", "privileged: true")
    enforce = "pod-security.kubernetes.io/enforce=restricted"
    kubectl("label", "--overwrite", "namespace", namespace, enforce)
    out = kubectl("-n", namespace, "apply", "--dry-run=server", "-f", "-", stdin=pod, check=False)
    if privileged:
        assert out.returncode != 0 and "violates PodSecurity" in out.stderr, out.stderr
    else:
        assert out.returncode == 0, out.stderr


def test_the_notebooks_keep_no_assert_and_name_no_lab_objects() -> None:
    """The asserts live here now; and the worked examples are not the labs' answers."""
    lab_names = {
        "04-statefulset.ipynb": ["demo-db", "data-demo-db"],
        "05-gateway-canary.ipynb": ["main-gw", "web-route", "demo-web-v2", "x-canary"],
        "06-rbac-policy.ipynb": ["app-sa", "app-reader", "app-config", "db-admin", "team-budget"],
    }
    for notebook, names in lab_names.items():
        text = "\n".join(_cells(notebook))
        assert "assert " not in text, notebook
        nb = (NOTEBOOKS / notebook).read_text()
        assert not [n for n in names if n in nb], (notebook, [n for n in names if n in nb])
